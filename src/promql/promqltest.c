/*
 * promqltest.c - runner for promqltest scripts (the .test files of
 * Prometheus' PromQL acceptance suite; language in
 * shared/conformance/promql/FORMAT.md): load / clear / eval with expected
 * results, failures and annotations, against the in-memory storage.
 *
 * Native histograms are not supported.  A case is reported as SKIPPED, not
 * run, when its body holds a `{{...}}` value, or when one of the query's
 * selectors matches a series that a load since the last clear gave native
 * histogram values (a `{{...}}` item, or the histogram series a
 * `load_with_nhcb` derives from classic buckets).
 */
#include "promql/internal.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#define MAX_FILE_BYTES (64u << 20)

/* One label set known to hold native histograms. */
struct hlabels {
    struct hs_labels *ls; /* hs_labels_dup */
};

struct runner {
    const char *path;
    FILE *out;
    struct promql_test_totals *tot;
    promql_test_case_cb *cb;
    void *cbarg;
    struct promql_mem *mem;
    struct promql_storage st;
    struct promql_engine *eng;
    struct hlabels *hist;
    size_t nhist, caphist;
    char **lines;
    size_t nlines;
    struct hs_arena arena; /* per command */
    bool extra;            /* run the @ and range-mode checks of FORMAT.md 6.3 */
};

/* Appends to a diagnostic buffer; a full buffer only shortens the message. */
static void note(struct hs_buf *b, const char *fmt, ...) HS_PRINTF(2, 3);
static void note(struct hs_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = hs_buf_vprintf(b, fmt, ap);
    va_end(ap);
    (void)rc;
}

/* ---- small parsing helpers ------------------------------------------------------------ */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

static bool parse_dur(const char *s, size_t n, int64_t *out)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return hs_parse_duration_ms(buf, out) == HS_OK;
}

/* Next whitespace-separated word of *p: start and length; advances *p. */
static bool word(const char **p, const char **w, size_t *n)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '\0')
        return false;
    *w = s;
    while (*s != '\0' && *s != ' ' && *s != '\t')
        s++;
    *n = (size_t)(s - *w);
    *p = s;
    return true;
}

static bool word_is(const char *w, size_t n, const char *lit)
{
    return strlen(lit) == n && strncmp(w, lit, n) == 0;
}

