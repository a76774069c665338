/*
 * test_tracker.c - the per-model tracker: running median and the length
 * check, drift (quiet on the same distribution, loud on a shifted one, with
 * a seeded generator), the metric samples it emits, the model ceiling, and
 * observe / collect from two threads at once.
 */
#include "hs_test.h"
#include "quality/quality.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* xorshift64*: a seeded generator so the drift tests are repeatable. */
static uint64_t rng_state;
static double rng_uniform(void)
{
    if (rng_state == 0) /* xorshift never leaves 0 */
        rng_state = 88172645463325252ull;
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}
static double rng_normal(double mean, double sd)
{
    double u = rng_uniform(), v = rng_uniform();
    if (u < 1e-12)
        u = 1e-12;
    return mean + sd * sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

/* An answer of about 'tokens' tokens: 'tokens' distinct-ish words. */
static char text_buf[200000];
static const char *answer(int tokens, bool is_good)
{
    static const char *const w[] = {"alpha", "bravo", "charlie", "delta", "echo",  "fox",
                                    "golf",  "hotel", "india",   "julia", "kilo",  "lima",
                                    "mike",  "nova",  "oscar",   "papa",  "quest", "romeo"};
    size_t n = 0;
    if (!is_good)
        return "I'm sorry, but I can't help with that.";
    size_t prev = 18;
    for (int i = 0; i < tokens && n + 16 < sizeof(text_buf); i++) {
        size_t k = (size_t)(rng_uniform() * 18) % 18;
        if (k == prev) /* no word twice in a row: natural text has no "quest quest" */
            k = (k + 1) % 18;
        prev = k;
        const char *p = w[k];
        n += (size_t)snprintf(text_buf + n, sizeof(text_buf) - n, "%s ", p);
    }
    text_buf[n] = '\0';
    return text_buf;
}

static void observe(struct qual_tracker *t, const char *model, int tokens, bool is_good,
                    struct qual_scores *out)
{
    struct qual_input in;
    qual_input_init(&in);
    in.model = model;
    in.output = answer(tokens, is_good);
    in.output_len = strlen(in.output);
    in.output_tokens = tokens;
    in.finish_reason = "stop";
    assert_int_equal(qual_tracker_observe(t, &in, out, NULL), HS_OK);
}

static struct qual_config small_config(void)
{
    struct qual_config c;
    qual_config_defaults(&c);
    c.reference_size = 400;
    c.recent_size = 200;
    c.min_recent = 50;
    return c;
}

static void length_check_runs_once_the_median_is_known(void **state)
{
    (void)state;
    struct qual_config c = small_config();
    struct qual_tracker *t = qual_tracker_new(&c, NULL);
    assert_non_null(t);
    struct qual_scores s;
    for (int i = 0; i < 19; i++) {
        observe(t, "m", 100, true, &s);
        assert_int_equal(s.checks[QUAL_CHECK_LENGTH].result, QUAL_SKIP);
    }
    observe(t, "m", 100, true, &s);
    observe(t, "m", 100, true, &s);
    assert_int_equal(s.checks[QUAL_CHECK_LENGTH].result, QUAL_PASS);
    observe(t, "m", 900, true, &s);
    assert_int_equal(s.checks[QUAL_CHECK_LENGTH].result, QUAL_FAIL);
    struct qual_model_summary sum;
    assert_int_equal(qual_tracker_summary(t, 0, &sum), HS_OK);
    assert_string_equal(sum.model, "m");
    assert_int_equal(sum.count, 22);
    assert_true(sum.median_tokens == 100);
    assert_int_equal(sum.fails[QUAL_CHECK_LENGTH], 1);
    assert_int_equal(qual_tracker_summary(t, 1, &sum), HS_ENOTFOUND);
    qual_tracker_free(t);
}

static void summary_gives_exact_median_and_tenth_percentile(void **state)
{
    (void)state;
    struct qual_config c = small_config();
    c.median_window = 101;
    c.min_median = 1000; /* no length check: good answers score exactly 1 */
    struct qual_tracker *t = qual_tracker_new(&c, NULL);
    /* Token counts 1..100 in a scrambled order (37 is prime to 100). */
    for (int i = 0; i < 100; i++)
        observe(t, "m", 1 + (i * 37) % 100, true, NULL);
    struct qual_model_summary s;
    assert_int_equal(qual_tracker_summary(t, 0, &s), HS_OK);
    assert_true(fabs(s.median_tokens - 50.5) < 1e-9);
    /* 100 good answers (score 1) and 12 refusals (score 1 - 0.9 = 0.1):
     * p10 sits at rank 0.1 * 111 = 11.1 of the sorted scores, a tenth of
     * the way from the last refusal (rank 11) to the first good answer. */
    for (int i = 0; i < 12; i++)
        observe(t, "m", 50, false, NULL);
    assert_int_equal(qual_tracker_summary(t, 0, &s), HS_OK);
    assert_true(fabs(s.score_p10 - (0.1 * 0.9 + 1.0 * 0.1)) < 1e-6);
    qual_tracker_free(t);
}

static void drift_stays_quiet_on_the_same_distribution(void **state)
{
    (void)state;
    rng_state = 0x9E3779B97F4A7C15ull;
    struct qual_config c = small_config();
    struct qual_tracker *t = qual_tracker_new(&c, NULL);
    for (int i = 0; i < 600; i++) {
        int tok = (int)fmax(1, rng_normal(200, 40));
        observe(t, "llama", tok, rng_uniform() > 0.05, NULL);
    }
    for (int sig = 0; sig < QUAL_SIGNAL_COUNT; sig++) {
        struct qual_drift d;
        assert_int_equal(qual_tracker_drift(t, "llama", sig, &d), HS_OK);
        assert_int_equal(d.n_reference, 400);
        assert_int_equal(d.n_recent, 200);
        assert_false(isnan(d.psi));
        assert_true(d.psi < 0.1);
        assert_true(d.ks < 0.15);
    }
    qual_tracker_free(t);
}

static void drift_detects_a_shifted_distribution(void **state)
{
    (void)state;
    rng_state = 0x1234567887654321ull;
    struct qual_config c = small_config();
    struct qual_tracker *t = qual_tracker_new(&c, NULL);
    for (int i = 0; i < 400; i++)
        observe(t, "llama", (int)fmax(1, rng_normal(200, 40)), rng_uniform() > 0.05, NULL);
    /* The model degrades: answers four times longer, a third refusals. */
    for (int i = 0; i < 200; i++)
        observe(t, "llama", (int)fmax(1, rng_normal(800, 100)), rng_uniform() > 0.33, NULL);
    struct qual_drift d;
    assert_int_equal(qual_tracker_drift(t, "llama", QUAL_SIGNAL_OUTPUT_TOKENS, &d), HS_OK);
    assert_true(d.psi > 0.25);
    assert_true(d.ks > 0.5);
    assert_int_equal(qual_tracker_drift(t, "llama", QUAL_SIGNAL_SCORE, &d), HS_OK);
    assert_true(d.psi > 0.25);
    assert_true(d.ks > 0.2);
    assert_int_equal(qual_tracker_drift(t, "nope", QUAL_SIGNAL_SCORE, &d), HS_ENOTFOUND);

    /* Rebasing makes the next observations the baseline: no drift until the
     * windows fill again. */
    assert_int_equal(qual_tracker_rebase(t, "llama"), HS_OK);
    observe(t, "llama", 800, true, NULL);
    assert_int_equal(qual_tracker_drift(t, "llama", QUAL_SIGNAL_SCORE, &d), HS_OK);
    assert_true(isnan(d.psi) && isnan(d.ks));
    assert_int_equal(d.n_reference, 1);
    qual_tracker_free(t);
}

static void drift_is_absent_until_the_windows_fill(void **state)
{
    (void)state;
    struct qual_config c = small_config();
    struct qual_tracker *t = qual_tracker_new(&c, NULL);
    for (int i = 0; i < 449; i++)
        observe(t, "m", 50, true, NULL);
    struct qual_drift d;
    assert_int_equal(qual_tracker_drift(t, "m", QUAL_SIGNAL_SCORE, &d), HS_OK);
    assert_true(isnan(d.psi));
    assert_int_equal(d.n_recent, 49);
    observe(t, "m", 50, true, NULL);
    assert_int_equal(qual_tracker_drift(t, "m", QUAL_SIGNAL_SCORE, &d), HS_OK);
    assert_true(d.psi == 0.0 && d.ks == 0.0);
    qual_tracker_free(t);
}

/* Collects samples into text lines "name{l=v,...} value". */
struct collected {
    char lines[4096][160];
    size_t n;
};

static int collect_cb(void *arg, const char *name, const struct hs_labels *ls, double v)
{
    struct collected *c = arg;
    assert_true(hs_labels_valid(ls));
    assert_string_equal(hs_labels_get(ls, "__name__"), name);
    if (c->n >= 4096)
        return HS_ETOOBIG;
    char *p = c->lines[c->n++];
    size_t off = (size_t)snprintf(p, 160, "%s{", name);
    for (size_t i = 1; i < ls->n; i++)
        off += (size_t)snprintf(p + off, 160 - off, "%s%s=%s", i > 1 ? "," : "", ls->v[i].name,
                                ls->v[i].value);
    snprintf(p + off, 160 - off, "} %g", v);
    return 0;
}

static bool has_line(const struct collected *c, const char *line)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->lines[i], line) == 0)
            return true;
    return false;
}

