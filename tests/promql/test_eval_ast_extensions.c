/* Tests of evaluator features whose syntax the parser may not produce yet:
 * the fill modifiers and duration expressions using step()/range() (fields
 * added to ast.h by promql-eval).  Trees are parsed, patched, and evaluated
 * through the internal entry point. */
#include "hs_test.h"

#include "promql/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct env {
    struct promql_mem *mem;
    struct promql_storage st;
    struct promql_engine_opts opts;
    struct hs_arena arena;
    struct hs_err err;
    struct promql__ctx c;
    int64_t t[16];
    struct promql__grid g;
};

static void add(struct promql_mem *m, const char *name, const char *ln, const char *lv,
                const char *ln2, const char *lv2, int64_t t, double v)
{
    struct hs_label l[3] = {{"__name__", name}, {ln, lv}, {ln2, lv2}};
    struct hs_labels ls = {ln2 ? 3 : 2, l};
    hs_labels_sort(&ls);
    assert_int_equal(promql_mem_append(m, &ls, t, v, NULL), HS_OK);
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof *e);
    e->mem = promql_mem_new();
    promql_mem_storage(e->mem, &e->st);
    add(e->mem, "left", "label", "a", NULL, NULL, 0, 10);
    add(e->mem, "left", "label", "c", NULL, NULL, 0, 30);
    add(e->mem, "right", "label", "a", NULL, NULL, 0, 100);
    add(e->mem, "right", "label", "d", NULL, NULL, 0, 400);
    add(e->mem, "cpu", "instance", "a", "cpu", "0", 0, 1);
    add(e->mem, "cpu", "instance", "b", "cpu", "0", 0, 1);
    add(e->mem, "meta", "instance", "a", NULL, NULL, 0, 100);
    add(e->mem, "meta", "instance", "c", NULL, NULL, 0, 300);
    for (int i = 0; i <= 100; i++)
        add(e->mem, "ctr_total", "job", "x", NULL, NULL, i * 1000, i);
    const double sparse[5] = {0, 10, 20, 5, 15};
    for (int i = 0; i < 5; i++)
        add(e->mem, "sparse_total", "job", "y", NULL, NULL, i * 10000, sparse[i]);
    promql_engine_opts_default(&e->opts);
    hs_arena_init(&e->arena, 64 * 1024, 0);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    hs_buf_cleanup(&e->c.warn);
    hs_buf_cleanup(&e->c.info);
    hs_arena_cleanup(&e->arena);
    promql_mem_free(e->mem);
    free(e);
    return 0;
}

static struct promql_node *parse(struct env *e, const char *q)
{
    struct promql_node *n = promql__parse(q, strlen(q), &e->arena, &e->err);
    assert_non_null(n);
    return n;
}

/* Prepares the context for a query over start..end by step (step 0: instant). */
static void prepare(struct env *e, int64_t start, int64_t end, int64_t step)
{
    memset(&e->c, 0, sizeof e->c);
    e->c.arena = &e->arena;
    e->c.st = &e->st;
    e->c.opts = &e->opts;
    e->c.query = "";
    e->c.start_ms = start;
    e->c.end_ms = end;
    e->c.step_ms = step;
    e->c.range_query = step > 0;
    e->c.max_samples = 1000000;
    e->c.err = &e->err;
    hs_buf_init(&e->c.warn, 0);
    hs_buf_init(&e->c.info, 0);
    e->g.n = 0;
    for (int64_t t = start; t <= end && e->g.n<16; t += step> 0 ? step : 1)
        e->t[e->g.n++] = t;
    e->g.t = e->t;
}

