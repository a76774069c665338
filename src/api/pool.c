/*
 * pool.c - a small fixed pool of worker threads with a bounded queue, whose
 * finished jobs are handed back to the event loop.
 *
 * The loop thread submits jobs; a worker pops one, runs work() and pushes it
 * onto the 'finished' list, then wakes the loop with event_active() on an
 * event that has no fd.  The loop's callback swaps the list out under the
 * lock and calls done() for each job outside it.  Several wake-ups before
 * the callback runs coalesce into one call, which drains everything, so no
 * job is ever left behind.
 *
 * Invariants: 'queued' counts jobs in the waiting list, 'running' jobs a
 * worker holds; a job is in exactly one of waiting, running, finished.  A
 * full queue refuses new jobs at once (the caller answers 503); nothing
 * blocks the loop thread except the short critical sections.
 */
#include "api/api.h"

#include <event2/event.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define POOL_MAX_WORKERS 64

struct api_pool {
    struct event_base *base; /* borrowed */
    struct event *wake;      /* made active by workers; fires on the loop thread */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct api_pool_job *wait_head, *wait_tail; /* FIFO of jobs not started */
    struct api_pool_job *finished;              /* LIFO of jobs done, not yet delivered */
    int queued;                                 /* length of the waiting list */
    int running;                                /* jobs a worker is running */
    int max_waiting;                            /* ceiling of 'queued' */
    int nworkers;
    bool is_stopping;
    pthread_t threads[POOL_MAX_WORKERS];
};

/* Calls done() for a LIFO list in submission-ish order (reversed first). */
static void deliver(struct api_pool_job *list, int status)
{
    struct api_pool_job *rev = NULL;
    while (list != NULL) {
        struct api_pool_job *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    while (rev != NULL) {
        struct api_pool_job *n = rev->next;
        rev->next = NULL;
        rev->done(rev, status);
        rev = n;
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct api_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    struct api_pool_job *list = p->finished;
    p->finished = NULL;
    pthread_mutex_unlock(&p->mu);
    deliver(list, HS_OK);
}

static void *worker_main(void *arg)
{
    struct api_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->wait_head == NULL && !p->is_stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->is_stopping)
            break;
        struct api_pool_job *j = p->wait_head;
        p->wait_head = j->next;
        if (p->wait_head == NULL)
            p->wait_tail = NULL;
        p->queued--;
        p->running++;
        pthread_mutex_unlock(&p->mu);

        j->work(j);

        pthread_mutex_lock(&p->mu);
        p->running--;
        j->next = p->finished;
        p->finished = j;
        event_active(p->wake, EV_READ, 0);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct api_pool *api_pool_new(struct event_base *base, int workers, int max_queued,
                              struct hs_err *err)
{
    if (base == NULL || workers < 1 || workers > POOL_MAX_WORKERS || max_queued < 0) {
        hs_err_set(err, HS_EINVAL, "worker pool: need 1..%d workers and a queue >= 0",
                   POOL_MAX_WORKERS);
        return NULL;
    }
    struct api_pool *p = hs_calloc(1, sizeof(*p));
    if (p == NULL) {
        hs_err_set(err, HS_ENOMEM, "out of memory");
        return NULL;
    }
    p->base = base;
    p->max_waiting = max_queued;
    p->wake = event_new(base, -1, 0, on_wake, p);
    if (p->wake == NULL) {
        hs_free(p);
        hs_err_set(err, HS_ENOMEM, "worker pool: cannot create the wake-up event");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int i = 0; i < workers; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
            hs_err_set(err, HS_EIO, "worker pool: cannot start thread %d of %d", i + 1, workers);
            api_pool_free(p);
            return NULL;
        }
        p->nworkers++;
    }
    return p;
}

int api_pool_submit(struct api_pool *p, struct api_pool_job *job, api_pool_work_fn *work,
                    api_pool_done_fn *done)
{
    int rc = HS_OK;
    job->next = NULL;
    job->work = work;
    job->done = done;
    pthread_mutex_lock(&p->mu);
    /* A job is accepted while a worker is free or a waiting slot is. */
    if (p->is_stopping) {
        rc = HS_ECLOSED;
    } else if (p->running + p->queued >= p->nworkers + p->max_waiting) {
        rc = HS_EAGAIN;
    } else {
        if (p->wait_tail != NULL)
            p->wait_tail->next = job;
        else
            p->wait_head = job;
        p->wait_tail = job;
        p->queued++;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int api_pool_load(struct api_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->queued + p->running;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void api_pool_free(struct api_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->is_stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nworkers; i++)
        pthread_join(p->threads[i], NULL);
    /* No thread is left: the lists can be read without the lock. */
    struct api_pool_job *finished = p->finished;
    struct api_pool_job *waiting = p->wait_head;
    p->finished = NULL;
    p->wait_head = p->wait_tail = NULL;
    event_free(p->wake);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    hs_free(p);
    deliver(finished, HS_OK);
    /* 'waiting' is FIFO already; deliver() reverses, so reverse it first. */
    struct api_pool_job *rev = NULL;
    while (waiting != NULL) {
        struct api_pool_job *n = waiting->next;
        waiting->next = rev;
        rev = waiting;
        waiting = n;
    }
    deliver(rev, HS_ECLOSED);
}
