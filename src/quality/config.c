/*
 * config.c - the quality configuration: defaults, the "check=weight,..."
 * flag syntax and the YAML `quality:` section.  Parsing works on a copy and
 * writes it back only when everything parsed, so a bad value leaves the
 * caller's configuration as it was.
 */
#include "quality/quality.h"

#include <math.h>
#include <string.h>

void qual_config_defaults(struct qual_config *c)
{
    static const double w[QUAL_CHECK_COUNT] = {
        [QUAL_CHECK_EMPTY] = 1.0,   [QUAL_CHECK_TRUNCATION] = 0.6, [QUAL_CHECK_REPETITION] = 0.8,
        [QUAL_CHECK_REFUSAL] = 0.9, [QUAL_CHECK_LANGUAGE] = 0.6,   [QUAL_CHECK_JSON] = 0.8,
        [QUAL_CHECK_LENGTH] = 0.3,  [QUAL_CHECK_ENCODING] = 0.7,
    };
    memset(c, 0, sizeof(*c));
    memcpy(c->weights, w, sizeof(w));
    c->max_models = 64;
    c->reference_size = 500;
    c->recent_size = 200;
    c->min_recent = 50;
    c->median_window = 201;
    c->min_median = 20;
}

/* Weights are shares of the composite a check can take away. */
#define MAX_WEIGHT 1.0

int qual_config_parse_weights(struct qual_config *c, const char *spec, struct hs_err *err)
{
    double w[QUAL_CHECK_COUNT];
    memcpy(w, c->weights, sizeof(w));
    const char *p = spec;
    while (*p != '\0') {
        const char *start = p;
        const char *eq = strchr(p, '=');
        const char *comma = strchr(p, ',');
        if (comma == NULL)
            comma = p + strlen(p);
        if (eq == NULL || eq > comma)
            return hs_err_setpos(err, HS_EINVAL, (size_t)(start - spec),
                                 "quality weights: expected CHECK=WEIGHT at offset %zu",
                                 (size_t)(start - spec));
        int k = qual_check_from_name(p, (size_t)(eq - p));
        if (k < 0)
            return hs_err_setpos(err, HS_EINVAL, (size_t)(start - spec),
                                 "quality weights: unknown check \"%.*s\" (checks: empty, "
                                 "truncation, repetition, refusal, language, json, length, "
                                 "encoding)",
                                 (int)HS_MIN(eq - p, 64), p);
        char num[64];
        size_t nl = (size_t)(comma - eq - 1);
        double v;
        if (nl == 0 || nl >= sizeof(num))
            return hs_err_setpos(err, HS_EINVAL, (size_t)(eq + 1 - spec),
                                 "quality weights: %s: expected a number", qual_check_name(k));
        memcpy(num, eq + 1, nl);
        num[nl] = '\0';
        if (hs_parse_double(num, &v) != HS_OK || !isfinite(v) || v < 0 || v > MAX_WEIGHT)
            return hs_err_setpos(err, HS_EINVAL, (size_t)(eq + 1 - spec),
                                 "quality weights: %s: expected a number in [0, %g], got \"%s\"",
                                 qual_check_name(k), MAX_WEIGHT, num);
        w[k] = v;
        p = *comma ? comma + 1 : comma;
    }
    memcpy(c->weights, w, sizeof(w));
    return HS_OK;
}

/* Reads a positive size no larger than 'max' from a scalar node. */
static int read_size(const struct hs_ydoc *d, const struct hs_ynode *n, const char *what,
                     size_t max, size_t *out, struct hs_err *err)
{
    int64_t v;
    int rc = hs_ynode_i64(d, n, what, &v, err);
    if (rc != HS_OK)
        return rc;
    if (v < 1 || (uint64_t)v > max)
        return hs_ynode_error(d, n, HS_EINVAL, err, "%s: expected 1..%zu, got %lld", what, max,
                              (long long)v);
    *out = (size_t)v;
    return HS_OK;
}

