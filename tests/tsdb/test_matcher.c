/*
 * test_matcher.c - label matchers alone and through select: every type,
 * the empty-value rules, regex anchoring, invalid regexes, label names and
 * values listings.
 */
#include "hs_test.h"
#include "hs_test_util.h"

#include "tsdb_test_helpers.h"

static bool m1(int type, const char *pattern, const char *value)
{
    struct tsdb_matcher m;
    assert_int_equal(tsdb_matcher_init(&m, type, "x", pattern, NULL), HS_OK);
    bool r = tsdb_matcher_matches(&m, value);
    tsdb_matcher_cleanup(&m);
    return r;
}

static void matcher_regex_is_fully_anchored(void **state)
{
    (void)state;
    assert_true(m1(TSDB_MATCH_RE, "foo", "foo"));
    assert_false(m1(TSDB_MATCH_RE, "foo", "foobar"));
    assert_false(m1(TSDB_MATCH_RE, "foo", "xfoo"));
    assert_true(m1(TSDB_MATCH_RE, "foo|bar", "bar"));
    assert_false(m1(TSDB_MATCH_RE, "foo|bar", "foobar"));
    assert_true(m1(TSDB_MATCH_RE, "f.*", "f\nx")); /* . matches newline, as in Go's (?s) */
    assert_true(m1(TSDB_MATCH_NRE, "foo", "foobar"));
    assert_false(m1(TSDB_MATCH_NRE, "fo+", "fooo"));
    assert_true(m1(TSDB_MATCH_EQ, "a", "a"));
    assert_false(m1(TSDB_MATCH_EQ, "a", "ab"));
    assert_true(m1(TSDB_MATCH_NEQ, "a", "ab"));
}

static void matcher_knows_which_matchers_match_the_empty_string(void **state)
{
    (void)state;
    struct {
        int type;
        const char *v;
        bool empty;
    } cases[] = {
        {TSDB_MATCH_EQ, "", true},   {TSDB_MATCH_EQ, "a", false},   {TSDB_MATCH_NEQ, "", false},
        {TSDB_MATCH_NEQ, "a", true}, {TSDB_MATCH_RE, ".*", true},   {TSDB_MATCH_RE, ".+", false},
        {TSDB_MATCH_RE, "a|", true}, {TSDB_MATCH_NRE, ".*", false}, {TSDB_MATCH_NRE, "a", true},
    };
    for (size_t i = 0; i < HS_ARRAY_LEN(cases); i++) {
        struct tsdb_matcher m;
        assert_int_equal(tsdb_matcher_init(&m, cases[i].type, "x", cases[i].v, NULL), HS_OK);
        assert_int_equal(m.matches_empty, cases[i].empty);
        tsdb_matcher_cleanup(&m);
    }
}

static void matcher_reports_an_invalid_regex_with_its_position(void **state)
{
    (void)state;
    const char *bad[] = {"(", "a(b", "[z-a]", "*", "a{2,1}", "(?<n", "\\"};
    for (size_t i = 0; i < HS_ARRAY_LEN(bad); i++) {
        struct tsdb_matcher m;
        struct hs_err err;
        assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_RE, "x", bad[i], &err), HS_EPARSE);
        assert_non_null(strstr(err.msg, "invalid regex"));
        assert_true(err.pos <= strlen(bad[i]));
        tsdb_matcher_cleanup(&m);
    }
    struct tsdb_matcher m;
    assert_int_equal(tsdb_matcher_init(&m, 7, "x", "y", NULL), HS_EINVAL);
    tsdb_matcher_cleanup(&m);
}