/* A PromQL string literal at *p ("", '', ``); unescaped into arena. */
static int parse_quoted(struct hs_arena *a, const char **p, const char **out)
{
    const char *s = *p;
    char q = *s;
    struct hs_buf b;
    int rc = HS_OK;
    if (q != '"' && q != '\'' && q != '`')
        return HS_EPARSE;
    s++;
    hs_buf_init(&b, 0);
    while (*s != '\0' && *s != q && rc == HS_OK) {
        if (*s == '\\' && q != '`') {
            s++;
            switch (*s) {
            case 'n':
                rc = hs_buf_putc(&b, '\n');
                s++;
                break;
            case 't':
                rc = hs_buf_putc(&b, '\t');
                s++;
                break;
            case 'r':
                rc = hs_buf_putc(&b, '\r');
                s++;
                break;
            case 'a':
                rc = hs_buf_putc(&b, '\a');
                s++;
                break;
            case 'b':
                rc = hs_buf_putc(&b, '\b');
                s++;
                break;
            case 'f':
                rc = hs_buf_putc(&b, '\f');
                s++;
                break;
            case 'v':
                rc = hs_buf_putc(&b, '\v');
                s++;
                break;
            case 'x': {
                unsigned v = 0;
                int k;
                s++;
                for (k = 0; k < 2 && isxdigit((unsigned char)*s); k++, s++)
                    v = v * 16 + (unsigned)(isdigit((unsigned char)*s) ? *s - '0'
                                                                       : (tolower(*s) - 'a' + 10));
                rc = hs_buf_putc(&b, (char)v);
                break;
            }
            case 'u':
            case 'U': {
                int len = *s == 'u' ? 4 : 8;
                unsigned long cp = 0;
                s++;
                for (int k = 0; k < len && isxdigit((unsigned char)*s); k++, s++)
                    cp = cp * 16 + (unsigned long)(isdigit((unsigned char)*s)
                                                       ? *s - '0'
                                                       : (tolower(*s) - 'a' + 10));
                char u[4];
                size_t un = 0;
                if (cp < 0x80) {
                    u[un++] = (char)cp;
                } else if (cp < 0x800) {
                    u[un++] = (char)(0xc0 | (cp >> 6));
                    u[un++] = (char)(0x80 | (cp & 0x3f));
                } else if (cp < 0x10000) {
                    u[un++] = (char)(0xe0 | (cp >> 12));
                    u[un++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    u[un++] = (char)(0x80 | (cp & 0x3f));
                } else {
                    u[un++] = (char)(0xf0 | (cp >> 18));
                    u[un++] = (char)(0x80 | ((cp >> 12) & 0x3f));
                    u[un++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    u[un++] = (char)(0x80 | (cp & 0x3f));
                }
                rc = hs_buf_append(&b, u, un);
                break;
            }
            default:
                if (*s >= '0' && *s <= '7') {
                    unsigned v = 0;
                    for (int k = 0; k < 3 && *s >= '0' && *s <= '7'; k++, s++)
                        v = v * 8 + (unsigned)(*s - '0');
                    rc = hs_buf_putc(&b, (char)v);
                } else if (*s != '\0') {
                    rc = hs_buf_putc(&b, *s++);
                }
                break;
            }
            continue;
        }
        rc = hs_buf_putc(&b, *s++);
    }
    if (rc != HS_OK || *s != q) {
        hs_buf_cleanup(&b);
        return HS_EPARSE;
    }
    *out = hs_arena_strndup(a, b.p ? b.p : "", b.len);
    hs_buf_cleanup(&b);
    *p = s + 1;
    return *out ? HS_OK : HS_ENOMEM;
}

static bool is_name_char(char c, bool first)
{
    return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (!first && c >= '0' && c <= '9');
}

/* Parses a series selector with equality labels; *p left after it. */
static int parse_series(struct hs_arena *a, const char **p, struct hs_labels *out)
{
    const char *s = *p;
    size_t cap = 8;
    out->n = 0;
    out->v = hs_arena_alloc(a, cap * sizeof *out->v);
    if (out->v == NULL)
        return HS_ENOMEM;
    if (is_name_char(*s, true)) {
        const char *st = s;
        while (is_name_char(*s, false))
            s++;
        out->v[out->n++] = (struct hs_label){"__name__", hs_arena_strndup(a, st, (size_t)(s - st))};
    }
    if (*s == '{') {
        s++;
        for (;;) {
            const char *name = NULL, *val = NULL;
            while (*s == ' ' || *s == '\t' || *s == ',')
                s++;
            if (*s == '}') {
                s++;
                break;
            }
            if (*s == '"' || *s == '\'' || *s == '`') {
                if (parse_quoted(a, &s, &name) != HS_OK)
                    return HS_EPARSE;
            } else if (is_name_char(*s, true)) {
                const char *st = s;
                while (is_name_char(*s, false))
                    s++;
                name = hs_arena_strndup(a, st, (size_t)(s - st));
            } else {
                return HS_EPARSE;
            }
            while (*s == ' ' || *s == '\t')
                s++;
            if (*s != '=') {
                /* A bare quoted name is the metric name. */
                val = name;
                name = "__name__";
            } else {
                s++;
                while (*s == ' ' || *s == '\t')
                    s++;
                if (parse_quoted(a, &s, &val) != HS_OK)
                    return HS_EPARSE;
            }
            if (out->n == cap) {
                struct hs_label *nv = hs_arena_alloc(a, cap * 2 * sizeof *nv);
                if (nv == NULL)
                    return HS_ENOMEM;
                memcpy(nv, out->v, out->n * sizeof *nv);
                out->v = nv;
                cap *= 2;
            }
            /* A later duplicate replaces the earlier label. */
            bool dup = false;
            for (size_t i = 0; i < out->n; i++) {
                if (strcmp(out->v[i].name, name) == 0) {
                    out->v[i].value = val;
                    dup = true;
                }
            }
            if (!dup)
                out->v[out->n++] = (struct hs_label){name, val};
        }
    } else if (out->n == 0) {
        return HS_EPARSE;
    }
    /* Empty values mean "no label". */
    size_t w = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (out->v[i].value != NULL && out->v[i].value[0] != '\0')
            out->v[w++] = out->v[i];
    }
    out->n = w;
    hs_labels_sort(out);
    *p = s;
    return HS_OK;
}

/* A value slot of a sequence. */
struct slot {
    bool empty;
    double v;
};

static bool parse_num(const char *s, size_t n, double *out)
{
    char buf[80];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (strcmp(buf, "stale") == 0) {
        *out = promql__stale_nan();
        return true;
    }
    return hs_parse_double(buf, out) == HS_OK;
}

/*
 * Expands a value sequence; sets *hist when it holds a {{...}} histogram.
 * Returns HS_EPARSE on a malformed item.
 */
static int parse_values(const char *s, struct slot **outv, size_t *outn, bool *hist)
{
    size_t cap = 64, n = 0;
    struct slot *v = hs_malloc(cap * sizeof *v);
    int rc = HS_OK;
    *hist = false;
    if (v == NULL)
        return HS_ENOMEM;
#define PUSH(e, val)                                                                               \
    do {                                                                                           \
        if (n == cap) {                                                                            \
            struct slot *nv_ = hs_reallocarray(v, cap * 2, sizeof *v);                             \
            if (nv_ == NULL) {                                                                     \
                rc = HS_ENOMEM;                                                                    \
                goto out;                                                                          \
            }                                                                                      \
            v = nv_;                                                                               \
            cap *= 2;                                                                              \
        }                                                                                          \
        v[n].empty = (e);                                                                          \
        v[n].v = (val);                                                                            \
        n++;                                                                                       \
    } while (0)
    for (;;) {
        const char *w = NULL;
        size_t wl = 0;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0')
            break;
        if (s[0] == '{' && s[1] == '{') {
            /* Native histogram item: {{...}}, optionally +{{...}}xN / xN. */
            *hist = true;
            const char *e = strstr(s, "}}");
            if (e == NULL) {
                rc = HS_EPARSE;
                goto out;
            }
            s = e + 2;
            if ((*s == '+' || *s == '-') && s[1] == '{') {
                e = strstr(s, "}}");
                if (e == NULL) {
                    rc = HS_EPARSE;
                    goto out;
                }
                s = e + 2;
            }
            long rep = 0;
            if (*s == 'x') {
                rep = strtol(s + 1, (char **)&s, 10);
            }
            for (long i = 0; i <= rep; i++)
                PUSH(true, 0);
            continue;
        }
        word(&s, &w, &wl);
        double a;
        if (word_is(w, wl, "_")) {
            PUSH(true, 0);
            continue;
        }
        if (wl > 2 && w[0] == '_' && w[1] == 'x') {
            char buf[32];
            int64_t k;
            if (wl - 2 >= sizeof buf) {
                rc = HS_EPARSE;
                goto out;
            }
            memcpy(buf, w + 2, wl - 2);
            buf[wl - 2] = '\0';
            if (hs_parse_i64(buf, &k) != HS_OK || k < 0 || k > 10000000) {
                rc = HS_EPARSE;
                goto out;
            }
            for (int64_t i = 0; i < k; i++)
                PUSH(true, 0);
            continue;
        }
        /* A[+-]BxN or AxN: the repetition count follows the last 'x'; it takes
         * precedence over a hexadecimal reading ("0x59" is 60 zeros). */
        const char *x = NULL;
        for (size_t i = wl; i > 0; i--) {
            if (w[i - 1] == 'x') {
                x = w + i - 1;
                break;
            }
        }
        bool digits = x != NULL && x + 1 < w + wl && x > w;
        for (const char *q = x ? x + 1 : w; digits && q < w + wl; q++)
            digits = *q >= '0' && *q <= '9';
        if (!digits) {
            if (parse_num(w, wl, &a)) {
                PUSH(false, a);
                continue;
            }
            rc = HS_EPARSE;
            goto out;
        }
        char nb[32];
        int64_t rep;
        size_t nl = (size_t)(w + wl - x - 1);
        if (nl == 0 || nl >= sizeof nb) {
            rc = HS_EPARSE;
            goto out;
        }
        memcpy(nb, x + 1, nl);
        nb[nl] = '\0';
        if (hs_parse_i64(nb, &rep) != HS_OK || rep < 0 || rep > 10000000) {
            rc = HS_EPARSE;
            goto out;
        }
        size_t pl = (size_t)(x - w);
        double b = 0;
        bool found = false;
        for (size_t i = 1; i < pl; i++) {
            if ((w[i] == '+' || w[i] == '-') && w[i - 1] != 'e' && w[i - 1] != 'E') {
                if (!parse_num(w, i, &a) || !parse_num(w + i + 1, pl - i - 1, &b)) {
                    rc = HS_EPARSE;
                    goto out;
                }
                if (w[i] == '-')
                    b = -b;
                found = true;
                break;
            }
        }
        if (!found) {
            if (!parse_num(w, pl, &a)) {
                rc = HS_EPARSE;
                goto out;
            }
        }
        double cur = a;
        for (int64_t i = 0; i <= rep; i++) {
            PUSH(false, cur);
            cur += b;
        }
    }
#undef PUSH
out:
    if (rc != HS_OK) {
        hs_free(v);
        return rc;
    }
    *outv = v;
    *outn = n;
    return HS_OK;
}

/* ---- comparison ------------------------------------------------------------------------- */

static bool float_eq(double a, double e)
{
    if (promql__is_stale(a) || promql__is_stale(e))
        return promql__is_stale(a) && promql__is_stale(e);
    if (isnan(a) && isnan(e))
        return true;
    if (a == e)
        return true;
    const double min_normal = 2.2250738585072014e-308;
    double sum = fabs(a) + fabs(e), diff = fabs(a - e);
    if (a == 0 || e == 0 || sum < min_normal)
        return diff < 1e-6 * min_normal;
    return diff / fmin(sum, 1.7976931348623157e308) < 1e-6;
}

static bool regex_search(const char *re_src, const char *subject)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)re_src, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
    bool r = false;
    if (re == NULL)
        return false;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (md != NULL)
        r = pcre2_match(re, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md, NULL) >= 0;
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return r;
}