static int parse_weights_map(const struct hs_ydoc *d, const struct hs_ynode *m,
                             struct qual_config *c, struct hs_err *err)
{
    if (m->type != HS_Y_MAP)
        return hs_ynode_error(d, m, HS_EINVAL, err, "quality.weights: expected a map");
    for (size_t i = 0; i < m->n; i++) {
        const struct hs_ynode *k = m->items[2 * i], *v = m->items[2 * i + 1];
        int chk = k->type == HS_Y_SCALAR ? qual_check_from_name(k->scalar, strlen(k->scalar)) : -1;
        if (chk < 0)
            return hs_ynode_error(d, k, HS_EINVAL, err, "quality.weights: unknown check \"%s\"",
                                  k->type == HS_Y_SCALAR ? k->scalar : "?");
        double w;
        int rc = hs_ynode_f64(d, v, "quality.weights", &w, err);
        if (rc != HS_OK)
            return rc;
        if (!isfinite(w) || w < 0 || w > MAX_WEIGHT)
            return hs_ynode_error(d, v, HS_EINVAL, err,
                                  "quality.weights.%s: expected a number in [0, %g]",
                                  qual_check_name(chk), MAX_WEIGHT);
        c->weights[chk] = w;
    }
    return HS_OK;
}

/* Ceiling on every window: bounds the memory one model can take. */
#define MAX_WINDOW 100000

static int parse_sub(const struct hs_ydoc *d, const struct hs_ynode *m, const char *section,
                     const char *const *keys, size_t *const *dst, size_t nkeys, struct hs_err *err)
{
    if (m->type != HS_Y_MAP)
        return hs_ynode_error(d, m, HS_EINVAL, err, "quality.%s: expected a map", section);
    for (size_t i = 0; i < m->n; i++) {
        const struct hs_ynode *k = m->items[2 * i], *v = m->items[2 * i + 1];
        size_t j = 0;
        while (j < nkeys && !(k->type == HS_Y_SCALAR && strcmp(k->scalar, keys[j]) == 0))
            j++;
        if (j == nkeys)
            return hs_ynode_error(d, k, HS_EINVAL, err, "quality.%s: unknown key \"%s\"", section,
                                  k->type == HS_Y_SCALAR ? k->scalar : "?");
        char what[96];
        snprintf(what, sizeof(what), "quality.%s.%s", section, keys[j]);
        int rc = read_size(d, v, what, MAX_WINDOW, dst[j], err);
        if (rc != HS_OK)
            return rc;
    }
    return HS_OK;
}

int qual_config_parse(const struct hs_ydoc *doc, const struct hs_ynode *node, struct qual_config *c,
                      struct hs_err *err)
{
    struct qual_config t = *c;
    int rc = HS_OK;
    if (node == NULL || hs_ynode_is_null(node))
        return HS_OK;
    if (node->type != HS_Y_MAP)
        return hs_ynode_error(doc, node, HS_EINVAL, err, "quality: expected a map");
    for (size_t i = 0; rc == HS_OK && i < node->n; i++) {
        const struct hs_ynode *k = node->items[2 * i], *v = node->items[2 * i + 1];
        const char *key = k->type == HS_Y_SCALAR ? k->scalar : "?";
        if (strcmp(key, "weights") == 0) {
            rc = parse_weights_map(doc, v, &t, err);
        } else if (strcmp(key, "max_models") == 0) {
            rc = read_size(doc, v, "quality.max_models", 10000, &t.max_models, err);
        } else if (strcmp(key, "drift") == 0) {
            static const char *const keys[] = {"reference", "recent", "min_recent"};
            size_t *const dst[] = {&t.reference_size, &t.recent_size, &t.min_recent};
            rc = parse_sub(doc, v, "drift", keys, dst, 3, err);
        } else if (strcmp(key, "length") == 0) {
            static const char *const keys[] = {"window", "min_observations"};
            size_t *const dst[] = {&t.median_window, &t.min_median};
            rc = parse_sub(doc, v, "length", keys, dst, 2, err);
        } else {
            rc = hs_ynode_error(doc, k, HS_EINVAL, err, "quality: unknown key \"%s\"", key);
        }
    }
    if (rc == HS_OK && t.min_recent > t.recent_size)
        rc = hs_ynode_error(doc, node, HS_EINVAL, err,
                            "quality.drift: min_recent (%zu) is larger than recent (%zu)",
                            t.min_recent, t.recent_size);
    if (rc == HS_OK)
        *c = t;
    return rc;
}
