/*
 * internal.h - shared by the rules module's own files, nobody else.
 * Threading: as the callers' (no state of its own).
 */
#ifndef HS_RULES_INTERNAL_H
#define HS_RULES_INTERNAL_H

#include "rules/rules.h"

/* Appends "2006-01-02T15:04:05.123Z" (quoted; milliseconds only when not
 * zero); "0001-01-01T00:00:00Z" when !valid. */
HS_MUST_CHECK int rules__json_time(struct hs_buf *b, int64_t t_ms, bool valid);
/* Appends {"name":"value",...}; ls may be NULL ({}). */
HS_MUST_CHECK int rules__json_labels(struct hs_buf *b, const struct hs_labels *ls);

#endif