/* ---- eval cases ---------------------------------------------------------------------------- */

enum { EXP_ANY = 0, EXP_MSG, EXP_REGEX };

struct expect_anno {
    int kind;        /* EXP_ANY / EXP_MSG / EXP_REGEX */
    const char *txt; /* message or regex */
};

struct exp_series {
    struct hs_labels labels;
    struct slot *vals;
    size_t nvals;
};

struct ecase {
    int line;
    bool range;
    int64_t at, start, end, step;
    const char *expr;
    bool fail;
    int fail_kind;
    const char *fail_txt;
    bool ordered;
    bool no_warn, no_info;
    struct expect_anno warns[16], infos[16];
    size_t nwarns, ninfos;
    bool has_warn, has_info;
    bool scalar;
    double scalar_v;
    bool is_string;
    const char *string_v;
    bool range_vec;
    int64_t rv_start, rv_end, rv_step;
    struct exp_series *series;
    size_t nseries, capseries;
    bool hist; /* body has {{ }} */
};

static void report(struct runner *r, const struct ecase *ec, int outcome, const char *msg)
{
    if (outcome == PROMQL_TEST_PASS)
        r->tot->passed++;
    else if (outcome == PROMQL_TEST_FAIL)
        r->tot->failed++;
    else
        r->tot->skipped++;
    if (outcome == PROMQL_TEST_FAIL && r->out != NULL)
        fprintf(r->out, "%s:%d: FAIL: %s\n    %s\n", r->path, ec->line, ec->expr, msg);
    if (r->cb != NULL)
        r->cb(r->cbarg, r->path, ec->line, outcome, msg);
}

static void fmt_val(double v, char *b, size_t n)
{
    if (promql__is_stale(v))
        snprintf(b, n, "stale");
    else
        promql__fmt_float(v, b, n);
}

static void describe_result(const struct promql_result *res, struct hs_buf *b)
{
    int rc = HS_OK;
    char num[64];
    switch (res->type) {
    case PROMQL_RESULT_SCALAR:
        fmt_val(res->scalar, num, sizeof num);
        rc = hs_buf_printf(b, "scalar %s", num);
        break;
    case PROMQL_RESULT_STRING:
        rc = hs_buf_printf(b, "string \"%s\"", res->str);
        break;
    default:
        rc = hs_buf_printf(b, "%s of %zu series:",
                           res->type == PROMQL_RESULT_VECTOR ? "vector" : "matrix", res->nseries);
        for (size_t k = 0; k < res->nseries && k < 40 && rc == HS_OK; k++) {
            rc = hs_buf_puts(b, "\n      ");
            if (rc == HS_OK)
                rc = hs_labels_format(&res->series[k].labels, b);
            for (size_t i = 0; i < res->series[k].npoints && i < 60 && rc == HS_OK; i++) {
                fmt_val(res->series[k].points[i].v, num, sizeof num);
                if (res->type == PROMQL_RESULT_VECTOR)
                    rc = hs_buf_printf(b, " %s", num);
                else
                    rc =
                        hs_buf_printf(b, " %s@%lld", num, (long long)res->series[k].points[i].t_ms);
            }
        }
        break;
    }
    (void)rc;
}

static void describe_expected(const struct ecase *ec, struct hs_buf *b)
{
    int rc = HS_OK;
    char num[64];
    if (ec->scalar) {
        fmt_val(ec->scalar_v, num, sizeof num);
        rc = hs_buf_printf(b, "scalar %s", num);
    } else if (ec->is_string) {
        rc = hs_buf_printf(b, "string \"%s\"", ec->string_v);
    } else {
        rc = hs_buf_printf(b, "%zu series:", ec->nseries);
        for (size_t k = 0; k < ec->nseries && rc == HS_OK; k++) {
            rc = hs_buf_puts(b, "\n      ");
            if (rc == HS_OK)
                rc = hs_labels_format(&ec->series[k].labels, b);
            for (size_t i = 0; i < ec->series[k].nvals && i < 60 && rc == HS_OK; i++) {
                if (ec->series[k].vals[i].empty)
                    rc = hs_buf_puts(b, " _");
                else {
                    fmt_val(ec->series[k].vals[i].v, num, sizeof num);
                    rc = hs_buf_printf(b, " %s", num);
                }
            }
        }
    }
    (void)rc;
}

static bool anno_matches(const struct expect_anno *e, const char *msg)
{
    switch (e->kind) {
    case EXP_MSG:
        return strcmp(e->txt, msg) == 0;
    case EXP_REGEX:
        return regex_search(e->txt, msg);
    default:
        return true;
    }
}

/* Checks annotations of one kind; fills why on mismatch. */
static bool check_annos(const char *kind, bool has, bool none, const struct expect_anno *exp,
                        size_t nexp, const char **got, size_t ngot, struct hs_buf *why)
{
    if (none && ngot > 0) {
        note(why, "expected no %s but got: %s", kind, got[0]);
        return false;
    }
    if (!has)
        return true;
    if (ngot == 0) {
        note(why, "expected %s annotation(s) but got none", kind);
        return false;
    }
    for (size_t i = 0; i < nexp; i++) {
        bool m = false;
        for (size_t j = 0; j < ngot && !m; j++)
            m = anno_matches(&exp[i], got[j]);
        if (!m) {
            note(why, "expected %s \"%s\" not found; got: %s", kind, exp[i].txt, got[0]);
            return false;
        }
    }
    for (size_t j = 0; j < ngot; j++) {
        bool m = false;
        for (size_t i = 0; i < nexp && !m; i++)
            m = anno_matches(&exp[i], got[j]);
        if (!m) {
            note(why, "unexpected %s: %s", kind, got[j]);
            return false;
        }
    }
    return true;
}

static const struct exp_series *find_exp(const struct ecase *ec, const struct hs_labels *ls,
                                         bool *used, size_t *idx)
{
    for (size_t k = 0; k < ec->nseries; k++) {
        if (!used[k] && hs_labels_cmp(&ec->series[k].labels, ls) == 0) {
            *idx = k;
            return &ec->series[k];
        }
    }
    return NULL;
}

