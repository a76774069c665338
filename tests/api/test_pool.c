/*
 * test_pool.c - the API's worker pool on its own: results come back on the
 * loop thread, the queue is bounded, and freeing the pool hands back every
 * job exactly once (finished ones with HS_OK, never-run ones with
 * HS_ECLOSED).  Workers block on semaphores the test controls, so nothing
 * depends on timing; the loop runs on the test thread.
 */
#include "api/api.h"

#include "hs_test.h"

#include <event2/event.h>
#include <event2/thread.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

struct tjob {
    struct api_pool_job pj; /* first */
    int id;
    sem_t *started; /* posted when work begins (may be NULL) */
    sem_t *go;      /* waited on before work ends (may be NULL) */
    atomic_int ran; /* work calls */
    int done_calls;
    int done_status;
    pthread_t done_thread;
    int *order; /* done order log */
    int *norder;
};

static void tjob_work(struct api_pool_job *pj)
{
    struct tjob *j = (struct tjob *)pj;
    if (j->started != NULL)
        sem_post(j->started);
    if (j->go != NULL) {
        while (sem_wait(j->go) != 0 && errno == EINTR) {
        }
    }
    atomic_fetch_add(&j->ran, 1);
}

static void tjob_done(struct api_pool_job *pj, int status)
{
    struct tjob *j = (struct tjob *)pj;
    j->done_calls++;
    j->done_status = status;
    j->done_thread = pthread_self();
    if (j->order != NULL)
        j->order[(*j->norder)++] = j->id;
}

static void wait_sem(sem_t *s)
{
    while (sem_wait(s) != 0 && errno == EINTR) {
    }
}

/* Runs the loop until 'n' jobs of 'v' have had their done call. */
static void loop_until_done(struct event_base *base, struct tjob *v, int n)
{
    for (;;) {
        int k = 0;
        for (int i = 0; i < n; i++)
            k += v[i].done_calls;
        if (k == n)
            return;
        event_base_loop(base, EVLOOP_ONCE);
    }
}

static void pool_runs_jobs_and_calls_done_on_the_loop_thread(void **state)
{
    struct event_base *base = event_base_new();
    struct hs_err err = {0};
    struct api_pool *p = api_pool_new(base, 2, 8, &err);
    assert_non_null(p);
    struct tjob jobs[6];
    memset(jobs, 0, sizeof(jobs));
    for (int i = 0; i < 6; i++) {
        jobs[i].id = i;
        assert_int_equal(api_pool_submit(p, &jobs[i].pj, tjob_work, tjob_done), HS_OK);
    }
    loop_until_done(base, jobs, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(atomic_load(&jobs[i].ran), 1);
        assert_int_equal(jobs[i].done_calls, 1);
        assert_int_equal(jobs[i].done_status, HS_OK);
        assert_true(pthread_equal(jobs[i].done_thread, pthread_self()));
    }
    assert_int_equal(api_pool_load(p), 0);
    api_pool_free(p);
    for (int i = 0; i < 6; i++)
        assert_int_equal(jobs[i].done_calls, 1);
    event_base_free(base);
}

static void pool_refuses_jobs_beyond_workers_plus_queue(void **state)
{
    struct event_base *base = event_base_new();
    struct hs_err err = {0};
    struct api_pool *p = api_pool_new(base, 1, 1, &err);
    assert_non_null(p);
    sem_t started, go;
    sem_init(&started, 0, 0);
    sem_init(&go, 0, 0);
    struct tjob jobs[3];
    memset(jobs, 0, sizeof(jobs));
    jobs[0].started = &started;
    jobs[0].go = &go;
    assert_int_equal(api_pool_submit(p, &jobs[0].pj, tjob_work, tjob_done), HS_OK);
    wait_sem(&started);
    assert_int_equal(api_pool_submit(p, &jobs[1].pj, tjob_work, tjob_done), HS_OK);
    assert_int_equal(api_pool_load(p), 2);
    assert_int_equal(api_pool_submit(p, &jobs[2].pj, tjob_work, tjob_done), HS_EAGAIN);
    sem_post(&go);
    loop_until_done(base, jobs, 2);
    assert_int_equal(jobs[2].done_calls, 0); /* a refused job never gets a done call */
    /* Room again: the refused job can be submitted now. */
    assert_int_equal(api_pool_submit(p, &jobs[2].pj, tjob_work, tjob_done), HS_OK);
    loop_until_done(base, jobs, 3);
    api_pool_free(p);
    sem_destroy(&started);
    sem_destroy(&go);
    event_base_free(base);
}

