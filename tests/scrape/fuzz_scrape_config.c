/*
 * fuzz_scrape_config.c - YAML bytes as a whole configuration file: the
 * scrape configuration is parsed, dumped (and the dump parsed again),
 * every job's targets are built, and the same bytes are read as a file_sd
 * file in both formats.  Nothing may crash, leak or read out of bounds.
 */
#include "scrape/scrape_config.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void targets(const struct scrape_config *cfg)
{
    struct scrape_target_list tl;
    scrape_target_list_init(&tl);
    for (size_t i = 0; i < cfg->njobs; i++)
        if (scrape_targets_build(&cfg->jobs[i], NULL, 0, &tl, NULL) != HS_OK)
            break;
    scrape_target_list_cleanup(&tl);
}

static void redump(const struct scrape_config *cfg)
{
    struct hs_buf b;
    hs_buf_init(&b, 1 << 22);
    if (scrape_config_format(cfg, &b) == HS_OK && b.p != NULL) {
        struct hs_err err;
        struct hs_ydoc *d = hs_ydoc_parse(b.p, b.len, "dump.yml", &err);
        struct scrape_config *again = NULL;
        if (d != NULL && scrape_config_parse(d, d->root, &again, &err) == HS_OK)
            scrape_config_free(again);
        hs_ydoc_free(d);
    }
    hs_buf_cleanup(&b);
}

static void sd(const uint8_t *data, size_t size, const char *path)
{
    struct hs_arena a;
    hs_arena_init(&a, 4096, 0);
    struct scrape_target_group *g;
    size_t n;
    if (scrape_sd_file_parse(path, (const char *)data, size, &a, &g, &n, NULL) == HS_OK && n > 0 &&
        g == NULL)
        __builtin_trap(); /* groups promised but missing */
    hs_arena_cleanup(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hs_err err;
    struct hs_ydoc *d = hs_ydoc_parse((const char *)data, size, "fuzz.yml", &err);
    if (d != NULL) {
        struct scrape_config *cfg = NULL;
        if (scrape_config_parse(d, d->root, &cfg, &err) == HS_OK) {
            targets(cfg);
            redump(cfg);
            scrape_config_free(cfg);
        }
        hs_ydoc_free(d);
    }
    sd(data, size, "fuzz.json");
    sd(data, size, "fuzz.yml");
    return 0;
}