/* Compares a result with the expectations; returns true when it matches. */
static bool check_result(const struct ecase *ec, const struct promql_result *res,
                         struct hs_buf *why)
{
    char a[64], e[64];
    if (ec->scalar) {
        if (res->type != PROMQL_RESULT_SCALAR) {
            note(why, "%s", "expected a scalar");
            return false;
        }
        if (!float_eq(res->scalar, ec->scalar_v)) {
            fmt_val(res->scalar, a, sizeof a);
            fmt_val(ec->scalar_v, e, sizeof e);
            note(why, "expected scalar %s, got %s", e, a);
            return false;
        }
        return true;
    }
    if (ec->is_string) {
        if (res->type != PROMQL_RESULT_STRING || strcmp(res->str, ec->string_v) != 0) {
            note(why, "%s", "string result differs");
            return false;
        }
        return true;
    }
    bool want_matrix = ec->range || ec->range_vec;
    if (want_matrix ? res->type != PROMQL_RESULT_MATRIX : res->type != PROMQL_RESULT_VECTOR) {
        note(why, "expected a %s", want_matrix ? "matrix" : "vector");
        return false;
    }
    if (res->nseries != ec->nseries) {
        note(why, "expected %zu series, got %zu", ec->nseries, res->nseries);
        return false;
    }
    bool *used = hs_calloc(ec->nseries ? ec->nseries : 1, sizeof *used);
    bool ok = true;
    if (used == NULL)
        return false;
    for (size_t k = 0; k < res->nseries && ok; k++) {
        const struct promql_rseries *rs = &res->series[k];
        size_t idx = 0;
        const struct exp_series *es;
        if (ec->ordered && !want_matrix) {
            es = hs_labels_cmp(&ec->series[k].labels, &rs->labels) == 0 ? &ec->series[k] : NULL;
            idx = k;
        } else {
            es = find_exp(ec, &rs->labels, used, &idx);
        }
        if (es == NULL) {
            struct hs_buf lb;
            hs_buf_init(&lb, 0);
            if (hs_labels_format(&rs->labels, &lb) != HS_OK)
                note(&lb, "?");
            note(why, "unexpected series %s%s", lb.p ? lb.p : "{}",
                 ec->ordered ? " (or out of order)" : "");
            hs_buf_cleanup(&lb);
            ok = false;
            break;
        }
        used[idx] = true;
        if (!want_matrix) {
            if (es->nvals != 1 || es->vals[0].empty || rs->npoints != 1 ||
                !float_eq(rs->points[0].v, es->vals[0].v)) {
                fmt_val(rs->npoints ? rs->points[0].v : NAN, a, sizeof a);
                fmt_val(es->nvals ? es->vals[0].v : NAN, e, sizeof e);
                note(why, "value differs for a series: expected %s, got %s", e, a);
                ok = false;
            }
            continue;
        }
        int64_t st = ec->range_vec ? ec->rv_start : ec->start;
        int64_t step = ec->range_vec ? ec->rv_step : ec->step;
        size_t p = 0;
        for (size_t i = 0; i < es->nvals && ok; i++) {
            int64_t t = st + (int64_t)i * step;
            if (es->vals[i].empty)
                continue;
            if (p >= rs->npoints || rs->points[p].t_ms != t ||
                !float_eq(rs->points[p].v, es->vals[i].v)) {
                fmt_val(es->vals[i].v, e, sizeof e);
                if (p < rs->npoints)
                    fmt_val(rs->points[p].v, a, sizeof a);
                else
                    snprintf(a, sizeof a, "nothing");
                note(why, "at t=%lld expected %s, got %s@%lld", (long long)t, e, a,
                     p < rs->npoints ? (long long)rs->points[p].t_ms : -1LL);
                ok = false;
                break;
            }
            p++;
        }
        if (ok && p != rs->npoints) {
            note(why, "series has %zu points, expected %zu", rs->npoints, p);
            ok = false;
        }
    }
    hs_free(used);
    return ok;
}

/* True when one of the query's selectors matches a native-histogram series. */
static bool walk_hist(struct runner *r, const struct promql_node *n)
{
    if (n == NULL)
        return false;
    switch (n->kind) {
    case PROMQL_NODE_VECTOR: {
        for (size_t h = 0; h < r->nhist; h++) {
            bool all = true;
            for (size_t i = 0; i < n->u.sel.nmatchers && all; i++) {
                struct promql_matcher m = {n->u.sel.matchers[i].op, n->u.sel.matchers[i].name,
                                           n->u.sel.matchers[i].value, NULL, NULL};
                if (promql_matcher_compile(&m, NULL) != HS_OK) {
                    all = false;
                    break;
                }
                all = promql_matcher_matches(&m, hs_labels_get(r->hist[h].ls, m.name));
                promql_matcher_cleanup(&m);
            }
            if (all)
                return true;
        }
        return false;
    }
    case PROMQL_NODE_MATRIX:
        return walk_hist(r, n->u.matrix.vector);
    case PROMQL_NODE_SUBQUERY:
        return walk_hist(r, n->u.subquery.expr);
    case PROMQL_NODE_CALL:
        for (size_t i = 0; i < n->u.call.nargs; i++) {
            if (walk_hist(r, n->u.call.args[i]))
                return true;
        }
        return false;
    case PROMQL_NODE_AGGREGATE:
        return walk_hist(r, n->u.agg.expr) || walk_hist(r, n->u.agg.param);
    case PROMQL_NODE_BINARY:
        return walk_hist(r, n->u.bin.lhs) || walk_hist(r, n->u.bin.rhs);
    case PROMQL_NODE_UNARY:
        return walk_hist(r, n->u.unary.expr);
    case PROMQL_NODE_PAREN:
        return walk_hist(r, n->u.paren.expr);
    default:
        return false;
    }
}

static bool touches_hist(struct runner *r, const char *expr)
{
    struct hs_arena a;
    struct promql_node *root;
    bool res = false;
    if (r->nhist == 0)
        return false;
    hs_arena_init(&a, 16 * 1024, 0);
    root = promql__parse(expr, strlen(expr), &a, NULL);
    if (root != NULL)
        res = walk_hist(r, root);
    hs_arena_cleanup(&a);
    return res;
}

/* Functions whose result varies with the evaluation time even over @-pinned data. */
static const char *at_unsafe[] = {
    "time",         "timestamp",   "predict_linear", "start", "end",
    "range",        "step",        "minute",         "hour",  "day_of_week",
    "day_of_month", "day_of_year", "days_in_month",  "month", "year"};

/* Sets @ t on every selector and subquery without one (not inside a subquery
 * that has one); false when the expression calls an @-unsafe function. */
static bool pin_unsafe_free(const struct promql_node *n);

static bool pin_at(struct promql_node *n, int64_t t)
{
    if (n == NULL)
        return true;
    switch (n->kind) {
    case PROMQL_NODE_VECTOR:
        if (n->u.sel.at == PROMQL_AT_NONE || n->u.sel.at == PROMQL_AT_START ||
            n->u.sel.at == PROMQL_AT_END) {
            n->u.sel.at = PROMQL_AT_TIME;
            n->u.sel.at_ms = t;
        }
        return true;
    case PROMQL_NODE_MATRIX:
        return pin_at(n->u.matrix.vector, t);
    case PROMQL_NODE_SUBQUERY:
        if (n->u.subquery.at != PROMQL_AT_TIME) {
            n->u.subquery.at = PROMQL_AT_TIME;
            n->u.subquery.at_ms = t;
        }
        return pin_unsafe_free(n->u.subquery.expr);
    case PROMQL_NODE_CALL:
        for (size_t i = 0; i < HS_ARRAY_LEN(at_unsafe); i++) {
            if (strcmp(n->u.call.func->name, at_unsafe[i]) == 0)
                return false;
        }
        for (size_t i = 0; i < n->u.call.nargs; i++) {
            if (!pin_at(n->u.call.args[i], t))
                return false;
        }
        return true;
    case PROMQL_NODE_AGGREGATE:
        return pin_at(n->u.agg.expr, t) && pin_at(n->u.agg.param, t);
    case PROMQL_NODE_BINARY:
        return pin_at(n->u.bin.lhs, t) && pin_at(n->u.bin.rhs, t);
    case PROMQL_NODE_UNARY:
        return pin_at(n->u.unary.expr, t);
    case PROMQL_NODE_PAREN:
        return pin_at(n->u.paren.expr, t);
    default:
        return true;
    }
}

