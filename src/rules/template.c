/*
 * template.c - the subset of Go's text/template that Prometheus alert labels
 * and annotations use: {{ $labels.x }}, {{ $value }}, pipelines into the
 * humanize family, printf, toUpper/toLower/title.
 *
 * There is no control flow in the subset, so a template is checked by
 * running it once on empty labels: every action is executed on every run.
 * Intermediate strings live in an arena per expansion; numbers are printed
 * as Go prints a float64 (%v: shortest 'g'; %.4g with NaN/+Inf/-Inf).
 */
#include "rules/rules.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum { V_STR = 1, V_NUM, V_MAP };

struct val {
    int t;
    double d;
    const char *s;
    const struct hs_labels *map;
};

struct tctx {
    const char *text; /* whole template, for positions */
    const char *p;    /* cursor inside the current action */
    const char *end;  /* end of the current action */
    const struct hs_labels *labels;
    const struct hs_labels *ext;
    double value;
    int depth; /* parenthesis nesting */
    struct hs_arena arena;
    struct hs_err *err;
};

#define MAX_PAREN_DEPTH 32

static const struct hs_labels no_labels = {0, NULL};

static int terr(struct tctx *c, const char *fmt, const char *arg)
{
    char msg[300];
    snprintf(msg, sizeof msg, fmt, arg);
    size_t off = (size_t)(c->p - c->text);
    return hs_err_setpos(c->err, HS_EPARSE, off, "template: col %zu: %s", off + 1, msg);
}

/* Go's %.4g with Go's spellings of the specials. */
static void fmt4g(double v, const char *suffix, char *out, size_t n)
{
    if (isnan(v))
        snprintf(out, n, "NaN%s", suffix);
    else if (isinf(v))
        snprintf(out, n, "%sInf%s", v > 0 ? "+" : "-", suffix);
    else
        snprintf(out, n, "%.4g%s", v, suffix);
}

static const char *num_str(struct tctx *c, double v)
{
    char b[40];
    hs_format_double(v, b, sizeof b);
    return hs_arena_strndup(&c->arena, b, strlen(b));
}

static int to_num(struct tctx *c, const struct val *v, const char *fn, double *out)
{
    if (v->t == V_NUM) {
        *out = v->d;
        return HS_OK;
    }
    if (v->t == V_STR && hs_parse_double(v->s, out) == HS_OK)
        return HS_OK;
    return terr(c, "error calling %s: cannot convert argument to a number", fn);
}

static int mkstr(struct tctx *c, struct val *out, const char *s)
{
    out->t = V_STR;
    out->s = hs_arena_strndup(&c->arena, s, strlen(s));
    return out->s ? HS_OK : hs_err_set(c->err, HS_ENOMEM, "out of memory");
}

