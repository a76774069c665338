/*
 * arena.c - bump allocator for per-request, per-query and per-scrape work.
 *
 * Blocks are chained newest first.  Reset keeps the newest block (the one
 * most likely to be big enough next time) and frees the rest, so a steady
 * workload stops allocating after its first round.  Requests bigger than a
 * quarter of the block size get a block of their own.
 */
#include "core/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct hs_arena_block {
    struct hs_arena_block *next;
    size_t size; /* usable bytes in data[] */
    size_t used;
    _Alignas(16) unsigned char data[];
};

struct hs_arena_cleanup_item {
    struct hs_arena_cleanup_item *next;
    void (*fn)(void *);
    void *arg;
};

void hs_arena_init(struct hs_arena *a, size_t block_size, size_t max_bytes)
{
    memset(a, 0, sizeof(*a));
    a->block_size = block_size ? block_size : 16384;
    a->max_bytes = max_bytes;
}

static void run_cleanups(struct hs_arena *a)
{
    struct hs_arena_cleanup_item *c = a->cleanups;
    a->cleanups = NULL;
    while (c != NULL) {
        c->fn(c->arg);
        c = c->next; /* items live in the arena: freed with the blocks below */
    }
}

void hs_arena_cleanup(struct hs_arena *a)
{
    run_cleanups(a);
    struct hs_arena_block *b = a->head;
    while (b != NULL) {
        struct hs_arena_block *next = b->next;
        hs_free(b);
        b = next;
    }
    a->head = NULL;
    a->used_bytes = 0;
}

void hs_arena_reset(struct hs_arena *a)
{
    run_cleanups(a);
    struct hs_arena_block *keep = a->head;
    if (keep == NULL)
        return;
    struct hs_arena_block *b = keep->next;
    while (b != NULL) {
        struct hs_arena_block *next = b->next;
        hs_free(b);
        b = next;
    }
    keep->next = NULL;
    keep->used = 0;
    a->used_bytes = 0;
}

void *hs_arena_alloc(struct hs_arena *a, size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    if (need < n)
        return NULL;
    if (a->max_bytes && a->used_bytes + need > a->max_bytes)
        return NULL;
    struct hs_arena_block *b = a->head;
    if (b == NULL || b->size - b->used < need) {
        size_t size = need > a->block_size / 4 ? need : a->block_size;
        struct hs_arena_block *nb = hs_malloc(sizeof(*nb) + size);
        if (nb == NULL)
            return NULL;
        nb->size = size;
        nb->used = 0;
        if (b != NULL && size == need && b->size - b->used >= a->block_size / 4) {
            /* A big one-off: keep the current block on top for small requests. */
            nb->next = b->next;
            b->next = nb;
            nb->used = need;
            a->used_bytes += need;
            return nb->data;
        }
        nb->next = b;
        a->head = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->used_bytes += need;
    return p;
}

void *hs_arena_calloc(struct hs_arena *a, size_t n)
{
    void *p = hs_arena_alloc(a, n);
    if (p != NULL)
        memset(p, 0, n);
    return p;
}

char *hs_arena_strndup(struct hs_arena *a, const char *s, size_t n)
{
    char *d = hs_arena_alloc(a, n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *hs_arena_printf(struct hs_arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *d = hs_arena_alloc(a, (size_t)n + 1);
    if (d == NULL)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(d, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return d;
}

int hs_arena_on_cleanup(struct hs_arena *a, void (*fn)(void *), void *arg)
{
    struct hs_arena_cleanup_item *c = hs_arena_alloc(a, sizeof(*c));
    if (c == NULL)
        return HS_ENOMEM;
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
    return HS_OK;
}