/* Inside a pinned subquery nothing changes, but unsafe functions still count. */
static bool pin_unsafe_free(const struct promql_node *n)
{
    if (n == NULL)
        return true;
    switch (n->kind) {
    case PROMQL_NODE_SUBQUERY:
        return pin_unsafe_free(n->u.subquery.expr);
    case PROMQL_NODE_CALL:
        for (size_t i = 0; i < HS_ARRAY_LEN(at_unsafe); i++) {
            if (strcmp(n->u.call.func->name, at_unsafe[i]) == 0)
                return false;
        }
        for (size_t i = 0; i < n->u.call.nargs; i++) {
            if (!pin_unsafe_free(n->u.call.args[i]))
                return false;
        }
        return true;
    case PROMQL_NODE_AGGREGATE:
        return pin_unsafe_free(n->u.agg.expr) && pin_unsafe_free(n->u.agg.param);
    case PROMQL_NODE_BINARY:
        return pin_unsafe_free(n->u.bin.lhs) && pin_unsafe_free(n->u.bin.rhs);
    case PROMQL_NODE_UNARY:
        return pin_unsafe_free(n->u.unary.expr);
    case PROMQL_NODE_PAREN:
        return pin_unsafe_free(n->u.paren.expr);
    default:
        return true;
    }
}

/* The query with @ <t> pinned, in 'out'; false when the check does not apply. */
static bool at_variant(const char *expr, int64_t t, struct hs_buf *out)
{
    struct hs_arena a;
    struct promql_node *root;
    bool ok = false;
    hs_arena_init(&a, 16 * 1024, 0);
    root = promql__parse(expr, strlen(expr), &a, NULL);
    if (root != NULL && pin_at(root, t) && promql__print(root, out) == HS_OK)
        ok = true;
    hs_arena_cleanup(&a);
    return ok;
}

/* One instant run of 'expr' at t with every check of the case; fills why. */
static void check_instant(struct runner *r, const struct ecase *ec, const char *expr, int64_t t,
                          bool range_mode, struct hs_buf *why)
{
    struct promql_result *res = NULL, *rres = NULL;
    struct hs_err err;
    int rc;
    hs_err_clear(&err);
    rc = promql_query_instant(r->eng, &r->st, expr, t, NULL, &res, &err);
    if (ec->fail) {
        if (rc == HS_OK)
            note(why, "expected %s to fail but it succeeded", expr);
        else if (ec->fail_kind == EXP_MSG && strcmp(err.msg, ec->fail_txt) != 0)
            note(why, "expected error \"%s\", got \"%s\"", ec->fail_txt, err.msg);
        else if (ec->fail_kind == EXP_REGEX && !regex_search(ec->fail_txt, err.msg))
            note(why, "expected error matching \"%s\", got \"%s\"", ec->fail_txt, err.msg);
        goto out;
    }
    if (rc != HS_OK) {
        note(why, "unexpected error: %s (query %s at %lld)", err.msg, expr, (long long)t);
        goto out;
    }
    if (!check_annos("warn", ec->has_warn, ec->no_warn, ec->warns, ec->nwarns, res->warnings,
                     res->nwarnings, why) ||
        !check_annos("info", ec->has_info, ec->no_info, ec->infos, ec->ninfos, res->infos,
                     res->ninfos, why))
        goto out;
    if (!check_result(ec, res, why)) {
        note(why, "\n    query: %s at %lld\n    expected: ", expr, (long long)t);
        describe_expected(ec, why);
        note(why, "%s", "\n    got: ");
        describe_result(res, why);
        goto out;
    }
    if (!range_mode || ec->range_vec || ec->is_string || ec->ordered || strstr(expr, "start()") ||
        strstr(expr, "end()") || strstr(expr, "range()") || strstr(expr, "step()"))
        goto out;
    /* Instant = the middle step of a range query t-1m..t+1m. */
    rc = promql_query_range(r->eng, &r->st, expr, t - 60000, t + 60000, 60000, NULL, &rres, &err);
    if (rc != HS_OK) {
        note(why, "range mode: unexpected error: %s", err.msg);
        goto out;
    }
    struct promql_result mid = *rres;
    struct promql_rseries *ms = hs_calloc(rres->nseries ? rres->nseries : 1, sizeof *ms);
    if (ms == NULL)
        goto out;
    mid.series = ms;
    mid.nseries = 0;
    for (size_t k = 0; k < rres->nseries; k++) {
        if (k > 0 && hs_labels_cmp(&rres->series[k - 1].labels, &rres->series[k].labels) >= 0) {
            note(why, "%s", "range mode: matrix not sorted by labels");
            hs_free(ms);
            goto out;
        }
        for (size_t i = 0; i < rres->series[k].npoints; i++) {
            if (rres->series[k].points[i].t_ms == t) {
                ms[mid.nseries] = rres->series[k];
                ms[mid.nseries].points = &rres->series[k].points[i];
                ms[mid.nseries].npoints = 1;
                mid.nseries++;
                break;
            }
        }
    }
    if (res->type == PROMQL_RESULT_SCALAR) {
        mid.type = PROMQL_RESULT_SCALAR;
        mid.scalar = mid.nseries > 0 ? ms[0].points[0].v : NAN;
    } else {
        mid.type = PROMQL_RESULT_VECTOR;
    }
    struct ecase unordered = *ec;
    unordered.ordered = false;
    if (!check_result(&unordered, &mid, why)) {
        note(why, "\n    range mode, query: %s at %lld\n    expected: ", expr, (long long)t);
        describe_expected(ec, why);
        note(why, "%s", "\n    got: ");
        describe_result(&mid, why);
    }
    hs_free(ms);
out:
    promql_result_free(res);
    promql_result_free(rres);
}

