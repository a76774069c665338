/*
 * redact.c - PII detectors and replacement (spec/gateway.md §9).
 *
 * Each detector is one PCRE2 pattern, JIT-compiled when the platform allows
 * it, plus an optional check on the candidate (Luhn for cards, mod-97 for
 * IBANs, inet_pton for IPv6, a digit count for phone numbers).  A text is
 * searched detector by detector in priority order; a match overlapping one
 * already accepted is dropped, so "[REDACTED:SECRET]" wins over the digits
 * inside a key.  Built-in patterns are ASCII and compiled without UTF so
 * any byte sequence can be searched; user patterns are compiled with UTF
 * and PCRE2_MATCH_INVALID_UTF for the same reason.  A match limit bounds
 * user patterns that backtrack badly: hitting it is an error, never a
 * silent pass, so unredacted text cannot reach disk that way.
 *
 * redact_json walks the JSON grammar itself (depth-limited recursive
 * descent) and touches only string values; the walk doubles as the
 * validity check that decides between JSON and plain-text treatment.
 */
#include "gateway/redact.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define MATCH_LIMIT    1000000u
#define JSON_MAX_DEPTH 512
#define MAX_NAME_LEN   40
#define MAX_IPV6_TEXT  64

enum check { CHECK_NONE, CHECK_LUHN, CHECK_IBAN, CHECK_IPV6, CHECK_PHONE, CHECK_SSN };

struct detector {
    pcre2_code *re; /* NULL for EMAIL (scanned in C) */
    bool is_on;
    int type;    /* index; built-ins use builtin_not_after */
    int check;   /* enum check */
    bool is_utf; /* compiled with UTF: step over whole characters */
};

struct redactor {
    pcre2_general_context *gctx;
    pcre2_match_context *mctx;
    struct detector det[REDACT_MAX_TYPES];
    size_t ntypes;
    char names[REDACT_MAX_TYPES][MAX_NAME_LEN + 1];
};

/* Accepted matches of one text, sorted by start, never overlapping. */
struct span {
    size_t start, end;
    size_t type;
};
struct spans {
    struct span *v;
    size_t n, cap;
};

static const char *const builtin_names[REDACT_NBUILTIN] = {
    "SECRET", "EMAIL", "CREDIT_CARD", "IBAN", "US_SSN", "IPV6", "IPV4", "PHONE",
};

/* Patterns start with what they match (no leading look-behind), so PCRE2
 * can skip ahead to a possible first byte; the "not preceded by" rule of
 * each type is checked in C (prev_ok).  EMAIL has no pattern: it is found
 * from each '@' (find_emails), which is much faster than any regex. */
static const char *const builtin_patterns[REDACT_NBUILTIN] = {
    /* SECRET */
    "sk-[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}"
    "|xox[baprs]-[A-Za-z0-9-]{10,}|eyJ[A-Za-z0-9_-]+\\.eyJ[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]*"
    "|[Bb][Ee][Aa][Rr][Ee][Rr][ \\t]+[A-Za-z0-9._~+/-]{8,}=*",
    /* EMAIL */
    NULL,
    /* CREDIT_CARD */
    "[2-6](?:[ -]?[0-9]){12,18}(?![0-9])",
    /* IBAN */
    "[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])",
    /* US_SSN */
    "[0-9]{3}-[0-9]{2}-[0-9]{4}(?![0-9-])",
    /* IPV6: a loose candidate, checked with inet_pton */
    "(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{2,39}"
    "(?:(?<=:)[0-9]{1,3}(?:\\.[0-9]{1,3}){3})?(?![A-Za-z0-9_:])",
    /* IPV4 */
    "(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}"
    "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?![0-9]|\\.[0-9])",
    /* PHONE */
    "\\+[1-9][0-9]{7,14}(?![0-9])"
    "|(?:\\+[0-9]{1,3}[ .-]?)?\\(?[0-9]{2,4}\\)?[ .-][0-9]{3,4}[ .-][0-9]{3,4}(?![ .-]?[0-9])"
    "|\\([0-9]{3}\\)[ ]?[0-9]{3}-[0-9]{4}(?![0-9])",
};

/* Bytes that may not come right before a match, per type. */
static const char *const builtin_not_after[REDACT_NBUILTIN] = {
    "_-", NULL, "", "", "-", "_:.", ".", "+_",
};
/* Whether letters and digits (alnum) or digits only may not precede it. */
static const int builtin_not_after_class[REDACT_NBUILTIN] = {2, 0, 1, 2, 1, 2, 1, 2};

