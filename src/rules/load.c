/*
 * load.c - reading and validating Prometheus rule files.
 *
 * The YAML tree comes from core (positions on every node).  Validation
 * follows `promtool check rules`: unknown fields, a rule with both or
 * neither of record/alert, fields that recording rules may not have,
 * invalid metric/label/annotation names, expressions that do not parse or
 * do not give an instant vector or scalar, templates that do not parse,
 * repeated group names.  Every problem is reported with FILE:LINE:COL and
 * checking goes on, so one run lists all of a file's problems.  A file with
 * any problem adds nothing to the set.
 */
#include "rules/rules.h"

#include "promql/promql.h"

#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lctx {
    struct rules_set *set;
    struct hs_ydoc *doc;
    rules_diag_fn *diag;
    void *arg;
    struct hs_err *err;
    int nerr;
    int fatal; /* ENOMEM and the like */
    struct promql_engine *engine;
    struct promql_mem *mem;
    struct promql_storage st;
};

static void report(struct lctx *c, const struct hs_ynode *n, const char *fmt, ...) HS_PRINTF(3, 4);
static void report(struct lctx *c, const struct hs_ynode *n, const char *fmt, ...)
{
    struct hs_err e;
    hs_err_clear(&e);
    char m[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    HS_IGNORE_RESULT(hs_ynode_error(c->doc, n, HS_EPARSE, &e, "%s", m));
    if (c->diag)
        c->diag(c->arg, e.msg);
    if (c->nerr == 0 && c->err)
        *c->err = e;
    c->nerr++;
}

static void report_err(struct lctx *c, const struct hs_err *e)
{
    if (c->diag)
        c->diag(c->arg, e->msg);
    if (c->nerr == 0 && c->err)
        *c->err = *e;
    c->nerr++;
}

static char *dup(struct lctx *c, const char *s)
{
    char *r = hs_arena_strndup(&c->set->arena, s, strlen(s));
    if (!r)
        c->fatal = HS_ENOMEM;
    return r;
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rules_kv *)a)->name, ((const struct rules_kv *)b)->name);
}

/* labels / annotations maps */
static void read_kv(struct lctx *c, const struct hs_ynode *map, const char *what, bool annotations,
                    bool templated, struct rules_kv **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!map || hs_ynode_is_null(map))
        return;
    if (map->type != HS_Y_MAP) {
        report(c, map, "%s: expected a map of names to values", what);
        return;
    }
    struct rules_kv *kv = hs_arena_calloc(&c->set->arena, (map->n + 1) * sizeof *kv);
    if (!kv) {
        c->fatal = HS_ENOMEM;
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < map->n; i++) {
        const struct hs_ynode *k = map->items[2 * i], *v = map->items[2 * i + 1];
        if (k->type != HS_Y_SCALAR) {
            report(c, k, "%s: names must be strings", what);
            continue;
        }
        const char *name = k->scalar;
        bool ok = hs_label_name_valid(name, strlen(name));
        if (!annotations && ok && strcmp(name, "__name__") == 0)
            ok = false;
        if (!ok) {
            report(c, k, annotations ? "invalid annotation name: %s" : "invalid label name: %s",
                   name);
            continue;
        }
        const char *val = "";
        if (v->type != HS_Y_SCALAR) {
            report(c, v, "%s: value of \"%s\" must be a string", what, name);
            continue;
        }
        if (!hs_ynode_is_null(v))
            val = v->scalar;
        if (templated) {
            struct hs_err e;
            hs_err_clear(&e);
            if (rules_template_check(val, &e) != HS_OK) {
                report(c, v, "%s \"%s\": %s", annotations ? "annotation" : "label", name, e.msg);
                continue;
            }
        }
        kv[n].name = dup(c, name);
        kv[n].value = dup(c, val);
        n++;
    }
    qsort(kv, n, sizeof *kv, kv_cmp);
    *out = kv;
    *nout = n;
}

static const char *const rule_keys[] = {"record",          "alert",  "expr",       "for",
                                        "keep_firing_for", "labels", "annotations"};
static const char *const group_keys[] = {"name",  "interval", "query_offset",
                                         "limit", "rules",    "labels"};

static bool key_known(const char *k, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(k, keys[i]) == 0)
            return true;
    return false;
}