struct releaser {
    struct api_pool *p;
    sem_t *go;
};

/* Waits until the pool refuses work because it is stopping (the queue is
 * full, so until then a submit is refused with HS_EAGAIN and never queued),
 * then lets the running job finish. */
static void *release_when_stopping(void *arg)
{
    struct releaser *r = arg;
    struct tjob probe;
    memset(&probe, 0, sizeof(probe));
    int rc;
    while ((rc = api_pool_submit(r->p, &probe.pj, tjob_work, tjob_done)) == HS_EAGAIN)
        sched_yield();
    if (rc == HS_ECLOSED)
        sem_post(r->go);
    return NULL;
}

static void pool_free_hands_back_every_job_once(void **state)
{
    struct event_base *base = event_base_new();
    struct hs_err err = {0};
    struct api_pool *p = api_pool_new(base, 1, 3, &err);
    assert_non_null(p);
    sem_t started, go;
    sem_init(&started, 0, 0);
    sem_init(&go, 0, 0);
    int order[4], norder = 0;
    struct tjob jobs[4];
    memset(jobs, 0, sizeof(jobs));
    for (int i = 0; i < 4; i++) {
        jobs[i].id = i;
        jobs[i].order = order;
        jobs[i].norder = &norder;
    }
    jobs[0].started = &started;
    jobs[0].go = &go;
    for (int i = 0; i < 4; i++)
        assert_int_equal(api_pool_submit(p, &jobs[i].pj, tjob_work, tjob_done), HS_OK);
    wait_sem(&started);
    /* Job 0 runs and 1..3 fill the queue; job 0 ends only once free has
     * told the workers to stop, so 1..3 never run. */
    pthread_t t;
    struct releaser rel = {p, &go};
    assert_int_equal(pthread_create(&t, NULL, release_when_stopping, &rel), 0);
    api_pool_free(p);
    pthread_join(t, NULL);
    assert_int_equal(norder, 4);
    assert_int_equal(order[0], 0);
    assert_int_equal(jobs[0].done_status, HS_OK);
    assert_int_equal(atomic_load(&jobs[0].ran), 1);
    for (int i = 1; i < 4; i++) {
        assert_int_equal(order[i], i); /* FIFO */
        assert_int_equal(jobs[i].done_status, HS_ECLOSED);
        assert_int_equal(atomic_load(&jobs[i].ran), 0);
        assert_int_equal(jobs[i].done_calls, 1);
    }
    sem_destroy(&started);
    sem_destroy(&go);
    event_base_free(base);
}

static void pool_rejects_bad_sizes(void **state)
{
    struct event_base *base = event_base_new();
    struct hs_err err = {0};
    assert_null(api_pool_new(base, 0, 1, &err));
    assert_int_equal(err.code, HS_EINVAL);
    assert_null(api_pool_new(base, 65, 1, &err));
    assert_null(api_pool_new(base, 1, -1, &err));
    assert_null(api_pool_new(NULL, 1, 1, &err));
    api_pool_free(NULL);
    event_base_free(base);
}

int main(void)
{
    evthread_use_pthreads();
    alarm(60);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pool_runs_jobs_and_calls_done_on_the_loop_thread),
        cmocka_unit_test(pool_refuses_jobs_beyond_workers_plus_queue),
        cmocka_unit_test(pool_free_hands_back_every_job_once),
        cmocka_unit_test(pool_rejects_bad_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