static const int builtin_checks[REDACT_NBUILTIN] = {
    CHECK_NONE, CHECK_NONE, CHECK_LUHN, CHECK_IBAN, CHECK_SSN, CHECK_IPV6, CHECK_NONE, CHECK_PHONE,
};

/* ---- allocation hooks: PCRE2 allocates through hs_malloc ---------------------- */

static void *pcre_alloc(PCRE2_SIZE n, void *data)
{
    (void)data;
    return hs_malloc(n);
}

static void pcre_free(void *p, void *data)
{
    (void)data;
    hs_free(p);
}

/* ---- names and configuration -------------------------------------------------- */

void redact_config_defaults(struct redact_config *c)
{
    memset(c, 0, sizeof(*c));
}

const char *redact_builtin_name(int type)
{
    if (type < 0 || type >= REDACT_NBUILTIN)
        return NULL;
    return builtin_names[type];
}

int redact_builtin_parse(const char *name)
{
    if (name == NULL)
        return -1;
    for (int i = 0; i < REDACT_NBUILTIN; i++) {
        const char *b = builtin_names[i];
        size_t k = 0;
        while (b[k] != '\0' && name[k] != '\0') {
            char c = name[k];
            if (c >= 'a' && c <= 'z')
                c = (char)(c - 'a' + 'A');
            if (c != b[k])
                break;
            k++;
        }
        if (b[k] == '\0' && name[k] == '\0')
            return i;
    }
    return -1;
}

static bool rule_name_valid(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > MAX_NAME_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return true;
}

static int compile_one(struct redactor *r, size_t slot, const char *name, const char *pattern,
                       bool is_utf, struct hs_err *err)
{
    pcre2_compile_context *cc = pcre2_compile_context_create(r->gctx);
    if (cc == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory compiling redaction rules");
    int errcode = 0;
    PCRE2_SIZE erroff = 0;
    uint32_t opts = is_utf ? (PCRE2_UTF | PCRE2_MATCH_INVALID_UTF) : 0;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, opts, &errcode, &erroff, cc);
    pcre2_compile_context_free(cc);
    if (re == NULL) {
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(errcode, msg, sizeof(msg)) < 0)
            memcpy(msg, "unknown error", 14);
        /* 121: "failed to allocate heap memory" during compilation */
        if (errcode == PCRE2_ERROR_NOMEMORY || errcode == 121)
            return hs_err_set(err, HS_ENOMEM, "out of memory compiling redaction rule %s", name);
        return hs_err_set(err, HS_EINVAL, "redaction rule %s: %s at offset %zu", name,
                          (const char *)msg, (size_t)erroff);
    }
    /* JIT is an optimisation: without it (unsupported platform) matching
     * still works through the interpreter. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    r->det[slot].re = re;
    r->det[slot].is_utf = is_utf;
    size_t nl = strlen(name);
    memcpy(r->names[slot], name, nl < MAX_NAME_LEN ? nl : MAX_NAME_LEN);
    return HS_OK;
}

struct redactor *redactor_new(const struct redact_config *c, struct hs_err *err)
{
    struct redact_config defaults;
    if (c == NULL) {
        redact_config_defaults(&defaults);
        c = &defaults;
    }
    if (c->ncustom > REDACT_MAX_CUSTOM) {
        hs_err_set(err, HS_ETOOBIG, "too many redaction rules: %zu (at most %d)", c->ncustom,
                   REDACT_MAX_CUSTOM);
        return NULL;
    }
    for (size_t i = 0; i < c->ncustom; i++) {
        const struct redact_rule *u = &c->custom[i];
        if (!rule_name_valid(u->name)) {
            hs_err_set(err, HS_EINVAL, "redaction rule %zu: name must be [A-Za-z0-9_]{1,40}", i);
            return NULL;
        }
        if (u->pattern == NULL || u->pattern[0] == '\0') {
            hs_err_set(err, HS_EINVAL, "redaction rule %s: empty regex", u->name);
            return NULL;
        }
        if (strlen(u->pattern) > REDACT_MAX_PATTERN) {
            hs_err_set(err, HS_ETOOBIG, "redaction rule %s: regex longer than %d bytes", u->name,
                       REDACT_MAX_PATTERN);
            return NULL;
        }
    }
    struct redactor *r = hs_calloc(1, sizeof(*r));
    if (r == NULL)
        goto nomem;
    r->gctx = pcre2_general_context_create(pcre_alloc, pcre_free, NULL);
    if (r->gctx == NULL)
        goto nomem;
    r->mctx = pcre2_match_context_create(r->gctx);
    if (r->mctx == NULL)
        goto nomem;
    pcre2_set_match_limit(r->mctx, MATCH_LIMIT);
    for (int i = 0; i < REDACT_NBUILTIN; i++) {
        r->det[i].check = builtin_checks[i];
        memcpy(r->names[i], builtin_names[i], strlen(builtin_names[i]));
        r->det[i].type = i;
        if (c->is_disabled[i])
            continue;
        r->det[i].is_on = true;
        if (builtin_patterns[i] != NULL &&
            compile_one(r, (size_t)i, builtin_names[i], builtin_patterns[i], false, err) != HS_OK)
            goto fail;
    }
    for (size_t i = 0; i < c->ncustom; i++) {
        size_t slot = REDACT_NBUILTIN + i;
        r->det[slot].check = CHECK_NONE;
        r->det[slot].type = (int)slot;
        r->det[slot].is_on = true;
        if (compile_one(r, slot, c->custom[i].name, c->custom[i].pattern, true, err) != HS_OK)
            goto fail;
    }
    r->ntypes = REDACT_NBUILTIN + c->ncustom;
    return r;
nomem:
    hs_err_set(err, HS_ENOMEM, "out of memory creating the redactor");
fail:
    redactor_free(r);
    return NULL;
}

void redactor_free(struct redactor *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < REDACT_MAX_TYPES; i++)
        pcre2_code_free(r->det[i].re);
    pcre2_match_context_free(r->mctx);
    pcre2_general_context_free(r->gctx);
    hs_free(r);
}

size_t redactor_ntypes(const struct redactor *r)
{
    return r->ntypes;
}

const char *redactor_type_name(const struct redactor *r, size_t i)
{
    return i < r->ntypes ? r->names[i] : NULL;
}

/* ---- candidate checks ---------------------------------------------------------- */