static void run_case(struct runner *r, struct ecase *ec)
{
    struct promql_result *res = NULL;
    struct hs_err err;
    struct hs_buf why;
    int rc;
    hs_err_clear(&err);
    if (ec->hist || touches_hist(r, ec->expr)) {
        report(r, ec, PROMQL_TEST_SKIP, "native histograms");
        return;
    }
    hs_buf_init(&why, 1 << 20);
    if (!ec->range) {
        int64_t t = ec->range_vec ? ec->rv_end : ec->at;
        check_instant(r, ec, ec->expr, t, !ec->fail, &why);
        if (why.len == 0 && r->extra && !ec->range_vec && !ec->is_string) {
            struct hs_buf q;
            hs_buf_init(&q, 0);
            if (at_variant(ec->expr, t, &q)) {
                int64_t times[5] = {-10 * t, 0, t / 5, t, 10 * t};
                int64_t times0[3] = {-1000, 0, 1000};
                int64_t *ts = t == 0 ? times0 : times;
                size_t nt = t == 0 ? 3 : 5;
                for (size_t i = 0; i < nt && why.len == 0; i++)
                    check_instant(r, ec, q.p, ts[i], !ec->fail, &why);
            }
            hs_buf_cleanup(&q);
        }
        goto done;
    }
    rc = promql_query_range(r->eng, &r->st, ec->expr, ec->start, ec->end, ec->step, NULL, &res,
                            &err);
    if (ec->fail) {
        if (rc == HS_OK) {
            note(&why, "%s", "expected the query to fail but it succeeded");
        } else if (ec->fail_kind == EXP_MSG && strcmp(err.msg, ec->fail_txt) != 0) {
            note(&why, "expected error \"%s\", got \"%s\"", ec->fail_txt, err.msg);
        } else if (ec->fail_kind == EXP_REGEX && !regex_search(ec->fail_txt, err.msg)) {
            note(&why, "expected error matching \"%s\", got \"%s\"", ec->fail_txt, err.msg);
        }
        goto done;
    }
    if (rc != HS_OK) {
        note(&why, "unexpected error: %s", err.msg);
        goto done;
    }
    if (!check_annos("warn", ec->has_warn, ec->no_warn, ec->warns, ec->nwarns, res->warnings,
                     res->nwarnings, &why) ||
        !check_annos("info", ec->has_info, ec->no_info, ec->infos, ec->ninfos, res->infos,
                     res->ninfos, &why))
        goto done;
    if (ec->ordered) {
        note(&why, "%s", "expect ordered on a range query");
        goto done;
    }
    if (!check_result(ec, res, &why)) {
        note(&why, "%s", "\n    expected: ");
        describe_expected(ec, &why);
        note(&why, "%s", "\n    got: ");
        describe_result(res, &why);
    }
done:
    report(r, ec, why.len == 0 ? PROMQL_TEST_PASS : PROMQL_TEST_FAIL, why.len ? why.p : NULL);
    hs_buf_cleanup(&why);
    promql_result_free(res);
}

/* ---- commands ------------------------------------------------------------------------------ */

static int file_error(struct runner *r, int line, struct hs_err *err, const char *what)
{
    return hs_err_set(err, HS_EPARSE, "%s:%d: %s", r->path, line, what);
}

static int add_hist(struct runner *r, const struct hs_labels *ls)
{
    for (size_t i = 0; i < r->nhist; i++) {
        if (hs_labels_cmp(r->hist[i].ls, ls) == 0)
            return HS_OK;
    }
    if (r->nhist == r->caphist) {
        size_t ncap = r->caphist ? r->caphist * 2 : 16;
        struct hlabels *nh = hs_reallocarray(r->hist, ncap, sizeof *nh);
        if (nh == NULL)
            return HS_ENOMEM;
        r->hist = nh;
        r->caphist = ncap;
    }
    r->hist[r->nhist].ls = hs_labels_dup(ls);
    if (r->hist[r->nhist].ls == NULL)
        return HS_ENOMEM;
    r->nhist++;
    return HS_OK;
}

static void clear_hist(struct runner *r)
{
    for (size_t i = 0; i < r->nhist; i++)
        hs_labels_free(r->hist[i].ls);
    r->nhist = 0;
}

/* load_with_nhcb: the histogram series X{...} derived from X_bucket{le=...}. */
static int add_nhcb(struct runner *r, const struct hs_labels *ls)
{
    const char *name = hs_labels_get(ls, "__name__");
    struct hs_labels tmp;
    struct hs_label v[64];
    size_t n = 0;
    if (name == NULL || !hs_has_suffix(name, "_bucket") || ls->n > HS_ARRAY_LEN(v))
        return HS_OK;
    char base[256];
    size_t bl = strlen(name) - strlen("_bucket");
    if (bl >= sizeof base)
        return HS_OK;
    memcpy(base, name, bl);
    base[bl] = '\0';
    for (size_t i = 0; i < ls->n; i++) {
        if (strcmp(ls->v[i].name, "le") == 0)
            continue;
        if (strcmp(ls->v[i].name, "__name__") == 0)
            v[n++] = (struct hs_label){"__name__", base};
        else
            v[n++] = ls->v[i];
    }
    tmp.v = v;
    tmp.n = n;
    return add_hist(r, &tmp);
}

/* A signed Prometheus duration ("-30s", "1m", "0"). */
static bool parse_sdur(const char *w, size_t n, int64_t *out)
{
    bool neg = n > 0 && (w[0] == '-' || w[0] == '+');
    if (!parse_dur(w + (neg ? 1 : 0), n - (neg ? 1 : 0), out))
        return false;
    if (neg && w[0] == '-')
        *out = -*out;
    return true;
}

/*
 * The items of an `@st` line (FORMAT.md 3.2): per slot an offset added to
 * the sample time to give its start timestamp, or "none".  *outv gets
 * hs_malloc'd slots (empty = no start timestamp).
 */
static int parse_st_items(const char *s, struct slot **outv, size_t *outn)
{
    size_t cap = 64, n = 0;
    struct slot *v = hs_malloc(cap * sizeof *v);
    if (v == NULL)
        return HS_ENOMEM;
    for (;;) {
        const char *w = NULL;
        size_t wl = 0;
        int64_t a = 0, b = 0, rep = 0;
        bool empty = false;
        if (!word(&s, &w, &wl))
            break;
        const char *x = NULL;
        for (size_t i = wl; i > 0; i--) {
            if (w[i - 1] == 'x') {
                x = w + i - 1;
                break;
            }
        }
        size_t pl = x != NULL ? (size_t)(x - w) : wl;
        if (x != NULL) {
            char nb[32];
            size_t nl = (size_t)(w + wl - x - 1);
            if (nl == 0 || nl >= sizeof nb)
                goto bad;
            memcpy(nb, x + 1, nl);
            nb[nl] = '\0';
            if (hs_parse_i64(nb, &rep) != HS_OK || rep < 0 || rep > 10000000)
                goto bad;
        }
        if (pl == 1 && w[0] == '_') {
            empty = true;
            if (x != NULL)
                rep--; /* _xN is exactly N slots */
        } else {
            size_t op = 0;
            for (size_t i = 1; i < pl && op == 0; i++) {
                if (w[i] == '+' || w[i] == '-')
                    op = i;
            }
            if (op == 0) {
                if (!parse_sdur(w, pl, &a))
                    goto bad;
            } else {
                if (x == NULL || !parse_sdur(w, op, &a) || !parse_sdur(w + op + 1, pl - op - 1, &b))
                    goto bad;
                if (w[op] == '-')
                    b = -b;
            }
        }
        for (int64_t i = 0; i <= rep; i++) {
            if (n == cap) {
                struct slot *nv = hs_reallocarray(v, cap * 2, sizeof *v);
                if (nv == NULL) {
                    hs_free(v);
                    return HS_ENOMEM;
                }
                v = nv;
                cap *= 2;
            }
            v[n].empty = empty;
            v[n].v = (double)(a + i * b);
            n++;
        }
    }
    *outv = v;
    *outn = n;
    return HS_OK;
bad:
    hs_free(v);
    return HS_EPARSE;
}

