/*
 * matcher.c - label matchers: =, !=, =~, !~ with Prometheus semantics.
 *
 * Regexes are PCRE2, fully anchored (the pattern is wrapped as
 * ^(?:...)$ via PCRE2_ANCHORED | PCRE2_ENDANCHORED) and JIT-compiled when
 * the platform allows.  A matcher that matches the empty string also
 * selects series without the label, because an absent label reads as "".
 * Regexes match bytes with UTF-8 semantics; invalid UTF-8 in a value simply
 * does not match (no PCRE2_NO_UTF_CHECK on values we did not validate).
 */
#include "tsdb/internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <string.h>

#define MATCHER_MAX_PATTERN (64u * 1024)

static bool re_match(const struct tsdb_matcher *m, const char *value)
{
    int rc = pcre2_match((pcre2_code *)m->re, (PCRE2_SPTR)value, strlen(value), 0, 0,
                         (pcre2_match_data *)m->md, NULL);
    return rc >= 0;
}

int tsdb_matcher_init(struct tsdb_matcher *m, int type, const char *name, const char *value,
                      struct hs_err *err)
{
    memset(m, 0, sizeof(*m));
    if (name == NULL || value == NULL)
        return hs_err_set(err, HS_EINVAL, "matcher needs a name and a value");
    if (type < TSDB_MATCH_EQ || type > TSDB_MATCH_NRE)
        return hs_err_set(err, HS_EINVAL, "unknown matcher type %d", type);
    m->type = type;
    m->name = hs_strdup(name);
    m->value = hs_strdup(value);
    if (m->name == NULL || m->value == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    if (type == TSDB_MATCH_EQ || type == TSDB_MATCH_NEQ) {
        m->matches_empty = (value[0] == '\0') == (type == TSDB_MATCH_EQ);
        return HS_OK;
    }
    size_t len = strlen(value);
    if (len > MATCHER_MAX_PATTERN)
        return hs_err_set(err, HS_ETOOBIG, "regex longer than %u bytes", MATCHER_MAX_PATTERN);
    int ecode = 0;
    PCRE2_SIZE eoff = 0;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)value, len,
                                   PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF | PCRE2_DOTALL,
                                   &ecode, &eoff, NULL);
    if (re == NULL) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ecode, msg, sizeof(msg));
        return hs_err_setpos(err, HS_EPARSE, (size_t)eoff, "invalid regex %s at %zu: %s", value,
                             (size_t)eoff, (const char *)msg);
    }
    m->re = re;
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    m->md = pcre2_match_data_create_from_pattern(re, NULL);
    if (m->md == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    bool empty = re_match(m, "");
    m->matches_empty = type == TSDB_MATCH_RE ? empty : !empty;
    return HS_OK;
}

void tsdb_matcher_cleanup(struct tsdb_matcher *m)
{
    if (m == NULL)
        return;
    hs_free(m->name);
    hs_free(m->value);
    if (m->md != NULL)
        pcre2_match_data_free((pcre2_match_data *)m->md);
    if (m->re != NULL)
        pcre2_code_free((pcre2_code *)m->re);
    memset(m, 0, sizeof(*m));
}

bool tsdb_matcher_matches(const struct tsdb_matcher *m, const char *value)
{
    if (value == NULL)
        value = "";
    switch (m->type) {
    case TSDB_MATCH_EQ:
        return strcmp(m->value, value) == 0;
    case TSDB_MATCH_NEQ:
        return strcmp(m->value, value) != 0;
    case TSDB_MATCH_RE:
        return m->re != NULL && re_match(m, value);
    case TSDB_MATCH_NRE:
        return m->re != NULL && !re_match(m, value);
    default:
        return false;
    }
}

int tsdb__matchers_check(const struct tsdb_matcher *ms, size_t n, struct hs_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (ms[i].name == NULL)
            return hs_err_set(err, HS_EINVAL, "matcher %zu is not initialised", i);
        if (!ms[i].matches_empty)
            return HS_OK;
    }
    return hs_err_set(err, HS_EINVAL,
                      "need at least one matcher that does not match the empty string");
}
