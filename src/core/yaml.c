/*
 * yaml.c - YAML files into a position-carrying tree.
 *
 * libyaml's document loader does the parsing and resolves aliases; this file
 * copies its node graph into struct hs_ynode values allocated from the
 * document's arena, keeping 1-based line/column of every node so that the
 * configuration, rule files and service-discovery files can name the exact
 * place of a bad value.  Duplicate keys in a map are an error (as with a
 * strict YAML decoder).  Alias cycles cannot occur: libyaml rejects
 * recursive aliases.
 */
#include "core/core.h"

#include <stdarg.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 256

struct conv {
    yaml_document_t *ydoc;
    struct hs_ydoc *doc;
    struct hs_err *err;
};

static struct hs_ynode *convert(struct conv *c, yaml_node_t *yn, int depth);

static int dup_key_error(struct conv *c, struct hs_ynode *key)
{
    return hs_ynode_error(c->doc, key, HS_EPARSE, c->err, "duplicate key \"%s\"", key->scalar);
}

static struct hs_ynode *convert_map(struct conv *c, yaml_node_t *yn, struct hs_ynode *n, int depth)
{
    size_t count = (size_t)(yn->data.mapping.pairs.top - yn->data.mapping.pairs.start);
    n->n = count;
    n->items = hs_arena_alloc(&c->doc->arena, 2 * count * sizeof(n->items[0]) + 1);
    if (n->items == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        yaml_node_pair_t *pair = &yn->data.mapping.pairs.start[i];
        struct hs_ynode *k = convert(c, yaml_document_get_node(c->ydoc, pair->key), depth + 1);
        struct hs_ynode *v = convert(c, yaml_document_get_node(c->ydoc, pair->value), depth + 1);
        if (k == NULL || v == NULL)
            return NULL;
        if (k->type != HS_Y_SCALAR) {
            hs_ynode_error(c->doc, k, HS_EPARSE, c->err, "map keys must be scalars");
            return NULL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(n->items[2 * j]->scalar, k->scalar) == 0) {
                dup_key_error(c, k);
                return NULL;
            }
        }
        n->items[2 * i] = k;
        n->items[2 * i + 1] = v;
    }
    return n;
}