static int cmd_load(struct runner *r, size_t *li, struct hs_err *err)
{
    const char *p = r->lines[*li], *w = NULL;
    size_t wl = 0;
    int64_t interval;
    bool nhcb;
    int line = (int)*li + 1, st_line = 0, rc = HS_OK;
    struct slot *sts = NULL; /* pending @st offsets for the next line */
    size_t nsts = 0;
    struct hs_labels *st_labels = NULL;
    word(&p, &w, &wl);
    nhcb = word_is(w, wl, "load_with_nhcb");
    if (!word(&p, &w, &wl) || !parse_dur(w, wl, &interval))
        return file_error(r, line, err, "invalid load interval");
    for ((*li)++; *li < r->nlines && r->lines[*li][0] != '\0'; (*li)++) {
        const char *s = r->lines[*li];
        struct hs_labels ls;
        struct slot *vals = NULL;
        size_t nv = 0;
        bool hist;
        hs_arena_reset(&r->arena);
        if (parse_series(&r->arena, &s, &ls) != HS_OK) {
            rc = file_error(r, (int)*li + 1, err, "invalid series description");
            goto fail;
        }
        if (hs_has_prefix(s, "@st") && (s[3] == ' ' || s[3] == '\t' || s[3] == '\0')) {
            /* Start timestamps for the next line, which must be the same series. */
            hs_free(sts);
            hs_labels_free(st_labels);
            sts = NULL;
            st_labels = hs_labels_dup(&ls);
            if (st_labels == NULL) {
                rc = hs_err_set(err, HS_ENOMEM, "out of memory");
                goto fail;
            }
            if (parse_st_items(s + 3, &sts, &nsts) != HS_OK) {
                sts = NULL;
                rc = file_error(r, (int)*li + 1, err, "invalid start-timestamp line");
                goto fail;
            }
            st_line = (int)*li + 1;
            continue;
        }
        rc = parse_values(s, &vals, &nv, &hist);
        if (rc != HS_OK) {
            rc = file_error(r, (int)*li + 1, err, "invalid value sequence");
            goto fail;
        }
        if (sts != NULL && (hs_labels_cmp(st_labels, &ls) != 0 || nsts != nv)) {
            hs_free(vals);
            rc = file_error(r, st_line, err, "@st line not followed by a matching sample line");
            goto fail;
        }
        if ((hist && add_hist(r, &ls) != HS_OK) || (nhcb && add_nhcb(r, &ls) != HS_OK)) {
            hs_free(vals);
            rc = hs_err_set(err, HS_ENOMEM, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < nv; i++) {
            if (vals[i].empty)
                continue;
            int64_t t = (int64_t)i * interval;
            int64_t st = sts != NULL && !sts[i].empty ? t + (int64_t)sts[i].v : 0;
            rc = promql_mem_append_st(r->mem, &ls, t, vals[i].v, st, err);
            if (rc != HS_OK) {
                hs_free(vals);
                goto fail;
            }
        }
        hs_free(vals);
        hs_free(sts);
        hs_labels_free(st_labels);
        sts = NULL;
        st_labels = NULL;
    }
    if (sts != NULL) {
        rc = file_error(r, st_line, err, "@st line not followed by a matching sample line");
        goto fail;
    }
    return HS_OK;
fail:
    hs_free(sts);
    hs_labels_free(st_labels);
    return rc;
}

static int parse_expect(struct runner *r, struct ecase *ec, const char *s, int line,
                        struct hs_err *err)
{
    const char *p = s, *w = NULL;
    size_t wl = 0;
    word(&p, &w, &wl); /* "expect" */
    if (!word(&p, &w, &wl))
        return file_error(r, line, err, "empty expect line");
    if (word_is(w, wl, "fail") || word_is(w, wl, "warn") || word_is(w, wl, "info")) {
        int kind = EXP_ANY;
        const char *txt = NULL;
        char which = w[0];
        const char *rest = p;
        while (*rest == ' ' || *rest == '\t')
            rest++;
        if (hs_has_prefix(rest, "msg:")) {
            kind = EXP_MSG;
            txt = rest + 4;
        } else if (hs_has_prefix(rest, "regex:")) {
            kind = EXP_REGEX;
            txt = rest + 6;
        }
        if (txt != NULL) {
            while (*txt == ' ' || *txt == '\t')
                txt++;
        }
        if (which == 'f') {
            ec->fail = true;
            ec->fail_kind = kind;
            ec->fail_txt = txt;
        } else if (which == 'w') {
            ec->has_warn = true;
            if (ec->nwarns < HS_ARRAY_LEN(ec->warns))
                ec->warns[ec->nwarns++] = (struct expect_anno){kind, txt};
        } else {
            ec->has_info = true;
            if (ec->ninfos < HS_ARRAY_LEN(ec->infos))
                ec->infos[ec->ninfos++] = (struct expect_anno){kind, txt};
        }
        return HS_OK;
    }
    if (word_is(w, wl, "no_warn")) {
        ec->no_warn = true;
        return HS_OK;
    }
    if (word_is(w, wl, "no_info")) {
        ec->no_info = true;
        return HS_OK;
    }
    if (word_is(w, wl, "ordered")) {
        ec->ordered = true;
        return HS_OK;
    }
    if (word_is(w, wl, "string")) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (parse_quoted(&r->arena, &p, &ec->string_v) != HS_OK)
            return file_error(r, line, err, "invalid expect string");
        ec->is_string = true;
        return HS_OK;
    }
    if (word_is(w, wl, "range")) {
        /* expect range vector from A to B step S */
        const char *ws[7];
        size_t wls[7];
        for (int i = 0; i < 7; i++) {
            if (!word(&p, &ws[i], &wls[i]))
                return file_error(r, line, err, "invalid expect range vector");
        }
        if (!word_is(ws[0], wls[0], "vector") || !parse_dur(ws[2], wls[2], &ec->rv_start) ||
            !parse_dur(ws[4], wls[4], &ec->rv_end) || !parse_dur(ws[6], wls[6], &ec->rv_step))
            return file_error(r, line, err, "invalid expect range vector");
        ec->range_vec = true;
        return HS_OK;
    }
    return file_error(r, line, err, "unknown expect line");
}