static void check_expr(struct lctx *c, const struct hs_ynode *n, const char *expr)
{
    struct promql_result *r = NULL;
    struct hs_err e;
    hs_err_clear(&e);
    int rc = promql_query_instant(c->engine, &c->st, expr, 0, NULL, &r, &e);
    if (rc == HS_EPARSE) {
        report(c, n, "could not parse expression: %s", e.msg);
    } else if (rc == HS_ENOMEM) {
        c->fatal = HS_ENOMEM;
    } else if (rc == HS_OK && r->type != PROMQL_RESULT_VECTOR && r->type != PROMQL_RESULT_SCALAR) {
        report(c, n, "invalid expression type \"%s\": must be an instant vector or scalar",
               r->type == PROMQL_RESULT_MATRIX ? "range vector" : "string");
    }
    /* other runtime errors on an empty store are not the rule file's fault */
    promql_result_free(r);
}

/* Adds the group's labels that the rule does not set itself. */
static void merge_group_labels(struct lctx *c, struct rules_rule *r, const struct rules_kv *gl,
                               size_t ngl)
{
    if (ngl == 0)
        return;
    struct rules_kv *kv = hs_arena_calloc(&c->set->arena, (r->nlabels + ngl + 1) * sizeof *kv);
    if (!kv) {
        c->fatal = HS_ENOMEM;
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < r->nlabels; i++)
        kv[n++] = r->labels[i];
    for (size_t i = 0; i < ngl; i++) {
        bool have = false;
        for (size_t k = 0; k < r->nlabels && !have; k++)
            have = strcmp(r->labels[k].name, gl[i].name) == 0;
        if (!have)
            kv[n++] = gl[i];
    }
    qsort(kv, n, sizeof *kv, kv_cmp);
    r->labels = kv;
    r->nlabels = n;
}

static void read_rule(struct lctx *c, const struct hs_ynode *rn, struct rules_rule *r)
{
    memset(r, 0, sizeof *r);
    r->line = rn->line;
    if (rn->type != HS_Y_MAP) {
        report(c, rn, "rule: expected a map");
        return;
    }
    for (size_t i = 0; i < rn->n; i++) {
        const struct hs_ynode *k = rn->items[2 * i];
        if (k->type == HS_Y_SCALAR && !key_known(k->scalar, rule_keys, HS_ARRAY_LEN(rule_keys)))
            report(c, k, "field %s not found in type rulefmt.Rule", k->scalar);
    }
    const struct hs_ynode *rec = hs_ynode_get(rn, "record"), *al = hs_ynode_get(rn, "alert");
    const struct hs_ynode *ex = hs_ynode_get(rn, "expr");
    struct hs_err e;
    const char *s = NULL;
    if (rec && hs_ynode_is_null(rec))
        rec = NULL;
    if (al && hs_ynode_is_null(al))
        al = NULL;
    if (rec && al) {
        report(c, rn, "only one of 'record' and 'alert' must be set");
        return;
    }
    if (!rec && !al) {
        report(c, rn, "one of 'record' or 'alert' must be set");
        return;
    }
    const struct hs_ynode *namen = rec ? rec : al;
    hs_err_clear(&e);
    if (hs_ynode_str(c->doc, namen, rec ? "record" : "alert", &s, &e) != HS_OK) {
        report_err(c, &e);
        return;
    }
    r->kind = rec ? RULES_KIND_RECORD : RULES_KIND_ALERT;
    if (s[0] == '\0') {
        report(c, namen, "field '%s' must not be empty", rec ? "record" : "alert");
        return;
    }
    if (rec && !hs_metric_name_valid(s, strlen(s)))
        report(c, namen, "invalid recording rule name: %s", s);
    r->name = dup(c, s);
    if (!ex || hs_ynode_is_null(ex) || (ex->type == HS_Y_SCALAR && ex->scalar[0] == '\0')) {
        report(c, ex ? ex : rn, "field 'expr' must be set in rule");
    } else {
        hs_err_clear(&e);
        if (hs_ynode_str(c->doc, ex, "expr", &s, &e) != HS_OK) {
            report_err(c, &e);
        } else {
            r->expr = dup(c, s);
            check_expr(c, ex, s);
        }
    }
    const struct hs_ynode *fo = hs_ynode_get(rn, "for"), *kf = hs_ynode_get(rn, "keep_firing_for");
    const struct hs_ynode *an = hs_ynode_get(rn, "annotations");
    if (rec) {
        if (fo)
            report(c, fo, "invalid field 'for' in recording rule");
        if (kf)
            report(c, kf, "invalid field 'keep_firing_for' in recording rule");
        if (an)
            report(c, an, "invalid field 'annotations' in recording rule");
    } else {
        hs_err_clear(&e);
        if (fo && !hs_ynode_is_null(fo) &&
            hs_ynode_duration(c->doc, fo, "for", &r->for_ms, &e) != HS_OK)
            report_err(c, &e);
        hs_err_clear(&e);
        if (kf && !hs_ynode_is_null(kf) &&
            hs_ynode_duration(c->doc, kf, "keep_firing_for", &r->keep_firing_for_ms, &e) != HS_OK)
            report_err(c, &e);
        read_kv(c, an, "annotations", true, true, &r->annotations, &r->nannotations);
    }
    read_kv(c, hs_ynode_get(rn, "labels"), "labels", false, !rec, &r->labels, &r->nlabels);
}