bool redact_luhn_valid(const char *s, size_t len)
{
    int sum = 0, ndigits = 0;
    for (size_t i = len; i > 0; i--) {
        char c = s[i - 1];
        if (c < '0' || c > '9')
            continue;
        int d = c - '0';
        if (ndigits % 2 == 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
        ndigits++;
    }
    return ndigits >= 2 && sum % 10 == 0;
}

static bool card_ok(const char *s, size_t len)
{
    size_t nd = 0;
    for (size_t i = 0; i < len; i++)
        nd += (s[i] >= '0' && s[i] <= '9');
    return nd >= 13 && nd <= 19 && redact_luhn_valid(s, len);
}

/* ISO 13616: move the first four characters to the end, letters to 10..35,
 * the number mod 97 must be 1. */
static bool iban_ok(const char *s, size_t len)
{
    char v[40];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ')
            continue;
        if (n == sizeof(v))
            return false;
        v[n++] = s[i];
    }
    if (n < 15 || n > 34)
        return false;
    unsigned rem = 0;
    for (size_t k = 0; k < n; k++) {
        char c = v[(k + 4) % n];
        if (c >= '0' && c <= '9')
            rem = (rem * 10 + (unsigned)(c - '0')) % 97;
        else if (c >= 'A' && c <= 'Z')
            rem = (rem * 100 + (unsigned)(c - 'A' + 10)) % 97;
        else
            return false;
    }
    return rem == 1;
}

static bool ipv6_ok(const char *s, size_t len)
{
    char tmp[MAX_IPV6_TEXT];
    unsigned char addr[16];
    if (len >= sizeof(tmp))
        return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    return inet_pton(AF_INET6, tmp, addr) == 1;
}

static bool phone_ok(const char *s, size_t len)
{
    size_t nd = 0;
    for (size_t i = 0; i < len; i++)
        nd += (s[i] >= '0' && s[i] <= '9');
    return nd >= 7 && nd <= 15;
}

/* AAA-GG-SSSS with area not 000, 666 or 9xx, group not 00, serial not 0000. */
static bool ssn_ok(const char *s, size_t len)
{
    if (len != 11)
        return false;
    if (memcmp(s, "000", 3) == 0 || memcmp(s, "666", 3) == 0 || s[0] == '9')
        return false;
    return memcmp(s + 4, "00", 2) != 0 && memcmp(s + 7, "0000", 4) != 0;
}

