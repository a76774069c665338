/*
 * test_pool.c - least-outstanding balancing, passive ejection after
 * consecutive failures, probation and re-admission, health-check verdicts,
 * and state kept across a reload.
 */
#include "gateway/gateway.h"
#include "hs_test.h"

#include <string.h>

static struct gw_upstream_config ups[3] = {
    {"http://a", NULL, 0}, {"http://b", NULL, 0}, {"http://c", NULL, 0}};

static struct gw_route_config route_of(size_t n)
{
    struct gw_route_config r;
    memset(&r, 0, sizeof(r));
    r.model = "m";
    r.upstreams = ups;
    r.nupstreams = n;
    return r;
}

static struct gw_health_config health(void)
{
    struct gw_health_config h = {NULL, 1000, 100, 2, 2, 3, 5000};
    return h;
}

static void pool_picks_the_upstream_with_the_fewest_outstanding_requests(void **state)
{
    (void)state;
    struct gw_route_config r = route_of(3);
    struct gw_health_config h = health();
    struct gw_pool *p = gw_pool_new(&r, &h);
    assert_non_null(p);
    size_t a = gw_pool_acquire(p, 0), b = gw_pool_acquire(p, 0), c = gw_pool_acquire(p, 0);
    assert_true(a != b && b != c && a != c); /* all three used once */
    gw_pool_release(p, b, false, 0);
    assert_int_equal(gw_pool_acquire(p, 0), b); /* b is the only one with 0 */
    gw_pool_release(p, a, false, 0);
    gw_pool_release(p, c, false, 0);
    size_t d = gw_pool_acquire(p, 0);
    assert_true(d == a || d == c);
    assert_int_equal(gw_pool_outstanding(p, b), 1);
    gw_pool_free(p);
}

static void pool_spreads_ties_round_robin(void **state)
{
    (void)state;
    struct gw_route_config r = route_of(3);
    struct gw_health_config h = health();
    struct gw_pool *p = gw_pool_new(&r, &h);
    size_t seen[3] = {0};
    for (int i = 0; i < 30; i++) {
        size_t k = gw_pool_acquire(p, 0);
        seen[k]++;
        gw_pool_release(p, k, false, 0);
    }
    assert_int_equal(seen[0], 10);
    assert_int_equal(seen[1], 10);
    assert_int_equal(seen[2], 10);
    gw_pool_free(p);
}

static void pool_ejects_after_consecutive_failures_and_readmits_on_probation(void **state)
{
    (void)state;
    struct gw_route_config r = route_of(2);
    struct gw_health_config h = health(); /* 3 failures, 5 s */
    struct gw_pool *p = gw_pool_new(&r, &h);
    for (int i = 0; i < 3; i++) {
        assert_true(gw_pool_is_admitted(p, 0, 100));
        gw_pool_release(p, 0, true, 100); /* a failed request on upstream 0 */
    }
    assert_false(gw_pool_is_admitted(p, 0, 100)); /* third failure in a row */
    assert_true(gw_pool_is_admitted(p, 1, 100));
    for (int i = 0; i < 5; i++) {
        size_t k = gw_pool_acquire(p, 1000);
        assert_int_equal(k, 1);
        gw_pool_release(p, k, false, 1000);
    }
    assert_true(gw_pool_is_admitted(p, 0, 5100)); /* ejection over */
    /* on probation: one failure ejects again at once */
    size_t k;
    do {
        k = gw_pool_acquire(p, 5100);
        gw_pool_release(p, k, k == 0, 5100);
    } while (k != 0);
    assert_false(gw_pool_is_admitted(p, 0, 5200));
    assert_true(gw_pool_is_admitted(p, 0, 10100));
    /* a success on probation clears it: three more failures needed */
    do {
        k = gw_pool_acquire(p, 10100);
        gw_pool_release(p, k, false, 10100);
    } while (k != 0);
    gw_pool_acquire(p, 10100);
    gw_pool_release(p, 0, true, 10100);
    assert_true(gw_pool_is_admitted(p, 0, 10100));
    gw_pool_free(p);
}

static void pool_falls_back_to_the_upstream_back_soonest_when_all_are_ejected(void **state)
{
    (void)state;
    struct gw_route_config r = route_of(2);
    struct gw_health_config h = health();
    h.eject_after_failures = 1;
    struct gw_pool *p = gw_pool_new(&r, &h);
    gw_pool_release(p, gw_pool_acquire(p, 0), true, 0);    /* one ejected until 5000 */
    gw_pool_release(p, gw_pool_acquire(p, 0), true, 1000); /* the other until 6000 */
    assert_false(gw_pool_is_admitted(p, 0, 2000));
    assert_false(gw_pool_is_admitted(p, 1, 2000));
    size_t first = gw_pool_is_admitted(p, 0, 5500) ? 0 : 1;
    assert_int_equal(gw_pool_acquire(p, 2000), first);
    gw_pool_free(p);
}

static void pool_health_checks_eject_and_readmit_after_their_thresholds(void **state)
{
    (void)state;
    struct gw_route_config r = route_of(2);
    struct gw_health_config h = health(); /* 2 bad eject, 2 good re-admit */
    struct gw_pool *p = gw_pool_new(&r, &h);
    gw_pool_health_result(p, 1, false, 0);
    assert_true(gw_pool_is_admitted(p, 1, 0));
    gw_pool_health_result(p, 1, false, 0);
    assert_false(gw_pool_is_admitted(p, 1, 0));
    assert_false(gw_pool_is_admitted(p, 1, 1000000)); /* down until checks pass */
    for (int i = 0; i < 4; i++) {
        size_t k = gw_pool_acquire(p, 0);
        assert_int_equal(k, 0);
        gw_pool_release(p, k, false, 0);
    }
    gw_pool_health_result(p, 1, true, 0);
    assert_false(gw_pool_is_admitted(p, 1, 0));
    gw_pool_health_result(p, 1, true, 0);
    assert_true(gw_pool_is_admitted(p, 1, 0));
    gw_pool_free(p);
}

static void pool_reload_keeps_ejections_of_upstreams_with_the_same_url(void **state)
{
    (void)state;
    struct gw_route_config r = route_of(2);
    struct gw_health_config h = health();
    h.eject_after_failures = 1;
    struct gw_pool *old = gw_pool_new(&r, &h);
    gw_pool_acquire(old, 0);
    gw_pool_release(old, 0, true, 0);
    gw_pool_acquire(old, 0); /* still outstanding on the old pool */
    struct gw_route_config r2 = route_of(3);
    struct gw_pool *fresh = gw_pool_new(&r2, &h);
    gw_pool_carry_state(fresh, old);
    assert_false(gw_pool_is_admitted(fresh, 0, 10));
    assert_true(gw_pool_is_admitted(fresh, 1, 10));
    assert_int_equal(gw_pool_outstanding(fresh, 1), 0);
    gw_pool_free(old);
    gw_pool_free(fresh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_picks_the_upstream_with_the_fewest_outstanding_requests),
        cmocka_unit_test(pool_spreads_ties_round_robin),
        cmocka_unit_test(pool_ejects_after_consecutive_failures_and_readmits_on_probation),
        cmocka_unit_test(pool_falls_back_to_the_upstream_back_soonest_when_all_are_ejected),
        cmocka_unit_test(pool_health_checks_eject_and_readmit_after_their_thresholds),
        cmocka_unit_test(pool_reload_keeps_ejections_of_upstreams_with_the_same_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
