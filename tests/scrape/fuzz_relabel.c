/*
 * fuzz_relabel.c - a YAML document {rules: [...], labels: {...}} as input:
 * the rules are parsed and compiled, then applied to the labels twice (the
 * second time on a reset arena), and a __name__ left after relabelling is
 * run through the unified mapping.  Nothing may crash, leak or read out of
 * bounds, and a kept result must be a valid, sorted label set.
 */
#include "scrape/scrape_config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run(const struct scrape_relabel_set *rs, const struct hs_labels *in, struct hs_arena *a,
                struct scrape_relabel_scratch *sc, const struct scrape_mapping *map)
{
    struct hs_labels out;
    int rc = scrape_relabel_apply(rs, in, a, sc, &out, NULL);
    if (rc != 1)
        return;
    for (size_t i = 1; i < out.n; i++)
        if (strcmp(out.v[i - 1].name, out.v[i].name) >= 0)
            abort(); /* the result must be sorted with unique names */
    const char *name = hs_labels_get(&out, "__name__");
    if (name != NULL && map != NULL) {
        struct scrape_unified_sample us[SCRAPE_MAP_MAX_OUT];
        size_t n;
        struct scrape_map_acc acc;
        scrape_mapping_acc_init(&acc, a);
        if (scrape_mapping_apply(map, NULL, name, strlen(name), &out, 1.5, "m", a, &acc, us, &n,
                                 NULL) != HS_OK)
            return;
        if (scrape_mapping_flush(map, &acc, us, SCRAPE_MAP_MAX_OUT, &n, NULL) != HS_OK)
            return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hs_err err;
    struct hs_ydoc *d = hs_ydoc_parse((const char *)data, size, "fuzz.yml", &err);
    if (d == NULL)
        return 0;
    struct scrape_relabel_set rs;
    if (scrape_relabel_set_parse(d, hs_ynode_get(d->root, "rules"), "rules", &rs, &err) != HS_OK) {
        hs_ydoc_free(d);
        return 0;
    }
    const struct hs_ynode *lm = hs_ynode_get(d->root, "labels");
    struct hs_arena a;
    hs_arena_init(&a, 4096, 1 << 20);
    struct hs_labels in = {0, NULL};
    if (lm != NULL && lm->type == HS_Y_MAP) {
        in.v = hs_arena_alloc(&a, (lm->n + 1) * sizeof(in.v[0]));
        for (size_t i = 0; in.v != NULL && i < lm->n; i++) {
            const struct hs_ynode *v = lm->items[2 * i + 1];
            if (v->type != HS_Y_SCALAR)
                continue;
            in.v[in.n].name = lm->items[2 * i]->scalar;
            in.v[in.n].value = v->scalar;
            in.n++;
        }
        hs_labels_sort(&in);
    }
    struct scrape_relabel_scratch sc;
    struct scrape_mapping *map = NULL;
    if (scrape_relabel_scratch_init(&sc, NULL) == HS_OK) {
        if (scrape_mapping_new(&map, NULL) != HS_OK)
            map = NULL;
        run(&rs, &in, &a, &sc, map);
        hs_arena_reset(&a);
        run(&rs, &in, &a, &sc, map);
        scrape_mapping_free(map);
    }
    scrape_relabel_scratch_cleanup(&sc);
    hs_arena_cleanup(&a);
    scrape_relabel_set_cleanup(&rs);
    hs_ydoc_free(d);
    return 0;
}