static bool check_ok(int check, const char *s, size_t len)
{
    switch (check) {
    case CHECK_SSN:
        return ssn_ok(s, len);
    case CHECK_LUHN:
        return card_ok(s, len);
    case CHECK_IBAN:
        return iban_ok(s, len);
    case CHECK_IPV6:
        return ipv6_ok(s, len);
    case CHECK_PHONE:
        return phone_ok(s, len);
    default:
        return true;
    }
}

/* ---- finding matches ------------------------------------------------------------- */

/* Index of the first accepted span ending after 'start'. */
static size_t spans_lower(const struct spans *sp, size_t start)
{
    size_t lo = 0, hi = sp->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sp->v[mid].end <= start)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Inserts [start,end) unless it overlaps an accepted span. */
static int spans_offer(struct spans *sp, size_t start, size_t end, size_t type)
{
    size_t at = spans_lower(sp, start);
    if (at < sp->n && sp->v[at].start < end)
        return HS_OK; /* overlaps a span of higher priority */
    if (sp->n == sp->cap) {
        size_t ncap = sp->cap != 0 ? sp->cap * 2 : 8;
        struct span *nv = hs_reallocarray(sp->v, ncap, sizeof(*nv));
        if (nv == NULL)
            return HS_ENOMEM;
        sp->v = nv;
        sp->cap = ncap;
    }
    memmove(&sp->v[at + 1], &sp->v[at], (sp->n - at) * sizeof(*sp->v));
    sp->v[at] = (struct span){start, end, type};
    sp->n++;
    return HS_OK;
}

static size_t utf8_next(const char *s, size_t len, size_t i)
{
    i++;
    while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
        i++;
    return i;
}

struct text_traits {
    bool has_at, has_colon, has_secret_hint;
    size_t ndigits;
};

static bool ieq5(const char *s, const char *lower5)
{
    for (int k = 0; k < 5; k++)
        if ((s[k] | 0x20) != lower5[k])
            return false;
    return true;
}

/* Whether a SECRET pattern can start at s[i] (its first bytes). */
static bool secret_hint(const char *s, size_t len, size_t i)
{
    size_t left = len - i;
    switch (s[i]) {
    case 's':
        return left >= 3 && s[i + 1] == 'k' && s[i + 2] == '-';
    case 'A':
        return left >= 4 && memcmp(s + i, "AKIA", 4) == 0;
    case 'g':
        return left >= 3 && s[i + 1] == 'h' && s[i + 2] != '\0' &&
               strchr("pousr", s[i + 2]) != NULL;
    case 'x':
        return left >= 3 && s[i + 1] == 'o' && s[i + 2] == 'x';
    case 'e':
        return left >= 3 && s[i + 1] == 'y' && s[i + 2] == 'J';
    case 'b':
    case 'B':
        return left >= 6 && ieq5(s + i + 1, "earer");
    default:
        return false;
    }
}

enum { B_DIGIT = 1, B_AT = 2, B_COLON = 4, B_HINT = 8 };

static const unsigned char byte_classes[256] = {
    ['0'] = B_DIGIT, ['1'] = B_DIGIT, ['2'] = B_DIGIT, ['3'] = B_DIGIT, ['4'] = B_DIGIT,
    ['5'] = B_DIGIT, ['6'] = B_DIGIT, ['7'] = B_DIGIT, ['8'] = B_DIGIT, ['9'] = B_DIGIT,
    ['@'] = B_AT,    [':'] = B_COLON, ['s'] = B_HINT,  ['A'] = B_HINT,  ['g'] = B_HINT,
    ['x'] = B_HINT,  ['e'] = B_HINT,  ['b'] = B_HINT,  ['B'] = B_HINT,
};

/* One pass over the text: what the detectors need before they can match,
 * so a detector that cannot match never runs. */
static void text_scan(const char *s, size_t len, struct text_traits *t)
{
    memset(t, 0, sizeof(*t));
    unsigned seen = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char k = byte_classes[(unsigned char)s[i]];
        t->ndigits += k & B_DIGIT;
        seen |= k;
        if ((k & B_HINT) && !t->has_secret_hint)
            t->has_secret_hint = secret_hint(s, len, i);
    }
    t->has_at = (seen & B_AT) != 0;
    t->has_colon = (seen & B_COLON) != 0;
}