static struct hs_ynode *convert(struct conv *c, yaml_node_t *yn, int depth)
{
    if (yn == NULL) {
        hs_err_set(c->err, HS_EPARSE, "%s: broken YAML node reference", c->doc->path);
        return NULL;
    }
    struct hs_ynode *n = hs_arena_calloc(&c->doc->arena, sizeof(*n));
    if (n == NULL) {
        hs_err_set(c->err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    n->line = (int)yn->start_mark.line + 1;
    n->col = (int)yn->start_mark.column + 1;
    if (depth > MAX_DEPTH) {
        hs_ynode_error(c->doc, n, HS_ETOOBIG, c->err, "nesting deeper than %d levels", MAX_DEPTH);
        return NULL;
    }
    if (yn->tag != NULL && strncmp((const char *)yn->tag, "tag:yaml.org,2002:", 18) != 0)
        n->tag = hs_arena_strndup(&c->doc->arena, (const char *)yn->tag, strlen((char *)yn->tag));
    switch (yn->type) {
    case YAML_SCALAR_NODE:
        n->type = HS_Y_SCALAR;
        n->scalar = hs_arena_strndup(&c->doc->arena, (const char *)yn->data.scalar.value,
                                     yn->data.scalar.length);
        n->is_quoted = yn->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                       yn->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE ||
                       yn->data.scalar.style == YAML_LITERAL_SCALAR_STYLE ||
                       yn->data.scalar.style == YAML_FOLDED_SCALAR_STYLE;
        if (n->scalar == NULL)
            return NULL;
        return n;
    case YAML_SEQUENCE_NODE: {
        n->type = HS_Y_SEQ;
        size_t count = (size_t)(yn->data.sequence.items.top - yn->data.sequence.items.start);
        n->n = count;
        n->items = hs_arena_alloc(&c->doc->arena, count * sizeof(n->items[0]) + 1);
        if (n->items == NULL)
            return NULL;
        for (size_t i = 0; i < count; i++) {
            yaml_node_t *item = yaml_document_get_node(c->ydoc, yn->data.sequence.items.start[i]);
            n->items[i] = convert(c, item, depth + 1);
            if (n->items[i] == NULL)
                return NULL;
        }
        return n;
    }
    case YAML_MAPPING_NODE:
        n->type = HS_Y_MAP;
        return convert_map(c, yn, n, depth);
    default:
        hs_ynode_error(c->doc, n, HS_EPARSE, c->err, "unsupported YAML node");
        return NULL;
    }
}

struct hs_ydoc *hs_ydoc_parse(const char *text, size_t len, const char *path, struct hs_err *err)
{
    struct hs_ydoc *doc = hs_calloc(1, sizeof(*doc));
    if (doc == NULL) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    hs_arena_init(&doc->arena, 8192, 0);
    doc->path = hs_strdup(path ? path : "<input>");
    if (doc->path == NULL) {
        hs_ydoc_free(doc);
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    yaml_parser_t parser;
    yaml_document_t ydoc;
    if (!yaml_parser_initialize(&parser)) {
        hs_ydoc_free(doc);
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &ydoc)) {
        const yaml_mark_t *m = parser.context ? &parser.context_mark : &parser.problem_mark;
        if (parser.problem_mark.line || parser.problem_mark.column)
            m = &parser.problem_mark;
        if (err != NULL) {
            hs_err_set(err, HS_EPARSE, "%s:%zu:%zu: %s%s%s", doc->path, m->line + 1, m->column + 1,
                       parser.problem ? parser.problem : "invalid YAML", parser.context ? " " : "",
                       parser.context ? parser.context : "");
            err->line = (int)m->line + 1;
            err->col = (int)m->column + 1;
        }
        yaml_parser_delete(&parser);
        hs_ydoc_free(doc);
        return NULL;
    }
    struct conv c = {&ydoc, doc, err};
    yaml_node_t *root = yaml_document_get_root_node(&ydoc);
    bool ok = true;
    if (root != NULL) {
        doc->root = convert(&c, root, 0);
        ok = doc->root != NULL;
        if (!ok && err != NULL && err->code == HS_OK)
            hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    yaml_document_delete(&ydoc);
    if (ok) {
        /* A second document in the same file is almost always a mistake. */
        yaml_document_t extra;
        if (yaml_parser_load(&parser, &extra)) {
            yaml_node_t *r2 = yaml_document_get_root_node(&extra);
            if (r2 != NULL) {
                hs_err_set(err, HS_EPARSE, "%s:%zu:%zu: only one YAML document is allowed",
                           doc->path, r2->start_mark.line + 1, r2->start_mark.column + 1);
                ok = false;
            }
            yaml_document_delete(&extra);
        }
    }
    yaml_parser_delete(&parser);
    if (!ok) {
        hs_ydoc_free(doc);
        return NULL;
    }
    return doc;
}

struct hs_ydoc *hs_ydoc_load(const char *path, struct hs_err *err)
{
    size_t len;
    char *text = hs_read_file(path, 64u << 20, &len, err);
    if (text == NULL)
        return NULL;
    struct hs_ydoc *doc = hs_ydoc_parse(text, len, path, err);
    hs_free(text);
    return doc;
}

void hs_ydoc_free(struct hs_ydoc *doc)
{
    if (doc == NULL)
        return;
    hs_arena_cleanup(&doc->arena);
    hs_free(doc->path);
    hs_free(doc);
}

struct hs_ynode *hs_ynode_get(const struct hs_ynode *map, const char *key)
{
    if (map == NULL || map->type != HS_Y_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->items[2 * i]->scalar, key) == 0)
            return map->items[2 * i + 1];
    return NULL;
}

bool hs_ynode_is_null(const struct hs_ynode *n)
{
    if (n == NULL)
        return true;
    if (n->type != HS_Y_SCALAR || n->is_quoted)
        return false;
    const char *s = n->scalar;
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

int hs_ynode_error(const struct hs_ydoc *d, const struct hs_ynode *n, int code, struct hs_err *err,
                   const char *fmt, ...)
{
    if (err == NULL)
        return code;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int line = n ? n->line : 0, col = n ? n->col : 0;
    hs_err_set(err, code, "%s:%d:%d: %s", d && d->path ? d->path : "<input>", line, col, msg);
    err->line = line;
    err->col = col;
    return code;
}

static int want_scalar(const struct hs_ydoc *d, const struct hs_ynode *n, const char *what,
                       const char *expected, struct hs_err *err)
{
    if (n == NULL || n->type != HS_Y_SCALAR)
        return hs_ynode_error(d, n, HS_EINVAL, err, "%s: expected %s, got a %s", what, expected,
                              n == NULL             ? "nothing"
                              : n->type == HS_Y_MAP ? "map"
                                                    : "list");
    return HS_OK;
}

int hs_ynode_str(const struct hs_ydoc *d, const struct hs_ynode *n, const char *what,
                 const char **out, struct hs_err *err)
{
    int rc = want_scalar(d, n, what, "a string", err);
    if (rc != HS_OK)
        return rc;
    *out = n->scalar;
    return HS_OK;
}

int hs_ynode_bool(const struct hs_ydoc *d, const struct hs_ynode *n, const char *what, bool *out,
                  struct hs_err *err)
{
    int rc = want_scalar(d, n, what, "true or false", err);
    if (rc != HS_OK)
        return rc;
    const char *s = n->scalar;
    if (!n->is_quoted && (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))) {
        *out = true;
        return HS_OK;
    }
    if (!n->is_quoted && (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))) {
        *out = false;
        return HS_OK;
    }
    return hs_ynode_error(d, n, HS_EINVAL, err, "%s: expected true or false, got \"%s\"", what, s);
}

int hs_ynode_i64(const struct hs_ydoc *d, const struct hs_ynode *n, const char *what, int64_t *out,
                 struct hs_err *err)
{
    int rc = want_scalar(d, n, what, "an integer", err);
    if (rc != HS_OK)
        return rc;
    if (n->is_quoted || hs_parse_i64(n->scalar, out) != HS_OK)
        return hs_ynode_error(d, n, HS_EINVAL, err, "%s: expected an integer, got \"%s\"", what,
                              n->scalar);
    return HS_OK;
}

int hs_ynode_f64(const struct hs_ydoc *d, const struct hs_ynode *n, const char *what, double *out,
                 struct hs_err *err)
{
    int rc = want_scalar(d, n, what, "a number", err);
    if (rc != HS_OK)
        return rc;
    const char *s = n->scalar;
    /* YAML 1.1 spellings of the special values. */
    if (!strcmp(s, ".inf") || !strcmp(s, ".Inf") || !strcmp(s, "+.inf"))
        s = "+Inf";
    else if (!strcmp(s, "-.inf") || !strcmp(s, "-.Inf"))
        s = "-Inf";
    else if (!strcmp(s, ".nan") || !strcmp(s, ".NaN"))
        s = "NaN";
    if (n->is_quoted || hs_parse_double(s, out) != HS_OK)
        return hs_ynode_error(d, n, HS_EINVAL, err, "%s: expected a number, got \"%s\"", what,
                              n->scalar);
    return HS_OK;
}

int hs_ynode_duration(const struct hs_ydoc *d, const struct hs_ynode *n, const char *what,
                      int64_t *out_ms, struct hs_err *err)
{
    int rc = want_scalar(d, n, what, "a duration", err);
    if (rc != HS_OK)
        return rc;
    if (hs_parse_duration_ms(n->scalar, out_ms) != HS_OK)
        return hs_ynode_error(d, n, HS_EINVAL, err,
                              "%s: expected a duration like 30s, 5m or 1h30m, got \"%s\"", what,
                              n->scalar);
    return HS_OK;
}

int hs_ynode_bytes(const struct hs_ydoc *d, const struct hs_ynode *n, const char *what,
                   uint64_t *out, struct hs_err *err)
{
    int rc = want_scalar(d, n, what, "a size", err);
    if (rc != HS_OK)
        return rc;
    if (hs_parse_bytes(n->scalar, out) != HS_OK)
        return hs_ynode_error(d, n, HS_EINVAL, err,
                              "%s: expected a size like 512MB or 4GiB, got \"%s\"", what,
                              n->scalar);
    return HS_OK;
}
