/*
 * scrape_internal.h - declarations shared by the configuration, relabelling,
 * discovery and mapping files of the scrape module (config.c, relabel.c,
 * sd_file.c, detect.c, mapping.c).  Nobody outside src/scrape/ includes it.
 *
 * Threading: as scrape_config.h.
 */
#ifndef HS_SCRAPE_SCRAPE_INTERNAL_H
#define HS_SCRAPE_SCRAPE_INTERNAL_H

#include "scrape/scrape_config.h"

/*
 * A mutable label set used while relabelling: unsorted name/value pairs in
 * arena memory.  An empty value means "absent" as in Prometheus; setting a
 * label to "" deletes it.  Strings are borrowed: they must outlive the
 * builder (input labels, rule strings or arena copies).
 */
struct scrape__lb {
    struct hs_label *v;
    size_t n, cap;
    struct hs_arena *arena;
};

/* Start with a copy of 'in' (may be NULL).  HS_ENOMEM or HS_OK. */
HS_MUST_CHECK int scrape__lb_init(struct scrape__lb *lb, struct hs_arena *arena,
                                  const struct hs_labels *in);
/* Value of 'name', "" when absent. */
const char *scrape__lb_get(const struct scrape__lb *lb, const char *name);
/* Set (value "" deletes).  HS_ENOMEM, HS_ETOOBIG past SCRAPE_RELABEL_MAX_LABELS. */
HS_MUST_CHECK int scrape__lb_set(struct scrape__lb *lb, const char *name, const char *value);
void scrape__lb_del(struct scrape__lb *lb, const char *name);
/* The current set, sorted, as a label set whose array is the builder's. */
void scrape__lb_labels(struct scrape__lb *lb, struct hs_labels *out);

/*
 * Apply 'rs' to a builder in place.  Returns 1 kept, 0 dropped, or a
 * negative hs_code.  New strings come from lb->arena.
 */
HS_MUST_CHECK int scrape__relabel_process(const struct scrape_relabel_set *rs,
                                          struct scrape__lb *lb,
                                          struct scrape_relabel_scratch *scratch,
                                          struct hs_err *err);

/* Duplicate a label set (array and strings) into 'arena'.  HS_OK or HS_ENOMEM. */
HS_MUST_CHECK int scrape__labels_copy(struct hs_arena *arena, const struct hs_labels *in,
                                      struct hs_labels *out);

/* Whether 's' is valid UTF-8 (label values must be). */
bool scrape__utf8_valid(const char *s, size_t n);

#endif