/* Digits a match of each built-in type holds at least. */
static const size_t builtin_min_digits[REDACT_NBUILTIN] = {0, 0, 13, 2, 9, 0, 4, 7};

static bool may_match(const struct detector *d, const struct text_traits *t)
{
    if (d->type >= REDACT_NBUILTIN)
        return true;
    if (t->ndigits < builtin_min_digits[d->type])
        return false;
    switch (d->type) {
    case REDACT_SECRET:
        return t->has_secret_hint;
    case REDACT_EMAIL:
        return t->has_at;
    case REDACT_IPV6:
        return t->has_colon;
    default:
        return true;
    }
}

static bool is_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The look-behind of built-in type 'type' for a match at s[ms]. */
static bool prev_ok(int type, const char *s, size_t ms)
{
    if (type >= REDACT_NBUILTIN || ms == 0)
        return true;
    char p = s[ms - 1];
    int cls = builtin_not_after_class[type];
    if ((cls == 2 && is_alnum(p)) || (cls == 1 && is_digit(p)))
        return false;
    if (builtin_not_after[type] != NULL && p != '\0' && strchr(builtin_not_after[type], p) != NULL)
        return false;
    /* a phone number does not continue a digit group ("4111 1111 1111") */
    if (type == REDACT_PHONE && ms >= 2 && (p == ' ' || p == '.' || p == '-') &&
        is_digit(s[ms - 2]))
        return false;
    return true;
}

