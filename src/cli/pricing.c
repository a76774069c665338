/*
 * pricing.c - the `pricing:` section of holoscope.yml and the two series it
 * becomes, so the default rule pack's cost rules have prices to join on:
 *
 *   holoscope_pricing_gpu_hour_dollars{gpu_model="NVIDIA H100 80GB HBM3"} 2.49
 *   holoscope_pricing_daily_budget_dollars 500
 *
 * gpu_model matches the label the GPU collector and the DCGM mapping put on
 * hw_gpu_* series (the NVML product name), which is what
 * model:llm_gpu_cost:dollars_per_hour joins on.  serve writes them into the
 * store every rules.evaluation_interval (and once at start), from its main
 * loop; a reload that changes the prices takes effect at the next write.
 */
#include "cli/internal.h"

#include "tsdb/tsdb.h"

#include <math.h>
#include <string.h>

/* GPU models priced at most (a ceiling on what a config file may ask for). */
#define MAX_GPU_MODELS 256

struct cli_pricing_entry {
    char *gpu_model;
    double dollars;
};

struct cli_pricing {
    struct cli_pricing_entry *gpu; /* hour prices, in file order */
    size_t ngpu;
    double daily_budget; /* dollars; NaN when not set */
    struct hs_arena arena;
};

static int parse_price(const struct hs_ydoc *d, const struct hs_ynode *v, const char *what,
                       double *out, struct hs_err *err)
{
    int rc = hs_ynode_f64(d, v, what, out, err);
    if (rc == HS_OK && !(isfinite(*out) && *out >= 0))
        rc = hs_ynode_error(d, v, HS_EINVAL, err, "%s: expected a price >= 0", what);
    return rc;
}

static int parse_gpu_prices(const struct hs_ydoc *d, const struct hs_ynode *n,
                            struct cli_pricing *p, struct hs_err *err)
{
    if (n->type != HS_Y_MAP)
        return hs_ynode_error(d, n, HS_EINVAL, err,
                              "pricing.gpu_hour_dollars: expected a map of GPU model to dollars");
    if (n->n > MAX_GPU_MODELS)
        return hs_ynode_error(d, n, HS_EINVAL, err,
                              "pricing.gpu_hour_dollars: more than %d GPU models", MAX_GPU_MODELS);
    p->gpu = hs_arena_calloc(&p->arena, (n->n + 1) * sizeof *p->gpu);
    if (!p->gpu)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n->n; i++) {
        const struct hs_ynode *k = n->items[2 * i];
        const char *model = k->scalar ? k->scalar : "";
        if (*model == '\0')
            return hs_ynode_error(d, k, HS_EINVAL, err,
                                  "pricing.gpu_hour_dollars: empty GPU model name");
        for (size_t j = 0; j < i; j++)
            if (strcmp(p->gpu[j].gpu_model, model) == 0)
                return hs_ynode_error(d, k, HS_EINVAL, err,
                                      "pricing.gpu_hour_dollars: \"%s\" is priced twice", model);
        int rc = parse_price(d, n->items[2 * i + 1], "pricing.gpu_hour_dollars", &p->gpu[i].dollars,
                             err);
        if (rc != HS_OK)
            return rc;
        p->gpu[i].gpu_model = hs_arena_strndup(&p->arena, model, strlen(model));
        if (!p->gpu[i].gpu_model)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        p->ngpu++;
    }
    return HS_OK;
}

static int parse_section(const struct hs_ydoc *d, const struct hs_ynode *node,
                         struct cli_pricing *p, struct hs_err *err)
{
    if (node->type != HS_Y_MAP)
        return hs_ynode_error(d, node, HS_EINVAL, err, "pricing: expected a map");
    for (size_t i = 0; i < node->n; i++) {
        const struct hs_ynode *k = node->items[2 * i], *v = node->items[2 * i + 1];
        const char *key = k->scalar ? k->scalar : "";
        int rc;
        if (strcmp(key, "gpu_hour_dollars") == 0)
            rc = hs_ynode_is_null(v) ? HS_OK : parse_gpu_prices(d, v, p, err);
        else if (strcmp(key, "daily_budget_dollars") == 0)
            rc = hs_ynode_is_null(v)
                     ? HS_OK
                     : parse_price(d, v, "pricing.daily_budget_dollars", &p->daily_budget, err);
        else
            rc = hs_ynode_error(d, k, HS_EINVAL, err, "unknown key \"pricing.%s\"", key);
        if (rc != HS_OK)
            return rc;
    }
    return HS_OK;
}

int cli_pricing_parse(const struct hs_ydoc *d, const struct hs_ynode *node,
                      struct cli_pricing **out, struct hs_err *err)
{
    *out = NULL;
    if (!node || hs_ynode_is_null(node))
        return HS_OK;
    struct cli_pricing *p = hs_calloc(1, sizeof *p);
    if (!p)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    hs_arena_init(&p->arena, 1024, 0);
    p->daily_budget = NAN;
    int rc = parse_section(d, node, p, err);
    if (rc != HS_OK) {
        cli_pricing_free(p);
        return rc;
    }
    *out = p;
    return HS_OK;
}

void cli_pricing_free(struct cli_pricing *p)
{
    if (!p)
        return;
    hs_arena_cleanup(&p->arena);
    hs_free(p);
}

size_t cli_pricing_series(const struct cli_pricing *p)
{
    return p ? p->ngpu + (isnan(p->daily_budget) ? 0 : 1) : 0;
}

int cli_pricing_write(const struct cli_pricing *p, struct tsdb *db, int64_t t_ms,
                      struct hs_err *err)
{
    if (cli_pricing_series(p) == 0)
        return HS_OK;
    struct tsdb_appender *a = tsdb_appender_new(db);
    if (!a)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    int rc = HS_OK;
    for (size_t i = 0; i < p->ngpu && rc == HS_OK; i++) {
        struct hs_label l[] = {{"__name__", "holoscope_pricing_gpu_hour_dollars"},
                               {"gpu_model", p->gpu[i].gpu_model}};
        struct hs_labels ls = {2, l};
        rc = tsdb_appender_add(a, &ls, t_ms, p->gpu[i].dollars, NULL, err);
    }
    if (rc == HS_OK && !isnan(p->daily_budget)) {
        struct hs_label l[] = {{"__name__", "holoscope_pricing_daily_budget_dollars"}};
        struct hs_labels ls = {1, l};
        rc = tsdb_appender_add(a, &ls, t_ms, p->daily_budget, NULL, err);
    }
    if (rc != HS_OK) {
        tsdb_appender_rollback(a);
        return rc;
    }
    return tsdb_appender_commit(a, err);
}