static void tracker_emits_counters_histogram_and_drift_samples(void **state)
{
    (void)state;
    struct qual_config c = small_config();
    c.reference_size = 10;
    c.recent_size = 10;
    c.min_recent = 5;
    struct qual_tracker *t = qual_tracker_new(&c, NULL);
    static struct collected col;
    memset(&col, 0, sizeof(col));
    assert_int_equal(qual_tracker_collect(t, collect_cb, &col), HS_OK);
    assert_int_equal(col.n, 0); /* nothing observed, nothing emitted */

    for (int i = 0; i < 12; i++)
        observe(t, "m1", 40, true, NULL);
    for (int i = 0; i < 3; i++)
        observe(t, "m1", 40, false, NULL);
    assert_int_equal(qual_tracker_collect(t, collect_cb, &col), HS_OK);
    assert_true(has_line(&col, "holoscope_quality_score_count{model=m1} 15"));
    assert_true(has_line(&col, "holoscope_quality_score_bucket{le=+Inf,model=m1} 15"));
    assert_true(has_line(&col, "holoscope_quality_score_bucket{le=1.0,model=m1} 15"));
    assert_true(has_line(&col, "holoscope_quality_checks_total{check=refusal,model=m1,"
                               "result=fail} 3"));
    assert_true(has_line(&col, "holoscope_quality_checks_total{check=refusal,model=m1,"
                               "result=pass} 12"));
    assert_true(has_line(&col, "holoscope_quality_checks_total{check=json,model=m1,"
                               "result=fail} 0"));
    assert_true(has_line(&col, "holoscope_quality_output_tokens_median{model=m1} 40"));
    static const char *const want[] = {"holoscope_quality_drift_psi{model=m1,signal=score} ",
                                       "holoscope_quality_drift_ks{model=m1,signal=output_tokens} ",
                                       "holoscope_quality_score_mean{model=m1} "};
    bool psi = false, ks = false, mean = false;
    for (size_t i = 0; i < col.n; i++) {
        psi |= strncmp(col.lines[i], want[0], strlen(want[0])) == 0;
        ks |= strncmp(col.lines[i], want[1], strlen(want[1])) == 0;
        mean |= strncmp(col.lines[i], want[2], strlen(want[2])) == 0;
    }
    assert_true(psi && ks && mean);

    /* A callback error stops the walk and is returned. */
    struct collected *small = &col;
    small->n = 4096;
    assert_int_equal(qual_tracker_collect(t, collect_cb, small), HS_ETOOBIG);

    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(qual_tracker_metrics(t, &b), HS_OK);
    assert_non_null(strstr(b.p, "# TYPE holoscope_quality_score histogram\n"));
    assert_non_null(strstr(b.p, "holoscope_quality_score_bucket{le=\"0.5\",model=\"m1\"} 3\n"));
    assert_non_null(strstr(b.p, "# TYPE holoscope_quality_checks_total counter\n"));
    assert_non_null(
        strstr(b.p, "holoscope_quality_checks_total{check=\"refusal\",model=\"m1\",result=\"fail\"}"
                    " 3\n"));
    /* Each family's HELP/TYPE appears once. */
    const char *first = strstr(b.p, "# TYPE holoscope_quality_drift_psi gauge");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE holoscope_quality_drift_psi gauge"));
    hs_buf_cleanup(&b);
    qual_tracker_free(t);
}