static void read_group(struct lctx *c, const struct hs_ynode *gn, struct rules_group *g,
                       const char *path)
{
    memset(g, 0, sizeof *g);
    if (gn->type != HS_Y_MAP) {
        report(c, gn, "group: expected a map");
        return;
    }
    for (size_t i = 0; i < gn->n; i++) {
        const struct hs_ynode *k = gn->items[2 * i];
        if (k->type == HS_Y_SCALAR && !key_known(k->scalar, group_keys, HS_ARRAY_LEN(group_keys)))
            report(c, k, "field %s not found in type rulefmt.RuleGroup", k->scalar);
    }
    struct hs_err e;
    const struct hs_ynode *nn = hs_ynode_get(gn, "name");
    const char *s = "";
    hs_err_clear(&e);
    if (!nn || hs_ynode_is_null(nn))
        report(c, gn, "Groupname must not be empty");
    else if (hs_ynode_str(c->doc, nn, "name", &s, &e) != HS_OK)
        report_err(c, &e);
    else if (s[0] == '\0')
        report(c, nn, "Groupname must not be empty");
    g->name = dup(c, s);
    g->file = dup(c, path);
    const struct hs_ynode *in = hs_ynode_get(gn, "interval");
    hs_err_clear(&e);
    if (in && !hs_ynode_is_null(in)) {
        if (hs_ynode_duration(c->doc, in, "interval", &g->interval_ms, &e) != HS_OK)
            report_err(c, &e);
        else if (g->interval_ms == 0)
            report(c, in, "interval: must be greater than zero");
    }
    const struct hs_ynode *qo = hs_ynode_get(gn, "query_offset");
    hs_err_clear(&e);
    if (qo && !hs_ynode_is_null(qo) &&
        hs_ynode_duration(c->doc, qo, "query_offset", &g->query_offset_ms, &e) != HS_OK)
        report_err(c, &e);
    struct rules_kv *gl = NULL;
    size_t ngl = 0;
    read_kv(c, hs_ynode_get(gn, "labels"), "labels", false, false, &gl, &ngl);
    const struct hs_ynode *li = hs_ynode_get(gn, "limit");
    hs_err_clear(&e);
    if (li && !hs_ynode_is_null(li)) {
        if (hs_ynode_i64(c->doc, li, "limit", &g->limit, &e) != HS_OK)
            report_err(c, &e);
        else if (g->limit < 0)
            report(c, li, "limit: must not be negative");
    }
    const struct hs_ynode *rs = hs_ynode_get(gn, "rules");
    if (!rs || hs_ynode_is_null(rs))
        return;
    if (rs->type != HS_Y_SEQ) {
        report(c, rs, "rules: expected a list of rules");
        return;
    }
    g->rules = hs_arena_calloc(&c->set->arena, (rs->n + 1) * sizeof *g->rules);
    if (!g->rules) {
        c->fatal = HS_ENOMEM;
        return;
    }
    for (size_t i = 0; i < rs->n; i++) {
        read_rule(c, rs->items[i], &g->rules[i]);
        merge_group_labels(c, &g->rules[i], gl, ngl);
    }
    g->nrules = rs->n;
}

struct rules_set *rules_set_new(void)
{
    struct rules_set *s = hs_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    hs_arena_init(&s->arena, 16384, 0);
    return s;
}

void rules_set_free(struct rules_set *s)
{
    if (!s)
        return;
    hs_arena_cleanup(&s->arena);
    hs_free(s);
}

