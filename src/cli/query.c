/*
 * query.c - what `serve` hands the Prometheus HTTP API: a PromQL storage
 * over the store that exists before the store is open, and the store's
 * status and admin operations as API callbacks.
 *
 * The API is registered when the server starts, but the store opens later
 * (its WAL replays on a helper thread).  Until it is open, queries and
 * look-ups fail with "the store is still opening" (answered 503 by the
 * API, as Prometheus answers while it replays); afterwards the storage
 * forwards to the tsdb view of the promql module.  The switch is one
 * release store of 'ready' after 'inner.ctx' is set.
 */
#include "cli/internal.h"

#include "api/api.h"
#include "promql/promql.h"
#include "tsdb/tsdb.h"

#include <stdatomic.h>
#include <string.h>

_Static_assert((int)PROMQL_M_EQ == (int)TSDB_MATCH_EQ && (int)PROMQL_M_NEQ == (int)TSDB_MATCH_NEQ &&
                   (int)PROMQL_M_RE == (int)TSDB_MATCH_RE &&
                   (int)PROMQL_M_NRE == (int)TSDB_MATCH_NRE,
               "promql and tsdb matcher types must be numbered alike");

struct cli_lazy_storage {
    struct promql_storage_ops ops; /* the inner ops with select and look-ups wrapped */
    struct promql_storage inner;   /* the tsdb view; ctx set when the store is open */
    atomic_bool ready;
};

static struct cli_lazy_storage *lazy_of(void *ctx)
{
    return ctx;
}

static int not_ready(struct hs_err *err)
{
    return hs_err_set(err, HS_EAGAIN, "the store is still opening (WAL replay); try again");
}

static int lazy_select(void *ctx, const struct promql_matcher *ms, size_t nms, int64_t mint_ms,
                       int64_t maxt_ms, void **set, struct hs_err *err)
{
    struct cli_lazy_storage *l = lazy_of(ctx);
    if (!atomic_load_explicit(&l->ready, memory_order_acquire))
        return not_ready(err);
    return l->inner.ops->select(l->inner.ctx, ms, nms, mint_ms, maxt_ms, set, err);
}

static int lazy_label_names(void *ctx, const struct promql_matcher *ms, size_t nms, int64_t mint_ms,
                            int64_t maxt_ms, struct hs_arena *arena, const char ***out, size_t *n,
                            struct hs_err *err)
{
    struct cli_lazy_storage *l = lazy_of(ctx);
    if (!atomic_load_explicit(&l->ready, memory_order_acquire))
        return not_ready(err);
    return l->inner.ops->label_names(l->inner.ctx, ms, nms, mint_ms, maxt_ms, arena, out, n, err);
}

static int lazy_label_values(void *ctx, const char *name, const struct promql_matcher *ms,
                             size_t nms, int64_t mint_ms, int64_t maxt_ms, struct hs_arena *arena,
                             const char ***out, size_t *n, struct hs_err *err)
{
    struct cli_lazy_storage *l = lazy_of(ctx);
    if (!atomic_load_explicit(&l->ready, memory_order_acquire))
        return not_ready(err);
    return l->inner.ops->label_values(l->inner.ctx, name, ms, nms, mint_ms, maxt_ms, arena, out, n,
                                      err);
}

struct cli_lazy_storage *cli_lazy_storage_new(void)
{
    struct cli_lazy_storage *l = hs_calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    promql_tsdb_storage(NULL, &l->inner);
    l->ops = *l->inner.ops;
    l->ops.select = lazy_select;
    l->ops.label_names = lazy_label_names;
    l->ops.label_values = lazy_label_values;
    atomic_init(&l->ready, false);
    return l;
}

void cli_lazy_storage_view(struct cli_lazy_storage *l, struct promql_storage *out)
{
    out->ops = &l->ops;
    out->ctx = l;
}

void cli_lazy_storage_open(struct cli_lazy_storage *l, struct tsdb *db)
{
    l->inner.ctx = db;
    atomic_store_explicit(&l->ready, true, memory_order_release);
}

void cli_lazy_storage_free(struct cli_lazy_storage *l)
{
    hs_free(l);
}

/* ---- status and admin callbacks ('arg' is the server's struct tsdb **) ---- */

int cli_tsdb_status(void *arg, size_t top_n, struct tsdb_status *out, struct hs_err *err)
{
    struct tsdb *db = *(struct tsdb **)arg;
    if (db == NULL)
        return not_ready(err);
    return tsdb_status_get(db, top_n, out, err);
}

void cli_tsdb_status_release(void *arg, struct tsdb_status *st)
{
    (void)arg;
    tsdb_status_cleanup(st);
}

int cli_tsdb_delete(void *arg, const struct promql_matcher *ms, size_t n, int64_t mint_ms,
                    int64_t maxt_ms, struct hs_err *err)
{
    struct tsdb *db = *(struct tsdb **)arg;
    if (db == NULL)
        return not_ready(err);
    struct tsdb_matcher *tm = hs_calloc(n ? n : 1, sizeof(*tm));
    if (tm == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    size_t ready = 0;
    int rc = HS_OK;
    for (; ready < n && rc == HS_OK; ready++) {
        rc = tsdb_matcher_init(&tm[ready], ms[ready].op, ms[ready].name, ms[ready].value, err);
        if (rc != HS_OK)
            break;
    }
    size_t deleted = 0;
    if (rc == HS_OK)
        rc = tsdb_delete_series(db, tm, n, mint_ms, maxt_ms, &deleted, err);
    for (size_t i = 0; i < ready; i++)
        tsdb_matcher_cleanup(&tm[i]);
    hs_free(tm);
    if (rc == HS_OK)
        hs_log(HS_LOG_INFO, "series deleted", HS_LINT("series", (int64_t)deleted),
               HS_LINT("mint_ms", mint_ms), HS_LINT("maxt_ms", maxt_ms));
    return rc;
}

int cli_tsdb_clean_tombstones(void *arg, struct hs_err *err)
{
    struct tsdb *db = *(struct tsdb **)arg;
    if (db == NULL)
        return not_ready(err);
    /* Deleted series leave the head at once (tsdb_delete_series); there are
     * no tombstones left to clean. */
    return HS_OK;
}