static void models_past_the_ceiling_share_other(void **state)
{
    (void)state;
    struct qual_config c = small_config();
    c.max_models = 2;
    struct qual_tracker *t = qual_tracker_new(&c, NULL);
    observe(t, "a", 10, true, NULL);
    observe(t, "b", 10, true, NULL);
    observe(t, "c", 10, true, NULL);
    observe(t, "d", 10, true, NULL);
    assert_int_equal(qual_tracker_models(t), 3);
    struct qual_model_summary s;
    assert_int_equal(qual_tracker_summary(t, 2, &s), HS_OK);
    assert_string_equal(s.model, "other");
    assert_int_equal(s.count, 2);
    qual_tracker_free(t);
}

static void tracker_rejects_bad_sizes_and_survives_allocation_failures(void **state)
{
    (void)state;
    struct qual_config c = small_config();
    c.min_recent = c.recent_size + 1;
    struct hs_err err = {0};
    assert_null(qual_tracker_new(&c, &err));
    assert_int_equal(err.code, HS_EINVAL);
    c = small_config();
    for (long n = 0; n < 64; n++) {
        hs_alloc_fail_after(n);
        struct qual_tracker *t = qual_tracker_new(&c, &err);
        if (t == NULL) {
            hs_alloc_fail_after(-1);
            assert_int_equal(err.code, HS_ENOMEM);
            continue;
        }
        struct qual_input in;
        qual_input_init(&in);
        in.model = "m";
        in.output = "The capital of France is Paris, a city on the Seine.";
        in.output_len = strlen(in.output);
        struct qual_scores s;
        int rc = qual_tracker_observe(t, &in, &s, &err);
        hs_alloc_fail_after(-1);
        assert_true(rc == HS_OK || rc == HS_ENOMEM);
        qual_tracker_free(t);
    }
}

