/*
 * pool.c - the replicas of one route and their live state: outstanding
 * requests (for least-outstanding balancing), passive ejection after
 * consecutive failed requests, and the verdicts of active health checks.
 *
 * State of one upstream:
 *
 *   admitted --(eject_after_failures failed requests)--> ejected(until T)
 *   ejected  --(T passes)--> admitted on probation
 *   probation --(1 failure)--> ejected(until now + eject_ms)
 *   probation --(1 success)--> admitted
 *   any --(unhealthy_threshold failed checks)--> down
 *   down --(healthy_threshold good checks)--> admitted
 *
 * Invariant: 'outstanding' counts acquire calls not yet released.  The pool
 * belongs to the gateway thread; nothing here locks.
 */
#include "gateway/gateway.h"

#include <string.h>

struct upstream {
    const char *url;          /* borrowed from the route */
    size_t outstanding;       /* requests in flight */
    int failures;             /* failed requests in a row */
    int64_t ejected_until_ms; /* passive ejection ends; 0 = not ejected */
    bool is_probation;        /* re-admitted after an ejection, not yet proven */
    int check_failures;       /* failed health checks in a row */
    int check_successes;      /* good health checks in a row */
    bool is_down;             /* ejected by health checks */
};

struct gw_pool {
    const struct gw_health_config *health;
    size_t n;
    size_t next; /* round-robin start for ties */
    struct upstream u[];
};

struct gw_pool *gw_pool_new(const struct gw_route_config *route, const struct gw_health_config *h)
{
    struct gw_pool *p = hs_calloc(1, sizeof(*p) + route->nupstreams * sizeof(struct upstream));
    if (p == NULL)
        return NULL;
    p->health = h;
    p->n = route->nupstreams;
    for (size_t i = 0; i < p->n; i++)
        p->u[i].url = route->upstreams[i].url;
    return p;
}

void gw_pool_free(struct gw_pool *p)
{
    hs_free(p);
}

size_t gw_pool_size(const struct gw_pool *p)
{
    return p->n;
}

bool gw_pool_is_admitted(const struct gw_pool *p, size_t i, int64_t now_ms)
{
    const struct upstream *u = &p->u[i];
    return !u->is_down && (u->ejected_until_ms == 0 || u->ejected_until_ms <= now_ms);
}

size_t gw_pool_outstanding(const struct gw_pool *p, size_t i)
{
    return p->u[i].outstanding;
}

size_t gw_pool_acquire(struct gw_pool *p, int64_t now_ms)
{
    size_t best = SIZE_MAX;
    for (size_t k = 0; k < p->n; k++) {
        size_t i = (p->next + k) % p->n;
        if (!gw_pool_is_admitted(p, i, now_ms))
            continue;
        if (best == SIZE_MAX || p->u[i].outstanding < p->u[best].outstanding)
            best = i;
    }
    if (best == SIZE_MAX) { /* everything ejected: the one back soonest */
        best = 0;
        for (size_t i = 1; i < p->n; i++) {
            int64_t a = p->u[i].is_down ? INT64_MAX : p->u[i].ejected_until_ms;
            int64_t b = p->u[best].is_down ? INT64_MAX : p->u[best].ejected_until_ms;
            if (a < b || (a == b && p->u[i].outstanding < p->u[best].outstanding))
                best = i;
        }
    }
    p->next = (best + 1) % p->n;
    struct upstream *u = &p->u[best];
    if (u->ejected_until_ms != 0 && u->ejected_until_ms <= now_ms) {
        u->ejected_until_ms = 0; /* the ejection is over: on probation */
        u->is_probation = true;
    }
    u->outstanding++;
    return best;
}

void gw_pool_release(struct gw_pool *p, size_t i, bool is_failure, int64_t now_ms)
{
    struct upstream *u = &p->u[i];
    if (u->outstanding > 0)
        u->outstanding--;
    if (!is_failure) {
        u->failures = 0;
        u->is_probation = false;
        return;
    }
    u->failures++;
    int limit = p->health->eject_after_failures;
    if (limit <= 0)
        return;
    if (u->is_probation || u->failures >= limit) {
        u->ejected_until_ms = now_ms + HS_MAX(p->health->eject_ms, 1);
        u->is_probation = false;
        u->failures = 0;
    }
}

void gw_pool_health_result(struct gw_pool *p, size_t i, bool is_ok, int64_t now_ms)
{
    (void)now_ms;
    struct upstream *u = &p->u[i];
    if (is_ok) {
        u->check_failures = 0;
        u->check_successes++;
        if (u->is_down && u->check_successes >= p->health->healthy_threshold) {
            u->is_down = false;
            u->ejected_until_ms = 0; /* a good check also ends a passive ejection */
            u->failures = 0;
        }
        return;
    }
    u->check_successes = 0;
    u->check_failures++;
    if (u->check_failures >= p->health->unhealthy_threshold)
        u->is_down = true;
}

void gw_pool_carry_state(struct gw_pool *to, const struct gw_pool *from)
{
    for (size_t i = 0; i < to->n; i++)
        for (size_t j = 0; j < from->n; j++)
            if (strcmp(to->u[i].url, from->u[j].url) == 0) {
                const char *url = to->u[i].url;
                to->u[i] = from->u[j];
                to->u[i].url = url;
                to->u[i].outstanding = 0; /* in-flight requests release the old pool */
                break;
            }
}