struct fixture {
    char *dir;
    struct tsdb *db;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->dir = hs_test_tmpdir("tsdb-matcher");
    struct tsdb_options o;
    tl_opts(&o);
    f->db = tsdb_open(f->dir, &o, NULL);
    assert_non_null(f->db);
    const char *series[] = {
        "__name__=up,job=api,instance=a", "__name__=up,job=api,instance=b",
        "__name__=up,job=db,instance=c",  "__name__=up,instance=d",
        "__name__=req,job=api,code=200",  "__name__=req,job=api,code=500",
        "__name__=req,job=api,code=", /* empty value: same as no code label */
    };
    for (size_t i = 0; i < HS_ARRAY_LEN(series); i++)
        assert_int_equal(tl_add1(f->db, series[i], 1000 + (int64_t)i, 1), HS_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tsdb_close(f->db);
    hs_test_rmdir(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static size_t sel(struct tsdb *db, const char *spec)
{
    /* spec: "name OP value;name OP value" with OP one of = != =~ !~ */
    struct tsdb_matcher ms[4];
    size_t n = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        int type;
        char *op;
        if ((op = strstr(tok, "!=")) != NULL)
            type = TSDB_MATCH_NEQ;
        else if ((op = strstr(tok, "=~")) != NULL)
            type = TSDB_MATCH_RE;
        else if ((op = strstr(tok, "!~")) != NULL)
            type = TSDB_MATCH_NRE;
        else {
            op = strchr(tok, '=');
            type = TSDB_MATCH_EQ;
        }
        size_t oplen = type == TSDB_MATCH_EQ ? 1 : 2;
        *op = '\0';
        assert_int_equal(tsdb_matcher_init(&ms[n], type, tok, op + oplen, NULL), HS_OK);
        n++;
    }
    struct tsdb_querier *q = tsdb_querier_new(db, INT64_MIN, INT64_MAX);
    struct tsdb_series_set *set = NULL;
    size_t count = (size_t)-1;
    if (tsdb_querier_select(q, ms, n, 0, &set, NULL) == HS_OK) {
        count = tsdb_series_set_len(set);
        /* Sorted by labels. */
        const struct hs_labels *prev = NULL;
        struct hs_labels *copy = NULL;
        while (tsdb_series_set_next(set)) {
            const struct hs_labels *ls = tsdb_series_set_labels(set);
            if (prev)
                assert_true(hs_labels_cmp(copy, ls) < 0);
            hs_labels_free(copy);
            copy = hs_labels_dup(ls);
            prev = ls;
        }
        hs_labels_free(copy);
    }
    tsdb_series_set_free(set);
    tsdb_querier_free(q);
    for (size_t i = 0; i < n; i++)
        tsdb_matcher_cleanup(&ms[i]);
    return count;
}

static void select_applies_every_matcher_type(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(sel(f->db, "__name__=up"), 4);
    assert_int_equal(sel(f->db, "__name__=up;job=api"), 2);
    assert_int_equal(sel(f->db, "__name__=up;job!=api"), 2); /* db, and no job */
    assert_int_equal(sel(f->db, "__name__=~u."), 4);
    assert_int_equal(sel(f->db, "__name__=~up|req"), 7);
    assert_int_equal(sel(f->db, "__name__=~up;instance!~a|b"), 2);
    assert_int_equal(sel(f->db, "job=~a.*"), 5);
    assert_int_equal(sel(f->db, "job=~a"), 0); /* anchored */
    assert_int_equal(sel(f->db, "__name__=nope"), 0);
}

static void select_treats_an_empty_value_as_an_absent_label(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(sel(f->db, "__name__=up;job="), 1);
    assert_int_equal(sel(f->db, "__name__=req;code="), 1);
    assert_int_equal(sel(f->db, "__name__=req;code!="), 2);
    assert_int_equal(sel(f->db, "__name__=req;code=~|200"), 2);
    assert_int_equal(sel(f->db, "__name__=up;job=~.*"), 4);
    assert_int_equal(sel(f->db, "__name__=up;job=~.+"), 3);
    /* Only empty-matching matchers: refused, as in Prometheus. */
    assert_int_equal(sel(f->db, "job=~.*"), (size_t)-1);
    assert_int_equal(sel(f->db, "job!=x"), (size_t)-1);
}

static void label_names_and_values_follow_matchers_and_time(void **state)
{
    struct fixture *f = *state;
    struct tsdb_querier *q = tsdb_querier_new(f->db, INT64_MIN, INT64_MAX);
    struct tsdb_strings s;
    assert_int_equal(tsdb_querier_label_names(q, NULL, 0, &s, NULL), HS_OK);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.v[0], "__name__");
    assert_string_equal(s.v[1], "code");
    assert_string_equal(s.v[2], "instance");
    assert_string_equal(s.v[3], "job");
    tsdb_strings_free(&s);
    assert_int_equal(tsdb_querier_label_values(q, "job", NULL, 0, &s, NULL), HS_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.v[0], "api");
    assert_string_equal(s.v[1], "db");
    tsdb_strings_free(&s);
    struct tsdb_matcher m;
    assert_int_equal(tsdb_matcher_init(&m, TSDB_MATCH_EQ, "__name__", "req", NULL), HS_OK);
    assert_int_equal(tsdb_querier_label_values(q, "code", &m, 1, &s, NULL), HS_OK);
    assert_int_equal(s.n, 2);
    tsdb_strings_free(&s);
    assert_int_equal(tsdb_querier_label_names(q, &m, 1, &s, NULL), HS_OK);
    assert_int_equal(s.n, 3);
    tsdb_strings_free(&s);
    tsdb_querier_free(q);
    /* Samples were at 1000..1006: instance=d is at 1003. */
    q = tsdb_querier_new(f->db, 1003, 1003);
    assert_int_equal(tsdb_querier_label_values(q, "instance", NULL, 0, &s, NULL), HS_OK);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.v[0], "d");
    tsdb_strings_free(&s);
    tsdb_querier_free(q);
    tsdb_matcher_cleanup(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matcher_regex_is_fully_anchored),
        cmocka_unit_test(matcher_knows_which_matchers_match_the_empty_string),
        cmocka_unit_test(matcher_reports_an_invalid_regex_with_its_position),
        cmocka_unit_test_setup_teardown(select_applies_every_matcher_type, setup, teardown),
        cmocka_unit_test_setup_teardown(select_treats_an_empty_value_as_an_absent_label, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(label_names_and_values_follow_matchers_and_time, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
