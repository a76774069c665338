/*
 * alloc.c - the allocation functions every module uses.
 *
 * They wrap the C library so that tests can make the n-th allocation fail
 * (hs_alloc_fail_after) and check that callers clean up and report
 * HS_ENOMEM.  The injection state is two atomics; with injection off the
 * cost is one relaxed load per call.
 */
#include "core/core.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_countdown = -1; /* -1: off; otherwise calls left before failing */
static atomic_ulong calls;

static bool should_fail(void)
{
    atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    long left = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (left < 0)
        return false;
    if (left == 0) {
        atomic_store(&fail_countdown, -1);
        return true;
    }
    atomic_store(&fail_countdown, left - 1);
    return false;
}

void hs_alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n < 0 ? -1 : n);
}

unsigned long hs_alloc_calls(void)
{
    return atomic_load(&calls);
}

void *hs_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *hs_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *hs_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void *hs_reallocarray(void *p, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    return hs_realloc(p, count * size);
}

void hs_free(void *p)
{
    free(p);
}

char *hs_strndup(const char *s, size_t n)
{
    char *d = hs_malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *hs_strdup(const char *s)
{
    return hs_strndup(s, strlen(s));
}
