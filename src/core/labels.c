/*
 * labels.c - label sets: sorting, lookup, comparison, hashing, validation,
 * packing into one allocation and printing.
 *
 * A label set is sorted by name and names are unique; hashing and comparison
 * rely on that order.  The hash feeds series ids, so its definition (names
 * and values separated by 0xff bytes, which cannot appear in UTF-8) is fixed.
 */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

static int cmp_label(const void *a, const void *b)
{
    const struct hs_label *x = a, *y = b;
    return strcmp(x->name, y->name);
}

void hs_labels_sort(struct hs_labels *ls)
{
    if (ls->n > 1)
        qsort(ls->v, ls->n, sizeof(ls->v[0]), cmp_label);
}

const char *hs_labels_get(const struct hs_labels *ls, const char *name)
{
    size_t lo = 0, hi = ls->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ls->v[mid].name, name);
        if (c == 0)
            return ls->v[mid].value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int hs_labels_cmp(const struct hs_labels *a, const struct hs_labels *b)
{
    size_t n = HS_MIN(a->n, b->n);
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(a->v[i].name, b->v[i].name);
        if (c != 0)
            return c;
        c = strcmp(a->v[i].value, b->v[i].value);
        if (c != 0)
            return c;
    }
    return a->n < b->n ? -1 : a->n > b->n ? 1 : 0;
}

uint64_t hs_labels_hash(const struct hs_labels *ls)
{
    /* Hash a packed copy when small, else chain word by word. */
    unsigned char stack[1024];
    size_t need = 0;
    for (size_t i = 0; i < ls->n; i++)
        need += strlen(ls->v[i].name) + strlen(ls->v[i].value) + 2;
    if (need <= sizeof(stack)) {
        size_t off = 0;
        for (size_t i = 0; i < ls->n; i++) {
            size_t a = strlen(ls->v[i].name), b = strlen(ls->v[i].value);
            memcpy(stack + off, ls->v[i].name, a);
            off += a;
            stack[off++] = 0xff;
            memcpy(stack + off, ls->v[i].value, b);
            off += b;
            stack[off++] = 0xff;
        }
        return hs_hash64(stack, off, 0);
    }
    uint64_t h = 0;
    for (size_t i = 0; i < ls->n; i++) {
        h = hs_hash64(ls->v[i].name, strlen(ls->v[i].name), h ^ 0xff);
        h = hs_hash64(ls->v[i].value, strlen(ls->v[i].value), h ^ 0xfe);
    }
    return h;
}

bool hs_label_name_valid(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

bool hs_metric_name_valid(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                  (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

bool hs_labels_valid(const struct hs_labels *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        if (ls->v[i].name == NULL || ls->v[i].value == NULL || ls->v[i].name[0] == '\0')
            return false;
        if (i > 0 && strcmp(ls->v[i - 1].name, ls->v[i].name) >= 0)
            return false;
    }
    return true;
}

struct hs_labels *hs_labels_dup(const struct hs_labels *ls)
{
    size_t strings = 0;
    for (size_t i = 0; i < ls->n; i++)
        strings += strlen(ls->v[i].name) + strlen(ls->v[i].value) + 2;
    size_t head = sizeof(struct hs_labels) + ls->n * sizeof(struct hs_label);
    struct hs_labels *d = hs_malloc(head + strings);
    if (d == NULL)
        return NULL;
    d->n = ls->n;
    d->v = (struct hs_label *)(d + 1);
    char *s = (char *)d + head;
    for (size_t i = 0; i < ls->n; i++) {
        size_t a = strlen(ls->v[i].name) + 1, b = strlen(ls->v[i].value) + 1;
        memcpy(s, ls->v[i].name, a);
        d->v[i].name = s;
        s += a;
        memcpy(s, ls->v[i].value, b);
        d->v[i].value = s;
        s += b;
    }
    return d;
}

void hs_labels_free(struct hs_labels *ls)
{
    hs_free(ls);
}

static int put_escaped(struct hs_buf *out, const char *v)
{
    int rc = HS_OK;
    for (const char *p = v; *p && rc == HS_OK; p++) {
        switch (*p) {
        case '\\':
            rc = hs_buf_append(out, "\\\\", 2);
            break;
        case '"':
            rc = hs_buf_append(out, "\\\"", 2);
            break;
        case '\n':
            rc = hs_buf_append(out, "\\n", 2);
            break;
        default:
            rc = hs_buf_putc(out, *p);
        }
    }
    return rc;
}

int hs_labels_format(const struct hs_labels *ls, struct hs_buf *out)
{
    int rc = HS_OK;
    const char *name = hs_labels_get(ls, "__name__");
    if (name != NULL)
        rc = hs_buf_puts(out, name);
    if (rc == HS_OK)
        rc = hs_buf_putc(out, '{');
    bool first = true;
    for (size_t i = 0; i < ls->n && rc == HS_OK; i++) {
        if (strcmp(ls->v[i].name, "__name__") == 0)
            continue;
        if (!first)
            rc = hs_buf_append(out, ", ", 2);
        first = false;
        if (rc == HS_OK)
            rc = hs_buf_printf(out, "%s=\"", ls->v[i].name);
        if (rc == HS_OK)
            rc = put_escaped(out, ls->v[i].value);
        if (rc == HS_OK)
            rc = hs_buf_putc(out, '"');
    }
    if (rc == HS_OK)
        rc = hs_buf_putc(out, '}');
    return rc;
}