struct thread_arg {
    struct qual_tracker *t;
    int n;
};

static int count_cb(void *arg, const char *name, const struct hs_labels *ls, double v)
{
    (void)name;
    (void)ls;
    (void)v;
    (*(size_t *)arg)++;
    return 0;
}

static void *reader(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        size_t n = 0;
        if (qual_tracker_collect(a->t, count_cb, &n) != HS_OK)
            return (void *)1;
        struct hs_buf b;
        hs_buf_init(&b, 0);
        if (qual_tracker_metrics(a->t, &b) != HS_OK)
            return (void *)1;
        hs_buf_cleanup(&b);
    }
    return NULL;
}

static void observe_and_collect_run_from_two_threads(void **state)
{
    (void)state;
    struct qual_config c = small_config();
    c.reference_size = 50;
    c.recent_size = 50;
    c.min_recent = 10;
    struct qual_tracker *t = qual_tracker_new(&c, NULL);
    struct thread_arg a = {t, 200};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader, &a), 0);
    const char *models[] = {"a", "b", "c"};
    for (int i = 0; i < 1500; i++) {
        struct qual_input in;
        qual_input_init(&in);
        in.model = models[i % 3];
        in.output = (i % 7) ? "A fine and useful answer about the topic." : "";
        in.output_len = strlen(in.output);
        in.output_tokens = 10 + i % 13;
        assert_int_equal(qual_tracker_observe(t, &in, NULL, NULL), HS_OK);
    }
    void *ret;
    pthread_join(th, &ret);
    assert_null(ret);
    struct qual_model_summary s;
    assert_int_equal(qual_tracker_summary(t, 0, &s), HS_OK);
    assert_int_equal(s.count, 500);
    qual_tracker_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(length_check_runs_once_the_median_is_known),
        cmocka_unit_test(summary_gives_exact_median_and_tenth_percentile),
        cmocka_unit_test(drift_stays_quiet_on_the_same_distribution),
        cmocka_unit_test(drift_detects_a_shifted_distribution),
        cmocka_unit_test(drift_is_absent_until_the_windows_fill),
        cmocka_unit_test(tracker_emits_counters_histogram_and_drift_samples),
        cmocka_unit_test(models_past_the_ceiling_share_other),
        cmocka_unit_test(tracker_rejects_bad_sizes_and_survives_allocation_failures),
        cmocka_unit_test(observe_and_collect_run_from_two_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
