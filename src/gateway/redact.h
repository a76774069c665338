/*
 * redact.h - PII redaction (spec/gateway.md §9) for what holoscope stores or
 * exports: capture records, span message attributes, logs.  Never applied to
 * the bytes the gateway forwards.
 *
 * A struct redactor holds the compiled detectors (PCRE2, JIT-compiled when
 * the platform allows): the built-in types of §9.2 (each can be switched
 * off) plus named user regexes.  Every match is replaced with
 * "[REDACTED:<TYPE>]".  Card numbers are replaced only when they pass the
 * Luhn check, IBANs only with a valid mod-97 check digit pair, US SSNs
 * never with area 000, 666 or 9xx.  Where matches of two detectors overlap,
 * the one of the earlier type in enum redact_type wins (secrets first,
 * custom rules last).
 *
 * Three entry points: plain text, JSON text (only the contents of string
 * values are rewritten, re-escaped, so the JSON keeps its structure and
 * stays valid; a value with nothing to redact keeps its exact bytes) and an
 * SSE body (each event's data is treated as JSON when it parses as JSON,
 * else as text; §9.3: a value split across two events is not detected).
 *
 * Threading: a redactor is immutable after redactor_new; any number of
 * threads may call the redact_* functions on it at once.
 */
#ifndef HS_GATEWAY_REDACT_H
#define HS_GATEWAY_REDACT_H

#include "core/core.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Built-in detector types, in priority order. */
enum redact_type {
    REDACT_SECRET = 0, /* API keys, bearer tokens, JWTs */
    REDACT_EMAIL,
    REDACT_CREDIT_CARD, /* 13-19 digits, spaces or dashes allowed, Luhn-valid */
    REDACT_IBAN,        /* mod-97 valid */
    REDACT_US_SSN,
    REDACT_IPV6,
    REDACT_IPV4,
    REDACT_PHONE, /* E.164 and common national formats with separators */
    REDACT_NBUILTIN
};

/* Most user rules one redactor holds; type indexes run 0..REDACT_MAX_TYPES. */
#define REDACT_MAX_CUSTOM 32
#define REDACT_MAX_TYPES  (REDACT_NBUILTIN + REDACT_MAX_CUSTOM)
/* Longest user pattern accepted (bytes). */
#define REDACT_MAX_PATTERN 4096

/* A user rule: matches of 'pattern' (PCRE2 syntax, UTF) become
 * "[REDACTED:<name>]".  'name' is [A-Za-z0-9_]{1,40}. */
struct redact_rule {
    const char *name;
    const char *pattern;
};

struct redact_config {
    bool is_disabled[REDACT_NBUILTIN]; /* true switches a built-in detector off */
    const struct redact_rule *custom;  /* borrowed during redactor_new only */
    size_t ncustom;                    /* at most REDACT_MAX_CUSTOM */
};

/* Replacements made, by type index (built-ins, then custom rules in order). */
struct redact_counts {
    uint64_t n[REDACT_MAX_TYPES];
};

struct redactor;

/* All built-ins on, no custom rules. */
void redact_config_defaults(struct redact_config *c);

/* The upper-case name of a built-in type ("EMAIL", "CREDIT_CARD"); NULL
 * when out of range. */
const char *redact_builtin_name(int type);

/* Parses a type name as written in the configuration ("email", "EMAIL",
 * "credit_card"); -1 when unknown. */
int redact_builtin_parse(const char *name);

/*
 * Compiles the detectors of 'c' (copied; 'c' may be freed afterwards).
 * A bad user pattern gives HS_EINVAL with "redaction rule NAME: MESSAGE at
 * offset N"; more than REDACT_MAX_CUSTOM rules or a pattern longer than
 * REDACT_MAX_PATTERN give HS_ETOOBIG.  Returns NULL with err set on error.
 * Caller frees with redactor_free.
 */
struct redactor *redactor_new(const struct redact_config *c, struct hs_err *err);
/* NULL is a no-op. */
void redactor_free(struct redactor *r);

/* Number of type indexes in use (REDACT_NBUILTIN + custom rules) and the
 * name of index i ("EMAIL", or a custom rule's name). */
size_t redactor_ntypes(const struct redactor *r);
const char *redactor_type_name(const struct redactor *r, size_t i);

/*
 * Appends 'in' (len bytes, any bytes; not NUL-terminated) to 'out' with
 * every detected item replaced.  'counts' (may be NULL) is incremented per
 * replacement.  HS_ENOMEM / HS_ETOOBIG (out's ceiling) leave 'out' with
 * part of the text appended: callers discard it on error.
 */
HS_MUST_CHECK int redact_text(const struct redactor *r, const char *in, size_t len,
                              struct hs_buf *out, struct redact_counts *counts, struct hs_err *err);

/*
 * As redact_text for JSON text: only string values (not object keys) are
 * redacted; a string with a replacement is re-escaped minimally
 * (spec/gateway.md §8.1), others are copied byte for byte, as is
 * everything between strings.  Input that is not valid JSON is redacted as
 * plain text instead (so nothing escapes redaction) and *is_json (may be
 * NULL) is set false.
 */
HS_MUST_CHECK int redact_json(const struct redactor *r, const char *in, size_t len,
                              struct hs_buf *out, struct redact_counts *counts, bool *is_json,
                              struct hs_err *err);

/*
 * As redact_text for a text/event-stream body: each "data:" line's value
 * goes through redact_json, every other line through redact_text; line
 * endings are kept.
 */
HS_MUST_CHECK int redact_sse(const struct redactor *r, const char *in, size_t len,
                             struct hs_buf *out, struct redact_counts *counts, struct hs_err *err);

/* Appends s[0..n) as the inside of a JSON string, escaped minimally as in
 * spec/gateway.md §8.1 (\" \\ \b \f \n \r \t, other control bytes as
 * \u00xx lowercase, everything else as is), without the quotes. */
HS_MUST_CHECK int redact_json_escape(const char *s, size_t n, struct hs_buf *out);

/* The Luhn check over the digits of s[0..len) (other bytes ignored);
 * false with fewer than 2 digits. */
bool redact_luhn_valid(const char *s, size_t len);

#endif