/* Renders the value at step i as "labels=value;" pairs sorted. */
static void render(const struct promql__val *v, size_t i, char *out, size_t len)
{
    char *lines[64];
    size_t n = 0, o = 0;
    for (size_t k = 0; k < v->ns && n < 64; k++) {
        struct hs_buf b;
        char num[64];
        if (!v->s[k].ok[i])
            continue;
        hs_buf_init(&b, 0);
        promql__format_labels(&v->s[k].labels, &b);
        promql__fmt_float(v->s[k].v[i], num, sizeof num);
        size_t need = strlen(b.p) + strlen(num) + 4;
        lines[n] = malloc(need);
        snprintf(lines[n], need, "%s=%s;", b.p, num);
        hs_buf_cleanup(&b);
        n++;
    }
    for (size_t a = 0; a < n; a++) {
        for (size_t b = a + 1; b < n; b++) {
            if (strcmp(lines[a], lines[b]) > 0) {
                char *t = lines[a];
                lines[a] = lines[b];
                lines[b] = t;
            }
        }
    }
    out[0] = '\0';
    for (size_t a = 0; a < n; a++) {
        o += (size_t)snprintf(out + o, len - o, "%s", lines[a]);
        free(lines[a]);
    }
}

static void eval_fill_modifiers_fill_a_missing_operand(void **state)
{
    struct env *e = *state;
    struct promql__val v;
    char out[512];
    struct promql_node *n = parse(e, "left + right");
    n->u.bin.fill_left_set = true;
    n->u.bin.fill_left = 5;
    n->u.bin.fill_right_set = true;
    n->u.bin.fill_right = 7;
    prepare(e, 0, 0, 0);
    assert_int_equal(promql__eval(&e->c, n, &e->g, &v), HS_OK);
    render(&v, 0, out, sizeof out);
    assert_string_equal(out, "{label=\"a\"}=110;{label=\"c\"}=37;{label=\"d\"}=405;");
}

static void eval_fill_with_a_comparison_keeps_the_left_value_and_name(void **state)
{
    struct env *e = *state;
    struct promql__val v;
    char out[512];
    struct promql_node *n = parse(e, "left == right");
    n->u.bin.fill_right_set = true;
    n->u.bin.fill_right = 30;
    prepare(e, 0, 0, 0);
    assert_int_equal(promql__eval(&e->c, n, &e->g, &v), HS_OK);
    render(&v, 0, out, sizeof out);
    assert_string_equal(out, "{__name__=\"left\", label=\"c\"}=30;");
}

static void eval_fill_with_group_right_follows_prometheus(void **state)
{
    struct env *e = *state;
    struct promql__val v;
    char out[512];
    struct promql_node *n = parse(e, "meta * on(instance) group_right cpu");
    n->u.bin.fill_left_set = true;
    n->u.bin.fill_left = 1;
    prepare(e, 0, 0, 0);
    assert_int_equal(promql__eval(&e->c, n, &e->g, &v), HS_OK);
    render(&v, 0, out, sizeof out);
    assert_string_equal(out, "{cpu=\"0\", instance=\"a\"}=100;{instance=\"c\"}=300;");
}

static void eval_range_from_step_expression_uses_the_query_step(void **state)
{
    struct env *e = *state;
    struct promql__val v;
    char out[512];
    struct promql_node *n = parse(e, "count_over_time(ctr_total[1s])");
    struct promql_node *d = parse(e, "step() + 0.001");
    n->u.call.args[0]->u.matrix.range_expr = d;
    prepare(e, 50000, 60000, 10000);
    assert_int_equal(promql__eval(&e->c, n, &e->g, &v), HS_OK);
    render(&v, 1, out, sizeof out);
    assert_string_equal(out, "{__name__=\"ctr_total\", job=\"x\"}=11;");
}

static void eval_offset_from_range_expression_uses_the_query_range(void **state)
{
    struct env *e = *state;
    struct promql__val v;
    char out[512];
    struct promql_node *n = parse(e, "ctr_total");
    n->u.sel.offset_expr = parse(e, "range()");
    prepare(e, 50000, 60000, 5000);
    assert_int_equal(promql__eval(&e->c, n, &e->g, &v), HS_OK);
    render(&v, 0, out, sizeof out);
    assert_string_equal(out, "{__name__=\"ctr_total\", job=\"x\"}=40;");
}