static int fn_humanize(struct tctx *c, double v, struct val *out)
{
    static const char *big[] = {"k", "M", "G", "T", "P", "E", "Z", "Y"};
    static const char *small[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
    const char *prefix = "";
    char b[64];
    if (v == 0 || isnan(v) || isinf(v)) {
        fmt4g(v, "", b, sizeof b);
        return mkstr(c, out, b);
    }
    if (fabs(v) >= 1) {
        for (size_t i = 0; i < HS_ARRAY_LEN(big) && fabs(v) >= 1000; i++) {
            prefix = big[i];
            v /= 1000;
        }
    } else {
        for (size_t i = 0; i < HS_ARRAY_LEN(small) && fabs(v) < 1; i++) {
            prefix = small[i];
            v *= 1000;
        }
    }
    fmt4g(v, prefix, b, sizeof b);
    return mkstr(c, out, b);
}

static int fn_humanize1024(struct tctx *c, double v, struct val *out)
{
    static const char *big[] = {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"};
    const char *prefix = "";
    char b[64];
    if (fabs(v) <= 1 || isnan(v) || isinf(v)) {
        fmt4g(v, "", b, sizeof b);
        return mkstr(c, out, b);
    }
    for (size_t i = 0; i < HS_ARRAY_LEN(big) && fabs(v) >= 1024; i++) {
        prefix = big[i];
        v /= 1024;
    }
    fmt4g(v, prefix, b, sizeof b);
    return mkstr(c, out, b);
}

static int fn_humanize_duration(struct tctx *c, double v, struct val *out)
{
    static const char *small[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
    char b[96];
    if (isnan(v) || isinf(v)) {
        fmt4g(v, "", b, sizeof b);
        return mkstr(c, out, b);
    }
    if (v == 0) {
        fmt4g(v, "s", b, sizeof b);
        return mkstr(c, out, b);
    }
    if (fabs(v) >= 1) {
        const char *sign = "";
        if (v < 0) {
            sign = "-";
            v = -v;
        }
        int64_t d = v >= 9.2e18 ? INT64_MAX : (int64_t)v;
        int64_t s = d % 60, mi = (d / 60) % 60, h = (d / 3600) % 24, days = d / 86400;
        if (days != 0)
            snprintf(b, sizeof b, "%s%lldd %lldh %lldm %llds", sign, (long long)days, (long long)h,
                     (long long)mi, (long long)s);
        else if (h != 0)
            snprintf(b, sizeof b, "%s%lldh %lldm %llds", sign, (long long)h, (long long)mi,
                     (long long)s);
        else if (mi != 0)
            snprintf(b, sizeof b, "%s%lldm %llds", sign, (long long)mi, (long long)s);
        else
            snprintf(b, sizeof b, "%s%.4gs", sign, v);
        return mkstr(c, out, b);
    }
    const char *prefix = "";
    for (size_t i = 0; i < HS_ARRAY_LEN(small) && fabs(v) < 1; i++) {
        prefix = small[i];
        v *= 1000;
    }
    char suf[8];
    snprintf(suf, sizeof suf, "%ss", prefix);
    fmt4g(v, suf, b, sizeof b);
    return mkstr(c, out, b);
}

static int fn_humanize_timestamp(struct tctx *c, double v, struct val *out)
{
    char b[96];
    if (isnan(v) || isinf(v)) {
        fmt4g(v, "", b, sizeof b);
        return mkstr(c, out, b);
    }
    if (fabs(v) > 1e15)
        return terr(c, "error calling %s: timestamp out of range", "humanizeTimestamp");
    double secs = floor(v);
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    int ms = (int)llround((v - secs) * 1000);
    if (ms >= 1000)
        ms = 999;
    size_t n = strftime(b, sizeof b, "%Y-%m-%d %H:%M:%S", &tm);
    if (ms > 0) {
        char frac[8];
        snprintf(frac, sizeof frac, ".%03d", ms);
        size_t k = strlen(frac);
        while (k > 1 && frac[k - 1] == '0')
            frac[--k] = '\0';
        snprintf(b + n, sizeof b - n, "%s +0000 UTC", frac);
    } else {
        snprintf(b + n, sizeof b - n, " +0000 UTC");
    }
    return mkstr(c, out, b);
}

static int val_print(struct tctx *c, const struct val *v, struct hs_buf *b)
{
    if (v->t == V_STR)
        return hs_buf_puts(b, v->s);
    if (v->t == V_NUM) {
        const char *t = num_str(c, v->d);
        return t ? hs_buf_puts(b, t) : HS_ENOMEM;
    }
    /* a label map, as Go prints map[string]string */
    int rc = hs_buf_puts(b, "map[");
    for (size_t i = 0; rc == HS_OK && i < v->map->n; i++)
        rc = hs_buf_printf(b, "%s%s:%s", i ? " " : "", v->map->v[i].name, v->map->v[i].value);
    return rc == HS_OK ? hs_buf_putc(b, ']') : rc;
}

static const char *go_type(const struct val *v)
{
    return v->t == V_NUM ? "float64" : v->t == V_STR ? "string" : "map[string]string";
}

static int fn_printf(struct tctx *c, const struct val *args, size_t nargs, struct val *out)
{
    if (nargs == 0 || args[0].t != V_STR)
        return terr(c, "error calling %s: the format must be a string", "printf");
    const char *f = args[0].s;
    size_t ai = 1;
    struct hs_buf b;
    hs_buf_init(&b, RULES_MAX_TEMPLATE_OUTPUT);
    int rc = HS_OK;
    for (const char *q = f; *q && rc == HS_OK; q++) {
        if (*q != '%') {
            rc = hs_buf_putc(&b, *q);
            continue;
        }
        const char *start = q++;
        while (*q && strchr("-+# 0", *q))
            q++;
        while (isdigit((unsigned char)*q))
            q++;
        if (*q == '.') {
            q++;
            while (isdigit((unsigned char)*q))
                q++;
        }
        if (!*q) {
            rc = hs_buf_puts(&b, "%!(NOVERB)");
            break;
        }
        char verb = *q;
        if (verb == '%') {
            rc = hs_buf_putc(&b, '%');
            continue;
        }
        char spec[32];
        size_t sl = (size_t)(q - start);
        if (sl > sizeof spec - 4) {
            rc = hs_buf_puts(&b, "%!(BADWIDTH)");
            continue;
        }
        if (ai >= nargs) {
            rc = hs_buf_printf(&b, "%%!%c(MISSING)", verb);
            continue;
        }
        const struct val *a = &args[ai++];
        memcpy(spec, start, sl);
        char tmp[512];
        if (strchr("eEfFgG", verb) && a->t == V_NUM) {
            if (isnan(a->d) || isinf(a->d)) {
                fmt4g(a->d, "", tmp, sizeof tmp);
                rc = hs_buf_puts(&b, isnan(a->d) ? "NaN" : tmp);
            } else {
                spec[sl] = verb;
                spec[sl + 1] = '\0';
                snprintf(tmp, sizeof tmp, spec, a->d);
                rc = hs_buf_puts(&b, tmp);
            }
        } else if (verb == 'd' && a->t == V_NUM && a->d == floor(a->d) && fabs(a->d) < 9e18) {
            spec[sl] = 'l';
            spec[sl + 1] = 'l';
            spec[sl + 2] = 'd';
            spec[sl + 3] = '\0';
            snprintf(tmp, sizeof tmp, spec, (long long)a->d);
            rc = hs_buf_puts(&b, tmp);
        } else if (verb == 's' || verb == 'v') {
            struct hs_buf vb;
            hs_buf_init(&vb, RULES_MAX_TEMPLATE_OUTPUT);
            rc = val_print(c, a, &vb);
            if (rc == HS_OK) {
                spec[sl] = 's';
                spec[sl + 1] = '\0';
                rc = hs_buf_printf(&b, spec, vb.p ? vb.p : "");
            }
            hs_buf_cleanup(&vb);
        } else if (verb == 'q' && a->t == V_STR) {
            rc = hs_buf_json_str(&b, a->s, strlen(a->s));
        } else {
            struct hs_buf vb;
            hs_buf_init(&vb, RULES_MAX_TEMPLATE_OUTPUT);
            rc = val_print(c, a, &vb);
            if (rc == HS_OK)
                rc = hs_buf_printf(&b, "%%!%c(%s=%s)", verb, go_type(a), vb.p ? vb.p : "");
            hs_buf_cleanup(&vb);
        }
    }
    for (; rc == HS_OK && ai < nargs; ai++) {
        struct hs_buf vb;
        hs_buf_init(&vb, RULES_MAX_TEMPLATE_OUTPUT);
        rc = val_print(c, &args[ai], &vb);
        if (rc == HS_OK)
            rc = hs_buf_printf(&b, "%%!(EXTRA %s=%s)", go_type(&args[ai]), vb.p ? vb.p : "");
        hs_buf_cleanup(&vb);
    }
    if (rc == HS_OK)
        rc = mkstr(c, out, b.p ? b.p : "");
    hs_buf_cleanup(&b);
    if (rc != HS_OK && rc != HS_EPARSE)
        return hs_err_set(c->err, rc, "template: printf: %s", hs_strerror(rc));
    return rc;
}

static int fn_case(struct tctx *c, const struct val *a, int how, struct val *out)
{
    struct hs_buf vb;
    hs_buf_init(&vb, RULES_MAX_TEMPLATE_OUTPUT);
    int rc = val_print(c, a, &vb);
    if (rc == HS_OK && vb.p) {
        bool word_start = true;
        for (char *q = vb.p; *q; q++) {
            unsigned char ch = (unsigned char)*q;
            if (how == 0)
                *q = (char)toupper(ch);
            else if (how == 1)
                *q = (char)tolower(ch);
            else {
                if (word_start && isalpha(ch))
                    *q = (char)toupper(ch);
                word_start = !isalnum(ch) && ch != '\'' && ch != '_';
            }
        }
    }
    if (rc == HS_OK)
        rc = mkstr(c, out, vb.p ? vb.p : "");
    hs_buf_cleanup(&vb);
    return rc;
}

static void skip_ws(struct tctx *c)
{
    while (c->p < c->end && isspace((unsigned char)*c->p))
        c->p++;
}

static bool is_ident(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_';
}

static int pipeline(struct tctx *c, struct val *out, bool in_paren);

/* One operand; sets *is_fn and leaves the name in 'fname' when it is a function name. */
static int operand(struct tctx *c, struct val *out, char *fname, size_t fname_len, bool *is_fn)
{
    *is_fn = false;
    const char *p = c->p;
    if (*p == '"' || *p == '`') {
        char q = *p++;
        struct hs_buf b;
        hs_buf_init(&b, RULES_MAX_TEMPLATE_OUTPUT);
        int rc = HS_OK;
        while (p < c->end && *p != q && rc == HS_OK) {
            if (q == '"' && *p == '\\' && p + 1 < c->end) {
                p++;
                char e = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
                rc = hs_buf_putc(&b, e);
            } else {
                rc = hs_buf_putc(&b, *p);
            }
            p++;
        }
        if (rc == HS_OK && p >= c->end) {
            hs_buf_cleanup(&b);
            return terr(c, "unterminated quoted string%s", "");
        }
        if (rc == HS_OK)
            rc = mkstr(c, out, b.p ? b.p : "");
        hs_buf_cleanup(&b);
        c->p = p + 1;
        return rc;
    }
    if (*p == '(') {
        if (c->depth >= MAX_PAREN_DEPTH)
            return terr(c, "parentheses nested deeper than %s", "32");
        c->p++;
        c->depth++;
        int rc = pipeline(c, out, true);
        c->depth--;
        if (rc != HS_OK)
            return rc;
        if (c->p >= c->end || *c->p != ')')
            return terr(c, "unclosed left paren%s", "");
        c->p++;
        return HS_OK;
    }
    if (*p == '$' || *p == '.') {
        const char *s = p;
        p++;
        while (p < c->end && (is_ident(*p) || *p == '.'))
            p++;
        size_t n = (size_t)(p - s);
        char word[128];
        if (n >= sizeof word)
            return terr(c, "identifier too long%s", "");
        memcpy(word, s, n);
        word[n] = '\0';
        c->p = p;
        const char *field = NULL;
        const struct hs_labels *map = NULL;
        if (strcmp(word, "$value") == 0 || strcmp(word, ".Value") == 0) {
            out->t = V_NUM;
            out->d = c->value;
            return HS_OK;
        }
        if (hs_has_prefix(word, "$labels") || hs_has_prefix(word, ".Labels")) {
            map = c->labels;
            field = word + (word[0] == '$' ? 7 : 7);
        } else if (hs_has_prefix(word, "$externalLabels") ||
                   hs_has_prefix(word, ".ExternalLabels")) {
            map = c->ext;
            field = word + 15;
        } else if (strcmp(word, ".") == 0 || strcmp(word, "$") == 0) {
            return terr(c, "\"%s\" is not supported; use $labels, $value or $externalLabels", word);
        } else {
            return terr(c, "undefined variable or field \"%s\"", word);
        }
        if (*field == '\0') {
            out->t = V_MAP;
            out->map = map;
            return HS_OK;
        }
        if (*field != '.' || field[1] == '\0' || strchr(field + 1, '.'))
            return terr(c, "bad field reference \"%s\"", word);
        const char *v = hs_labels_get(map, field + 1);
        out->t = V_STR;
        out->s = v ? v : "";
        return HS_OK;
    }
    if (isdigit((unsigned char)*p) ||
        ((*p == '-' || *p == '+') && p + 1 < c->end && isdigit((unsigned char)p[1]))) {
        const char *s = p++;
        while (p < c->end && (isalnum((unsigned char)*p) || *p == '.' || *p == '_' ||
                              ((*p == '+' || *p == '-') && (p[-1] == 'e' || p[-1] == 'E'))))
            p++;
        char word[64];
        size_t n = (size_t)(p - s);
        if (n >= sizeof word)
            return terr(c, "number too long%s", "");
        memcpy(word, s, n);
        word[n] = '\0';
        c->p = p;
        if (hs_parse_double(word, &out->d) != HS_OK)
            return terr(c, "bad number syntax: \"%s\"", word);
        out->t = V_NUM;
        return HS_OK;
    }
    if (isalpha((unsigned char)*p)) {
        const char *s = p;
        while (p < c->end && is_ident(*p))
            p++;
        size_t n = (size_t)(p - s);
        if (n >= fname_len)
            return terr(c, "identifier too long%s", "");
        memcpy(fname, s, n);
        fname[n] = '\0';
        c->p = p;
        *is_fn = true;
        return HS_OK;
    }
    char ch[2] = {*p, '\0'};
    return terr(c, "unexpected \"%s\" in command", ch);
}

#define MAX_ARGS 16

static int call(struct tctx *c, const char *fn, struct val *args, size_t n, struct val *out)
{
    double d;
    int rc;
    if (strcmp(fn, "printf") == 0)
        return fn_printf(c, args, n, out);
    if (n != 1) {
        char m[160];
        snprintf(m, sizeof m, "wrong number of args for %s: want 1 got %zu", fn, n);
        return terr(c, "%s", m);
    }
    if (strcmp(fn, "toUpper") == 0)
        return fn_case(c, &args[0], 0, out);
    if (strcmp(fn, "toLower") == 0)
        return fn_case(c, &args[0], 1, out);
    if (strcmp(fn, "title") == 0)
        return fn_case(c, &args[0], 2, out);
    if ((rc = to_num(c, &args[0], fn, &d)) != HS_OK)
        return rc;
    if (strcmp(fn, "humanize") == 0)
        return fn_humanize(c, d, out);
    if (strcmp(fn, "humanize1024") == 0)
        return fn_humanize1024(c, d, out);
    if (strcmp(fn, "humanizeDuration") == 0)
        return fn_humanize_duration(c, d, out);
    if (strcmp(fn, "humanizeTimestamp") == 0)
        return fn_humanize_timestamp(c, d, out);
    char b[64];
    fmt4g(d * 100, "%", b, sizeof b);
    return mkstr(c, out, b); /* humanizePercentage */
}

static bool fn_known(const char *fn)
{
    static const char *names[] = {"printf",
                                  "toUpper",
                                  "toLower",
                                  "title",
                                  "humanize",
                                  "humanize1024",
                                  "humanizeDuration",
                                  "humanizeTimestamp",
                                  "humanizePercentage"};
    for (size_t i = 0; i < HS_ARRAY_LEN(names); i++)
        if (strcmp(fn, names[i]) == 0)
            return true;
    return false;
}

/* command: operand | fn arg*; 'piped' is the previous command's result or NULL. */
static int command(struct tctx *c, const struct val *piped, struct val *out, bool in_paren)
{
    struct val args[MAX_ARGS + 1];
    size_t n = 0;
    char fn[64] = "";
    bool is_fn = false;
    skip_ws(c);
    if (c->p >= c->end || *c->p == '|' || *c->p == ')')
        return terr(c, "missing value for command%s", "");
    int rc = operand(c, &args[0], fn, sizeof fn, &is_fn);
    if (rc != HS_OK)
        return rc;
    if (is_fn && !fn_known(fn)) {
        c->p -= strlen(fn);
        return terr(c, "function \"%s\" not defined", fn);
    }
    for (;;) {
        skip_ws(c);
        if (c->p >= c->end || *c->p == '|' || (in_paren && *c->p == ')'))
            break;
        if (!is_fn)
            return terr(c, "unexpected argument after a value (is a function missing?)%s", "");
        if (n >= MAX_ARGS)
            return terr(c, "too many arguments%s", "");
        bool inner_fn = false;
        char inner[64];
        rc = operand(c, &args[n], inner, sizeof inner, &inner_fn);
        if (rc != HS_OK)
            return rc;
        if (inner_fn)
            return terr(c, "function \"%s\" used as an argument: wrap it in parentheses", inner);
        n++;
    }
    if (!is_fn) {
        if (piped)
            return terr(c, "cannot pipe a value into a non-function%s", "");
        *out = args[0];
        return HS_OK;
    }
    if (piped) {
        if (n >= MAX_ARGS)
            return terr(c, "too many arguments%s", "");
        args[n++] = *piped;
    }
    return call(c, fn, args, n, out);
}

static int pipeline(struct tctx *c, struct val *out, bool in_paren)
{
    struct val cur;
    int rc = command(c, NULL, &cur, in_paren);
    while (rc == HS_OK) {
        skip_ws(c);
        if (c->p >= c->end || *c->p != '|')
            break;
        c->p++;
        struct val next;
        rc = command(c, &cur, &next, in_paren);
        cur = next;
    }
    if (rc == HS_OK)
        *out = cur;
    return rc;
}

static int run(const char *text, const struct hs_labels *labels, const struct hs_labels *ext,
               double value, struct hs_buf *out, struct hs_err *err)
{
    size_t len = strlen(text);
    if (len > RULES_MAX_TEMPLATE_BYTES)
        return hs_err_set(err, HS_ETOOBIG, "template: longer than %u bytes",
                          RULES_MAX_TEMPLATE_BYTES);
    struct tctx c = {.text = text,
                     .labels = labels ? labels : &no_labels,
                     .ext = ext ? ext : &no_labels,
                     .value = value,
                     .err = err};
    hs_arena_init(&c.arena, 1024, RULES_MAX_TEMPLATE_OUTPUT * 4);
    const char *s = text;
    int rc = HS_OK;
    bool trim_next = false;
    size_t start_len = out->len;
    while (rc == HS_OK && *s) {
        const char *open = strstr(s, "{{");
        const char *lit_end = open ? open : s + strlen(s);
        const char *ls = s;
        if (trim_next)
            while (ls < lit_end && isspace((unsigned char)*ls))
                ls++;
        const char *le = lit_end;
        bool trim_left =
            open && open[2] == '-' && open[3] != '\0' && isspace((unsigned char)open[3]);
        if (trim_left)
            while (le > ls && isspace((unsigned char)le[-1]))
                le--;
        rc = hs_buf_append(out, ls, (size_t)(le - ls));
        if (rc != HS_OK || !open)
            break;
        const char *a = open + 2 + (trim_left ? 1 : 0);
        /* find the closing braces outside quoted strings */
        const char *q = a;
        char quote = 0;
        while (*q) {
            if (quote) {
                if (*q == '\\' && quote == '"' && q[1])
                    q++;
                else if (*q == quote)
                    quote = 0;
            } else if (*q == '"' || *q == '`') {
                quote = *q;
            } else if (q[0] == '}' && q[1] == '}') {
                break;
            }
            q++;
        }
        if (!*q) {
            c.p = open;
            rc = terr(&c, "unclosed action%s", "");
            break;
        }
        const char *ae = q;
        trim_next = ae - a >= 2 && ae[-1] == '-' && isspace((unsigned char)ae[-2]);
        if (trim_next)
            ae--;
        s = q + 2;
        c.p = a;
        c.end = ae;
        skip_ws(&c);
        if (c.p + 1 < c.end && c.p[0] == '/' && c.p[1] == '*') {
            if (ae - c.p < 4 || strncmp(ae - 2, "*/", 2) != 0) {
                /* allow trailing spaces before }} */
                const char *t = ae;
                while (t > c.p && isspace((unsigned char)t[-1]))
                    t--;
                if (t - c.p < 4 || strncmp(t - 2, "*/", 2) != 0)
                    rc = terr(&c, "unclosed comment%s", "");
            }
            continue;
        }
        if (c.p >= c.end) {
            rc = terr(&c, "missing value for command%s", "");
            break;
        }
        static const char *control[] = {"if",     "else",     "end",   "range", "with",
                                        "define", "template", "block", "break", "continue"};
        for (size_t i = 0; i < HS_ARRAY_LEN(control); i++) {
            size_t kl = strlen(control[i]);
            if ((size_t)(c.end - c.p) >= kl && strncmp(c.p, control[i], kl) == 0 &&
                (c.p + kl == c.end || !is_ident(c.p[kl]))) {
                rc =
                    terr(&c, "\"%s\" actions are not supported by holoscope templates", control[i]);
                break;
            }
        }
        if (rc != HS_OK)
            break;
        struct val v;
        rc = pipeline(&c, &v, false);
        if (rc == HS_OK) {
            skip_ws(&c);
            if (c.p < c.end) {
                char ch[2] = {*c.p, '\0'};
                rc = terr(&c, "unexpected \"%s\" in operand", ch);
            }
        }
        if (rc == HS_OK)
            rc = val_print(&c, &v, out);
        if (rc == HS_OK && out->len - start_len > RULES_MAX_TEMPLATE_OUTPUT)
            rc = HS_ETOOBIG;
    }
    if (rc == HS_ETOOBIG)
        rc = hs_err_set(err, HS_ETOOBIG, "template: output longer than %u bytes",
                        RULES_MAX_TEMPLATE_OUTPUT);
    else if (rc == HS_ENOMEM && (!err || err->code != HS_ENOMEM))
        rc = hs_err_set(err, HS_ENOMEM, "template: out of memory");
    hs_arena_cleanup(&c.arena);
    return rc;
}

int rules_template_expand(const char *text, const struct hs_labels *labels,
                          const struct hs_labels *ext_labels, double value, struct hs_buf *out,
                          struct hs_err *err)
{
    return run(text, labels, ext_labels, value, out, err);
}

int rules_template_check(const char *text, struct hs_err *err)
{
    struct hs_buf b;
    hs_buf_init(&b, RULES_MAX_TEMPLATE_OUTPUT);
    int rc = run(text, NULL, NULL, 0, &b, err);
    hs_buf_cleanup(&b);
    return rc;
}