static bool is_local_char(char c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static bool is_alpha_run(const char *s, size_t from, size_t to)
{
    if (to - from < 2)
        return false;
    for (size_t t = from; t < to; t++)
        if (!((s[t] >= 'A' && s[t] <= 'Z') || (s[t] >= 'a' && s[t] <= 'z')))
            return false;
    return true;
}

/* The end of the longest valid domain starting at s[i] ("example.co.uk":
 * two or more labels of letters, digits and inner dashes, the last one
 * letters only), or i when there is none. */
static size_t domain_end(const char *s, size_t len, size_t i)
{
    size_t e = i;
    while (e < len && e - i < 255 && (is_alnum(s[e]) || s[e] == '.' || s[e] == '-'))
        e++;
    size_t best = i, k = i, labels = 0;
    while (k < e) {
        size_t ls = k;
        while (k < e && s[k] != '.')
            k++;
        size_t ll = k - ls;
        if (ll == 0 || ll > 63 || s[ls] == '-' || s[k - 1] == '-')
            break;
        labels++;
        if (labels >= 2 && is_alpha_run(s, ls, k))
            best = k;
        if (k < e)
            k++; /* the dot */
    }
    return best;
}

/* EMAIL: local@domain.tld, found from each '@'. */
static int find_emails(const char *s, size_t len, struct spans *sp, struct hs_err *err)
{
    const char *at = s;
    while ((at = memchr(at, '@', len - (size_t)(at - s))) != NULL) {
        size_t a = (size_t)(at - s);
        size_t l = a;
        while (l > 0 && a - l < 64 && is_local_char(s[l - 1]))
            l--;
        size_t e = domain_end(s, len, a + 1);
        if (l < a && e > a + 1) {
            if (spans_offer(sp, l, e, REDACT_EMAIL) != HS_OK)
                return hs_err_set(err, HS_ENOMEM, "out of memory while redacting");
            at = s + e;
        } else {
            at++;
        }
        if ((size_t)(at - s) >= len)
            break;
    }
    return HS_OK;
}

static int run_detector(const struct redactor *r, size_t type, const char *s, size_t len,
                        pcre2_match_data *md, struct spans *sp, struct hs_err *err)
{
    const struct detector *d = &r->det[type];
    if (type == REDACT_EMAIL)
        return find_emails(s, len, sp, err);
    size_t off = 0;
    while (off <= len) {
        int rc = pcre2_match(d->re, (PCRE2_SPTR)s, len, off, 0, md, r->mctx);
        if (rc == PCRE2_ERROR_NOMATCH)
            return HS_OK;
        if (rc < 0) {
            if (rc == PCRE2_ERROR_NOMEMORY)
                return hs_err_set(err, HS_ENOMEM, "out of memory while redacting");
            PCRE2_UCHAR msg[120];
            if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0)
                memcpy(msg, "match error", 12);
            return hs_err_set(err, HS_EINVAL, "redaction rule %s: %s", r->names[type],
                              (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me > ms && prev_ok(d->type, s, ms) && check_ok(d->check, s + ms, me - ms)) {
            if (spans_offer(sp, ms, me, type) != HS_OK)
                return hs_err_set(err, HS_ENOMEM, "out of memory while redacting");
            off = me;
        } else {
            if (ms >= len)
                return HS_OK;
            off = d->is_utf ? utf8_next(s, len, ms) : ms + 1;
        }
    }
    return HS_OK;
}

/* Fills 'sp' with the accepted matches of s[0..len); 'md' is scratch. */
static int find_spans(const struct redactor *r, const char *s, size_t len, pcre2_match_data *md,
                      struct spans *sp, struct hs_err *err)
{
    sp->n = 0;
    if (len == 0)
        return HS_OK;
    struct text_traits t;
    text_scan(s, len, &t);
    int rc = HS_OK;
    for (size_t i = 0; i < r->ntypes && rc == HS_OK; i++) {
        if (!r->det[i].is_on || !may_match(&r->det[i], &t))
            continue;
        rc = run_detector(r, i, s, len, md, sp, err);
    }
    return rc;
}

static pcre2_match_data *new_match_data(const struct redactor *r, struct hs_err *err)
{
    pcre2_match_data *md = pcre2_match_data_create(1, r->gctx);
    if (md == NULL)
        hs_err_set(err, HS_ENOMEM, "out of memory while redacting");
    return md;
}

/* Appends s with the spans replaced; 'escape' writes the kept text as JSON
 * string contents. */
static int apply_spans(const struct redactor *r, const char *s, size_t len, const struct spans *sp,
                       bool escape, struct hs_buf *out, struct redact_counts *counts)
{
    size_t at = 0;
    int rc = HS_OK;
    for (size_t i = 0; i <= sp->n && rc == HS_OK; i++) {
        size_t end = i < sp->n ? sp->v[i].start : len;
        rc = escape ? redact_json_escape(s + at, end - at, out)
                    : hs_buf_append(out, s + at, end - at);
        if (rc != HS_OK || i == sp->n)
            break;
        rc = hs_buf_printf(out, "[REDACTED:%s]", r->names[sp->v[i].type]);
        if (counts != NULL)
            counts->n[sp->v[i].type]++;
        at = sp->v[i].end;
    }
    return rc;
}

static int out_error(int rc, struct hs_err *err)
{
    if (rc == HS_ETOOBIG)
        return hs_err_set(err, rc, "redacted text exceeds the output ceiling");
    return hs_err_set(err, rc, "out of memory while redacting");
}

int redact_text(const struct redactor *r, const char *in, size_t len, struct hs_buf *out,
                struct redact_counts *counts, struct hs_err *err)
{
    struct spans sp = {0};
    pcre2_match_data *md = new_match_data(r, err);
    if (md == NULL)
        return HS_ENOMEM;
    int rc = find_spans(r, in, len, md, &sp, err);
    if (rc == HS_OK) {
        rc = apply_spans(r, in, len, &sp, false, out, counts);
        if (rc != HS_OK)
            rc = out_error(rc, err);
    }
    pcre2_match_data_free(md);
    hs_free(sp.v);
    return rc;
}

/* ---- JSON ------------------------------------------------------------------------ */

int redact_json_escape(const char *s, size_t n, struct hs_buf *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        int rc = hs_buf_append(out, s + run, i - run);
        if (rc != HS_OK)
            return rc;
        char e[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t elen = 2;
        switch (c) {
        case '"':
            e[1] = '"';
            break;
        case '\\':
            e[1] = '\\';
            break;
        case '\b':
            e[1] = 'b';
            break;
        case '\f':
            e[1] = 'f';
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        default:
            memcpy(e + 1, "u00", 3);
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            elen = 6;
        }
        rc = hs_buf_append(out, e, elen);
        if (rc != HS_OK)
            return rc;
        run = i + 1;
    }
    return hs_buf_append(out, s + run, n - run);
}

struct jwalk {
    const struct redactor *r;
    const char *s;
    size_t len, i;
    size_t copied; /* input bytes up to here are already in out */
    struct hs_buf *out;
    struct hs_buf scratch; /* decoded string contents */
    struct spans sp;
    pcre2_match_data *md;
    struct redact_counts *counts;
    struct hs_err *err;
    int rc; /* first error from redaction or output */
};

static void skip_ws(struct jwalk *w)
{
    while (w->i < w->len &&
           (w->s[w->i] == ' ' || w->s[w->i] == '\t' || w->s[w->i] == '\n' || w->s[w->i] == '\r'))
        w->i++;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool read_hex4(const char *s, size_t len, size_t i, unsigned *out)
{
    if (i + 4 > len)
        return false;
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(s[i + (size_t)k]);
        if (h < 0)
            return false;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return true;
}

static int put_utf8(struct hs_buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return hs_buf_append(b, u, n);
}

/* Scans the string token at w->i (the opening quote); decodes its contents
 * into w->scratch when 'decode'.  False when malformed. */
static bool scan_string(struct jwalk *w, bool decode, bool *has_escape)
{
    const char *s = w->s;
    size_t i = w->i + 1;
    *has_escape = false;
    if (decode)
        hs_buf_reset(&w->scratch);
    while (i < w->len) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') {
            w->i = i + 1;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c != '\\') {
            size_t run = i;
            while (i < w->len && s[i] != '"' && s[i] != '\\' && (unsigned char)s[i] >= 0x20)
                i++;
            if (decode && w->rc == HS_OK)
                w->rc = hs_buf_append(&w->scratch, s + run, i - run);
            continue;
        }
        *has_escape = true;
        if (i + 1 >= w->len)
            return false;
        char e = s[i + 1];
        unsigned cp = 0;
        i += 2;
        switch (e) {
        case '"':
            cp = '"';
            break;
        case '\\':
            cp = '\\';
            break;
        case '/':
            cp = '/';
            break;
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u':
            if (!read_hex4(s, w->len, i, &cp))
                return false;
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (i + 1 < w->len && s[i] == '\\' && s[i + 1] == 'u' &&
                    read_hex4(s, w->len, i + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                } else {
                    cp = 0xFFFD; /* lone surrogate */
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            break;
        default:
            return false;
        }
        if (decode && w->rc == HS_OK)
            w->rc = put_utf8(&w->scratch, cp);
    }
    return false;
}

/* A string value: redact its contents; the token is rewritten only when
 * something was replaced. */
static bool walk_string_value(struct jwalk *w)
{
    size_t start = w->i;
    bool has_escape;
    /* Without escapes the raw bytes are the text: no decoding pass. */
    size_t probe = start + 1;
    while (probe < w->len && w->s[probe] != '"' && w->s[probe] != '\\')
        probe++;
    bool decode = probe < w->len && w->s[probe] == '\\';
    if (!scan_string(w, decode, &has_escape))
        return false;
    if (w->rc != HS_OK)
        return true;
    const char *text = decode ? w->scratch.p : w->s + start + 1;
    size_t tlen = decode ? w->scratch.len : w->i - start - 2;
    if (text == NULL)
        text = "";
    w->rc = find_spans(w->r, text, tlen, w->md, &w->sp, w->err);
    if (w->rc != HS_OK || w->sp.n == 0)
        return true;
    w->rc = hs_buf_append(w->out, w->s + w->copied, start + 1 - w->copied);
    if (w->rc == HS_OK)
        w->rc = apply_spans(w->r, text, tlen, &w->sp, true, w->out, w->counts);
    if (w->rc != HS_OK)
        w->rc = out_error(w->rc, w->err);
    w->copied = w->i - 1; /* the closing quote is copied with what follows */
    return true;
}

static bool walk_value(struct jwalk *w, int depth);

static bool walk_number(struct jwalk *w)
{
    const char *s = w->s;
    size_t i = w->i;
    if (i < w->len && s[i] == '-')
        i++;
    if (i >= w->len)
        return false;
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < w->len && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return false;
    }
    if (i < w->len && s[i] == '.') {
        i++;
        size_t d = i;
        while (i < w->len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    if (i < w->len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < w->len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t d = i;
        while (i < w->len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == d)
            return false;
    }
    w->i = i;
    return true;
}

static bool walk_literal(struct jwalk *w, const char *lit)
{
    size_t n = strlen(lit);
    if (w->len - w->i < n || memcmp(w->s + w->i, lit, n) != 0)
        return false;
    w->i += n;
    return true;
}

static bool walk_container(struct jwalk *w, int depth, char close, bool is_object)
{
    w->i++; /* the opening bracket */
    skip_ws(w);
    if (w->i < w->len && w->s[w->i] == close) {
        w->i++;
        return true;
    }
    for (;;) {
        skip_ws(w);
        if (is_object) {
            bool esc;
            if (w->i >= w->len || w->s[w->i] != '"' || !scan_string(w, false, &esc))
                return false;
            skip_ws(w);
            if (w->i >= w->len || w->s[w->i] != ':')
                return false;
            w->i++;
        }
        if (!walk_value(w, depth + 1))
            return false;
        skip_ws(w);
        if (w->i >= w->len)
            return false;
        if (w->s[w->i] == close) {
            w->i++;
            return true;
        }
        if (w->s[w->i] != ',')
            return false;
        w->i++;
    }
}

static bool walk_value(struct jwalk *w, int depth)
{
    if (depth > JSON_MAX_DEPTH || w->rc != HS_OK)
        return false; /* too deep counts as malformed; an error stops the walk */
    skip_ws(w);
    if (w->i >= w->len)
        return false;
    switch (w->s[w->i]) {
    case '{':
        return walk_container(w, depth, '}', true);
    case '[':
        return walk_container(w, depth, ']', false);
    case '"':
        return walk_string_value(w);
    case 't':
        return walk_literal(w, "true");
    case 'f':
        return walk_literal(w, "false");
    case 'n':
        return walk_literal(w, "null");
    default:
        return walk_number(w);
    }
}

int redact_json(const struct redactor *r, const char *in, size_t len, struct hs_buf *out,
                struct redact_counts *counts, bool *is_json, struct hs_err *err)
{
    struct jwalk w = {.r = r, .s = in, .len = len, .out = out, .counts = counts, .err = err};
    struct redact_counts local = {{0}};
    w.counts = &local;
    hs_buf_init(&w.scratch, 0);
    w.md = new_match_data(r, err);
    if (w.md == NULL)
        return HS_ENOMEM;
    size_t mark = out->len;
    bool ok = walk_value(&w, 0);
    if (ok && w.rc == HS_OK) {
        skip_ws(&w);
        ok = w.i == len;
    }
    int rc = w.rc;
    if (rc == HS_OK && ok) {
        rc = hs_buf_append(out, in + w.copied, len - w.copied);
        if (rc != HS_OK)
            rc = out_error(rc, err);
    }
    hs_buf_cleanup(&w.scratch);
    pcre2_match_data_free(w.md);
    hs_free(w.sp.v);
    if (rc != HS_OK)
        return rc;
    if (is_json != NULL)
        *is_json = ok;
    if (!ok) {
        /* Not JSON: nothing may escape redaction, so treat it as text. */
        out->len = mark;
        if (out->p != NULL)
            out->p[mark] = '\0';
        return redact_text(r, in, len, out, counts, err);
    }
    if (counts != NULL)
        for (size_t i = 0; i < REDACT_MAX_TYPES; i++)
            counts->n[i] += local.n[i];
    return HS_OK;
}

/* ---- SSE ------------------------------------------------------------------------ */

int redact_sse(const struct redactor *r, const char *in, size_t len, struct hs_buf *out,
               struct redact_counts *counts, struct hs_err *err)
{
    size_t i = 0;
    while (i < len) {
        size_t eol = i;
        while (eol < len && in[eol] != '\n' && in[eol] != '\r')
            eol++;
        size_t body = i, rc_len = eol - i;
        int rc;
        if (rc_len >= 5 && memcmp(in + i, "data:", 5) == 0) {
            size_t v = i + 5;
            if (v < eol && in[v] == ' ')
                v++;
            rc = hs_buf_append(out, in + i, v - i);
            if (rc == HS_OK)
                rc = redact_json(r, in + v, eol - v, out, counts, NULL, err);
            else
                rc = out_error(rc, err);
        } else {
            rc = redact_text(r, in + body, rc_len, out, counts, err);
        }
        if (rc != HS_OK)
            return rc;
        size_t next = eol;
        if (next < len)
            next += (in[next] == '\r' && next + 1 < len && in[next + 1] == '\n') ? 2 : 1;
        rc = hs_buf_append(out, in + eol, next - eol);
        if (rc != HS_OK)
            return out_error(rc, err);
        i = next;
    }
    return HS_OK;
}