static int add_exp_series(struct runner *r, struct ecase *ec, const char *s, int line,
                          struct hs_err *err)
{
    struct hs_labels ls;
    struct slot *vals = NULL;
    size_t nv = 0;
    bool hist;
    if (parse_series(&r->arena, &s, &ls) != HS_OK)
        return file_error(r, line, err, "invalid expected series");
    if (parse_values(s, &vals, &nv, &hist) != HS_OK)
        return file_error(r, line, err, "invalid expected values");
    if (hist)
        ec->hist = true;
    if (ec->nseries == ec->capseries) {
        size_t ncap = ec->capseries ? ec->capseries * 2 : 8;
        struct exp_series *ns = hs_arena_alloc(&r->arena, ncap * sizeof *ns);
        if (ns == NULL) {
            hs_free(vals);
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        }
        if (ec->nseries)
            memcpy(ns, ec->series, ec->nseries * sizeof *ns);
        ec->series = ns;
        ec->capseries = ncap;
    }
    struct slot *av = hs_arena_alloc(&r->arena, (nv ? nv : 1) * sizeof *av);
    if (av == NULL) {
        hs_free(vals);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    if (nv)
        memcpy(av, vals, nv * sizeof *av);
    hs_free(vals);
    ec->series[ec->nseries++] = (struct exp_series){ls, av, nv};
    return HS_OK;
}

static int cmd_eval(struct runner *r, size_t *li, struct hs_err *err)
{
    struct ecase ec;
    const char *p = r->lines[*li], *w = NULL;
    size_t wl = 0;
    int line = (int)*li + 1;
    memset(&ec, 0, sizeof ec);
    ec.line = line;
    hs_arena_reset(&r->arena);
    word(&p, &w, &wl);
    if (word_is(w, wl, "eval_fail"))
        ec.fail = true;
    else if (word_is(w, wl, "eval_warn"))
        ec.has_warn = true;
    else if (word_is(w, wl, "eval_info"))
        ec.has_info = true;
    else if (word_is(w, wl, "eval_ordered"))
        ec.ordered = true;
    else if (!word_is(w, wl, "eval"))
        return file_error(r, line, err, "unknown eval command");
    if (!word(&p, &w, &wl))
        return file_error(r, line, err, "incomplete eval command");
    if (word_is(w, wl, "instant")) {
        if (!word(&p, &w, &wl) || !word_is(w, wl, "at") || !word(&p, &w, &wl) ||
            !parse_dur(w, wl, &ec.at))
            return file_error(r, line, err, "invalid eval instant command");
    } else if (word_is(w, wl, "range")) {
        const char *ws[6];
        size_t wls[6];
        for (int i = 0; i < 6; i++) {
            if (!word(&p, &ws[i], &wls[i]))
                return file_error(r, line, err, "invalid eval range command");
        }
        if (!word_is(ws[0], wls[0], "from") || !parse_dur(ws[1], wls[1], &ec.start) ||
            !word_is(ws[2], wls[2], "to") || !parse_dur(ws[3], wls[3], &ec.end) ||
            !word_is(ws[4], wls[4], "step") || !parse_dur(ws[5], wls[5], &ec.step))
            return file_error(r, line, err, "invalid eval range command");
        if (ec.end < ec.start)
            return file_error(r, line, err, "range end before start");
        ec.range = true;
    } else {
        return file_error(r, line, err, "expected instant or range");
    }
    while (*p == ' ' || *p == '\t')
        p++;
    ec.expr = p;
    for ((*li)++; *li < r->nlines && r->lines[*li][0] != '\0'; (*li)++) {
        const char *s = r->lines[*li];
        int bl = (int)*li + 1;
        int rc;
        double num;
        if (hs_has_prefix(s, "expect ") || strcmp(s, "expect") == 0) {
            rc = parse_expect(r, &ec, s, bl, err);
        } else if (hs_has_prefix(s, "expected_fail_message")) {
            ec.fail = true;
            ec.fail_kind = EXP_MSG;
            ec.fail_txt = trim((char *)s + strlen("expected_fail_message"));
            rc = HS_OK;
        } else if (hs_has_prefix(s, "expected_fail_regexp")) {
            ec.fail = true;
            ec.fail_kind = EXP_REGEX;
            ec.fail_txt = trim((char *)s + strlen("expected_fail_regexp"));
            rc = HS_OK;
        } else if (parse_num(s, strlen(s), &num)) {
            ec.scalar = true;
            ec.scalar_v = num;
            rc = HS_OK;
        } else {
            rc = add_exp_series(r, &ec, s, bl, err);
        }
        if (rc != HS_OK)
            return rc;
    }
    run_case(r, &ec);
    return HS_OK;
}

static int split_lines(struct runner *r, char *text, size_t len)
{
    size_t cap = 256;
    r->lines = hs_malloc(cap * sizeof *r->lines);
    r->nlines = 0;
    if (r->lines == NULL)
        return HS_ENOMEM;
    char *s = text;
    for (;;) {
        char *nl = memchr(s, '\n', len - (size_t)(s - text));
        if (nl != NULL)
            *nl = '\0';
        if (r->nlines == cap) {
            char **n2 = hs_reallocarray(r->lines, cap * 2, sizeof *n2);
            if (n2 == NULL)
                return HS_ENOMEM;
            r->lines = n2;
            cap *= 2;
        }
        char *t = trim(s);
        if (t[0] == '#')
            t[0] = '\0';
        r->lines[r->nlines++] = t;
        if (nl == NULL)
            break;
        s = nl + 1;
    }
    return HS_OK;
}

int promql_test_run_file(const char *path, FILE *out, struct promql_test_totals *totals,
                         promql_test_case_cb *cb, void *arg, struct hs_err *err)
{
    struct runner r;
    struct promql_test_totals local = {0, 0, 0};
    struct promql_engine_opts opts;
    size_t len;
    int rc = HS_OK;
    char *text = hs_read_file(path, MAX_FILE_BYTES, &len, err);
    if (text == NULL)
        return err != NULL && err->code != 0 ? err->code : HS_EIO;
    memset(&r, 0, sizeof r);
    r.path = path;
    r.out = out;
    r.tot = &local;
    r.cb = cb;
    r.cbarg = arg;
    r.extra = true;
    r.mem = promql_mem_new();
    promql_engine_opts_default(&opts);
    opts.max_samples = 10000000;
    opts.timeout_ms = 100000;
    r.eng = promql_engine_new(&opts);
    hs_arena_init(&r.arena, 64 * 1024, 0);
    if (r.mem == NULL || r.eng == NULL || split_lines(&r, text, len) != HS_OK) {
        rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        goto out;
    }
    promql_mem_storage(r.mem, &r.st);
    for (size_t i = 0; i < r.nlines && rc == HS_OK;) {
        const char *l = r.lines[i];
        if (l[0] == '\0') {
            i++;
            continue;
        }
        if (strcasecmp(l, "clear") == 0) {
            promql_mem_clear(r.mem);
            clear_hist(&r);
            i++;
        } else if (strncasecmp(l, "load", 4) == 0) {
            rc = cmd_load(&r, &i, err);
        } else if (strncasecmp(l, "eval", 4) == 0) {
            rc = cmd_eval(&r, &i, err);
        } else {
            rc = file_error(&r, (int)i + 1, err, "unknown command");
        }
    }
    if (out != NULL)
        fprintf(out, "%s: %d passed, %d failed, %d skipped\n", path, local.passed, local.failed,
                local.skipped);
out:
    if (totals != NULL) {
        totals->passed += local.passed;
        totals->failed += local.failed;
        totals->skipped += local.skipped;
    }
    clear_hist(&r);
    hs_free(r.hist);
    hs_free(r.lines);
    hs_arena_cleanup(&r.arena);
    promql_engine_free(r.eng);
    promql_mem_free(r.mem);
    hs_free(text);
    return rc;
}

int promql_test_run_files(char **paths, int n, FILE *out, struct promql_test_totals *totals)
{
    struct promql_test_totals t = {0, 0, 0};
    int status = 0;
    for (int i = 0; i < n; i++) {
        struct hs_err err;
        hs_err_clear(&err);
        if (promql_test_run_file(paths[i], out, &t, NULL, NULL, &err) != HS_OK) {
            if (out != NULL)
                fprintf(out, "%s: error: %s\n", paths[i], err.msg);
            status = 2;
        }
    }
    if (out != NULL) {
        if (t.skipped > 0)
            fprintf(out, "%d passed, %d failed, %d skipped\n", t.passed, t.failed, t.skipped);
        else
            fprintf(out, "%d passed, %d failed\n", t.passed, t.failed);
    }
    if (totals != NULL)
        *totals = t;
    if (status == 0 && t.failed > 0)
        status = 1;
    return status;
}