/* Evaluates 'q' at t with the range selector's (or selector's) modifier set. */
static int eval_ext(struct env *e, const char *q, bool anchored, bool smoothed, int64_t t,
                    char *out, size_t len)
{
    struct promql__val v;
    struct promql_node *n = parse(e, q);
    struct promql_node *sel = n;
    if (n->kind == PROMQL_NODE_CALL)
        sel = n->u.call.args[0]->u.matrix.vector;
    sel->u.sel.anchored = anchored;
    sel->u.sel.smoothed = smoothed;
    prepare(e, t, t, 0);
    int rc = promql__eval(&e->c, n, &e->g, &v);
    if (rc == HS_OK)
        render(&v, 0, out, len);
    return rc;
}

static void eval_anchored_increase_starts_at_the_sample_before_the_window(void **state)
{
    struct env *e = *state;
    char out[512];
    assert_int_equal(
        eval_ext(e, "increase(sparse_total[15s])", true, false, 30000, out, sizeof out), HS_OK);
    assert_string_equal(out, "{__name__=\"sparse_total\", job=\"y\"}=15;");
    assert_int_equal(eval_ext(e, "rate(sparse_total[15s])", true, false, 30000, out, sizeof out),
                     HS_OK);
    assert_string_equal(out, "{__name__=\"sparse_total\", job=\"y\"}=1;");
    assert_int_equal(eval_ext(e, "changes(sparse_total[15s])", true, false, 30000, out, sizeof out),
                     HS_OK);
    assert_string_equal(out, "{__name__=\"sparse_total\", job=\"y\"}=2;");
    assert_int_equal(eval_ext(e, "resets(sparse_total[15s])", true, false, 30000, out, sizeof out),
                     HS_OK);
    assert_string_equal(out, "{__name__=\"sparse_total\", job=\"y\"}=1;");
}

static void eval_smoothed_increase_interpolates_at_the_window_edges(void **state)
{
    struct env *e = *state;
    char out[512];
    assert_int_equal(
        eval_ext(e, "increase(sparse_total[15s])", false, true, 25000, out, sizeof out), HS_OK);
    assert_string_equal(out, "{__name__=\"sparse_total\", job=\"y\"}=12.5;");
}

static void eval_smoothed_selector_interpolates_between_samples(void **state)
{
    struct env *e = *state;
    char out[512];
    assert_int_equal(eval_ext(e, "sparse_total", false, true, 25000, out, sizeof out), HS_OK);
    assert_string_equal(out, "{__name__=\"sparse_total\", job=\"y\"}=12.5;");
    assert_int_equal(eval_ext(e, "sparse_total", false, true, 45000, out, sizeof out), HS_OK);
    assert_string_equal(out, "{__name__=\"sparse_total\", job=\"y\"}=15;");
}

static void eval_smoothed_modifier_is_refused_for_other_functions(void **state)
{
    struct env *e = *state;
    char out[512];
    assert_int_equal(
        eval_ext(e, "max_over_time(sparse_total[15s])", false, true, 25000, out, sizeof out),
        HS_EINVAL);
    assert_string_equal(e->err.msg, "smoothed modifier can only be used with: delta, increase, "
                                    "rate - not with max_over_time");
}

static void xxh64_matches_the_reference_vectors(void **state)
{
    (void)state;
    assert_true(promql__xxh64("", 0) == 0xef46db3751d8e999ULL);
    assert_true(promql__xxh64("a", 1) == 0xd24ec4f1a98c6e5bULL);
    assert_true(promql__xxh64("abc", 3) == 0x44bc2cf5ad770999ULL);
    const char *s = "Nobody inspects the spammish repetition";
    assert_true(promql__xxh64(s, strlen(s)) == 0xfbcea83c8a378bf1ULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(xxh64_matches_the_reference_vectors),
        cmocka_unit_test_setup_teardown(eval_fill_modifiers_fill_a_missing_operand, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(eval_fill_with_a_comparison_keeps_the_left_value_and_name,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(eval_fill_with_group_right_follows_prometheus, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(eval_range_from_step_expression_uses_the_query_step, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(eval_offset_from_range_expression_uses_the_query_range,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            eval_anchored_increase_starts_at_the_sample_before_the_window, setup, teardown),
        cmocka_unit_test_setup_teardown(eval_smoothed_increase_interpolates_at_the_window_edges,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(eval_smoothed_selector_interpolates_between_samples, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(eval_smoothed_modifier_is_refused_for_other_functions,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