int rules_set_add_text(struct rules_set *s, const char *path, const char *text, size_t len,
                       rules_diag_fn *diag, void *arg, struct hs_err *err)
{
    struct lctx c = {.set = s, .diag = diag, .arg = arg, .err = err};
    if (len > RULES_MAX_FILE_BYTES)
        return hs_err_set(err, HS_ETOOBIG, "%s: rule file larger than %u bytes", path,
                          RULES_MAX_FILE_BYTES);
    struct hs_err e;
    hs_err_clear(&e);
    c.doc = hs_ydoc_parse(text, len, path, &e);
    if (!c.doc) {
        if (e.code == HS_ENOMEM)
            return hs_err_set(err, HS_ENOMEM, "%s: out of memory", path);
        if (diag)
            diag(arg, e.msg);
        if (err)
            *err = e;
        return HS_EPARSE;
    }
    int rc = HS_OK;
    c.engine = promql_engine_new(NULL);
    c.mem = promql_mem_new();
    if (!c.engine || !c.mem) {
        rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        goto out;
    }
    promql_mem_storage(c.mem, &c.st);
    const struct hs_ynode *root = c.doc->root;
    if (!root || hs_ynode_is_null(root))
        goto out; /* an empty file has no groups, as in Prometheus */
    if (root->type != HS_Y_MAP) {
        report(&c, root, "expected a map with a 'groups' list");
        goto out;
    }
    for (size_t i = 0; i < root->n; i++) {
        const struct hs_ynode *k = root->items[2 * i];
        if (k->type == HS_Y_SCALAR && strcmp(k->scalar, "groups") != 0)
            report(&c, k, "field %s not found in type rulefmt.RuleGroups", k->scalar);
    }
    const struct hs_ynode *gs = hs_ynode_get(root, "groups");
    if (!gs || hs_ynode_is_null(gs))
        goto out;
    if (gs->type != HS_Y_SEQ) {
        report(&c, gs, "groups: expected a list of groups");
        goto out;
    }
    struct rules_group *ng = hs_arena_calloc(&s->arena, (s->ngroups + gs->n + 1) * sizeof *ng);
    if (!ng) {
        rc = hs_err_set(err, HS_ENOMEM, "out of memory");
        goto out;
    }
    if (s->ngroups)
        memcpy(ng, s->groups, s->ngroups * sizeof *ng);
    for (size_t i = 0; i < gs->n; i++) {
        struct rules_group *g = &ng[s->ngroups + i];
        read_group(&c, gs->items[i], g, path);
        for (size_t j = 0; j < i && g->name && g->name[0]; j++) {
            if (ng[s->ngroups + j].name && strcmp(ng[s->ngroups + j].name, g->name) == 0) {
                report(&c, hs_ynode_get(gs->items[i], "name"),
                       "groupname: \"%s\" is repeated in the same file", g->name);
                break;
            }
        }
    }
    if (c.fatal) {
        rc = hs_err_set(err, c.fatal, "%s: out of memory", path);
        goto out;
    }
    if (c.nerr == 0) {
        s->groups = ng;
        s->ngroups += gs->n;
    }
out:
    if (rc == HS_OK && c.fatal)
        rc = hs_err_set(err, c.fatal, "%s: out of memory", path);
    if (rc == HS_OK && c.nerr > 0)
        rc = HS_EPARSE;
    promql_mem_free(c.mem);
    promql_engine_free(c.engine);
    hs_ydoc_free(c.doc);
    return rc;
}

int rules_set_add_file(struct rules_set *s, const char *path, rules_diag_fn *diag, void *arg,
                       struct hs_err *err)
{
    size_t len = 0;
    struct hs_err e;
    hs_err_clear(&e);
    char *text = hs_read_file(path, RULES_MAX_FILE_BYTES, &len, &e);
    if (!text) {
        int code = e.code ? e.code : HS_EIO;
        hs_err_set(err, code, "%s", e.msg);
        if (diag)
            diag(arg, e.msg);
        return code;
    }
    int rc = rules_set_add_text(s, path, text, len, diag, arg, err);
    hs_free(text);
    return rc;
}

int rules_set_add_glob(struct rules_set *s, const char *pattern, rules_diag_fn *diag, void *arg,
                       struct hs_err *err)
{
    if (!strpbrk(pattern, "*?["))
        return rules_set_add_file(s, pattern, diag, arg, err);
    glob_t g;
    memset(&g, 0, sizeof g);
    int grc = glob(pattern, GLOB_ERR, NULL, &g);
    if (grc == GLOB_NOMATCH) {
        globfree(&g);
        return HS_OK;
    }
    if (grc != 0) {
        globfree(&g);
        int code = grc == GLOB_NOSPACE ? HS_ENOMEM : HS_EIO;
        hs_err_set(err, code, "%s: cannot expand rule file pattern", pattern);
        if (diag && err)
            diag(arg, err->msg);
        return code;
    }
    int rc = HS_OK;
    for (size_t i = 0; i < g.gl_pathc && rc == HS_OK; i++)
        rc = rules_set_add_file(s, g.gl_pathv[i], diag, arg, err);
    globfree(&g);
    return rc;
}

void rules_set_count(const struct rules_set *s, size_t *nrecord, size_t *nalert)
{
    size_t r = 0, a = 0;
    for (size_t i = 0; i < s->ngroups; i++)
        for (size_t j = 0; j < s->groups[i].nrules; j++) {
            if (s->groups[i].rules[j].kind == RULES_KIND_RECORD)
                r++;
            else
                a++;
        }
    if (nrecord)
        *nrecord = r;
    if (nalert)
        *nalert = a;
}
