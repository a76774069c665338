/*
 * fuzz_yaml.c - random bytes as a YAML document: parsing, walking every
 * node and the typed readers must never crash, leak or read out of bounds.
 */
#include "core/core.h"

#include <stdint.h>

static void walk(const struct hs_ydoc *d, const struct hs_ynode *n, int depth)
{
    if (n == NULL || depth > 300)
        return;
    struct hs_err err;
    const char *s;
    bool b;
    int64_t i;
    double f;
    uint64_t u;
    HS_IGNORE_RESULT(hs_ynode_str(d, n, "k", &s, &err));
    HS_IGNORE_RESULT(hs_ynode_bool(d, n, "k", &b, &err));
    HS_IGNORE_RESULT(hs_ynode_i64(d, n, "k", &i, &err));
    HS_IGNORE_RESULT(hs_ynode_f64(d, n, "k", &f, &err));
    HS_IGNORE_RESULT(hs_ynode_duration(d, n, "k", &i, &err));
    HS_IGNORE_RESULT(hs_ynode_bytes(d, n, "k", &u, &err));
    HS_IGNORE_RESULT(hs_ynode_is_null(n));
    if (n->type == HS_Y_MAP) {
        for (size_t k = 0; k < n->n; k++) {
            (void)hs_ynode_get(n, n->items[2 * k]->scalar);
            walk(d, n->items[2 * k + 1], depth + 1);
        }
    } else if (n->type == HS_Y_SEQ) {
        for (size_t k = 0; k < n->n; k++)
            walk(d, n->items[k], depth + 1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hs_err err;
    struct hs_ydoc *d = hs_ydoc_parse((const char *)data, size, "fuzz.yml", &err);
    if (d != NULL) {
        walk(d, d->root, 0);
        hs_ydoc_free(d);
    }
    return 0;
}
