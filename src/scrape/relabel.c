/*
 * relabel.c - Prometheus relabelling: parsing relabel_configs, compiling
 * their regexes and applying them to label sets (target labels before a
 * scrape, every sample's labels after it).
 *
 * Semantics follow Prometheus' model/relabel: the values of source_labels
 * are joined with the separator, the regex must match the whole joined
 * value (it is compiled with PCRE2_ANCHORED | PCRE2_ENDANCHORED and dot
 * matching newlines, like Go's "^(?s:" + re + ")$"), and target_label and
 * replacement expand $1, ${1}, $name, ${name} and $$ as Go's
 * regexp.Expand does (an unknown group expands to nothing).  An empty value
 * means the label is absent; setting a label to "" deletes it.
 *
 * Speed: a rule set is compiled once (JIT where PCRE2 has it) and applied
 * with one caller-owned scratch (match data, two buffers that grow to the
 * longest value once); new label strings come from the caller's per-scrape
 * arena, so steady-state application calls no allocator (hashmod's MD5 via
 * OpenSSL EVP aside).  The default rule (.*) -> $1 skips the regex engine.
 * lowercase/uppercase change ASCII letters only (Go's strings.ToLower also
 * maps non-ASCII letters).
 */
#include "scrape/scrape_internal.h"

#include <openssl/evp.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <ctype.h>
#include <string.h>

#define MATCH_PAIRS 128 /* capture groups a match reports; more are dropped */

static const char *const action_names[] = {
    [SCRAPE_RELABEL_REPLACE] = "replace",     [SCRAPE_RELABEL_KEEP] = "keep",
    [SCRAPE_RELABEL_DROP] = "drop",           [SCRAPE_RELABEL_KEEPEQUAL] = "keepequal",
    [SCRAPE_RELABEL_DROPEQUAL] = "dropequal", [SCRAPE_RELABEL_HASHMOD] = "hashmod",
    [SCRAPE_RELABEL_LABELMAP] = "labelmap",   [SCRAPE_RELABEL_LABELDROP] = "labeldrop",
    [SCRAPE_RELABEL_LABELKEEP] = "labelkeep", [SCRAPE_RELABEL_LOWERCASE] = "lowercase",
    [SCRAPE_RELABEL_UPPERCASE] = "uppercase",
};

const char *scrape_relabel_action_name(int action)
{
    if (action < 0 || (size_t)action >= HS_ARRAY_LEN(action_names))
        return NULL;
    return action_names[action];
}

int scrape_relabel_action_parse(const char *s)
{
    /* Prometheus accepts the action in any case ("Replace", "LABELMAP"). */
    for (size_t i = 0; i < HS_ARRAY_LEN(action_names); i++)
        if (strcasecmp(s, action_names[i]) == 0)
            return (int)i;
    return -1;
}

/* ---- PCRE2 memory through hs_malloc ------------------------------------------ */

static void *pcre_malloc(PCRE2_SIZE n, void *ud)
{
    (void)ud;
    return hs_malloc(n);
}

static void pcre_free(void *p, void *ud)
{
    (void)ud;
    hs_free(p);
}

int scrape_relabel_scratch_init(struct scrape_relabel_scratch *s, struct hs_err *err)
{
    memset(s, 0, sizeof(*s));
    hs_buf_init(&s->buf, 0);
    hs_buf_init(&s->buf2, 0);
    pcre2_general_context *gc = pcre2_general_context_create(pcre_malloc, pcre_free, NULL);
    if (gc == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    s->md = pcre2_match_data_create(MATCH_PAIRS, gc);
    pcre2_general_context_free(gc);
    if (s->md == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    return HS_OK;
}

void scrape_relabel_scratch_cleanup(struct scrape_relabel_scratch *s)
{
    if (s->md != NULL)
        pcre2_match_data_free(s->md);
    s->md = NULL;
    hs_buf_cleanup(&s->buf);
    hs_buf_cleanup(&s->buf2);
}

/* ---- label builder ------------------------------------------------------------- */

int scrape__lb_init(struct scrape__lb *lb, struct hs_arena *arena, const struct hs_labels *in)
{
    size_t n = in ? in->n : 0;
    lb->arena = arena;
    lb->n = 0;
    lb->cap = n + 8;
    lb->v = hs_arena_alloc(arena, lb->cap * sizeof(lb->v[0]));
    if (lb->v == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (in->v[i].value[0] != '\0')
            lb->v[lb->n++] = in->v[i];
    return HS_OK;
}

static long lb_find(const struct scrape__lb *lb, const char *name)
{
    for (size_t i = 0; i < lb->n; i++)
        if (lb->v[i].name[0] == name[0] && strcmp(lb->v[i].name, name) == 0)
            return (long)i;
    return -1;
}

const char *scrape__lb_get(const struct scrape__lb *lb, const char *name)
{
    long i = lb_find(lb, name);
    return i < 0 ? "" : lb->v[i].value;
}

void scrape__lb_del(struct scrape__lb *lb, const char *name)
{
    long i = lb_find(lb, name);
    if (i >= 0)
        lb->v[i] = lb->v[--lb->n];
}

int scrape__lb_set(struct scrape__lb *lb, const char *name, const char *value)
{
    if (value[0] == '\0') {
        scrape__lb_del(lb, name);
        return HS_OK;
    }
    long i = lb_find(lb, name);
    if (i >= 0) {
        lb->v[i].value = value;
        return HS_OK;
    }
    if (lb->n == lb->cap) {
        if (lb->cap >= SCRAPE_RELABEL_MAX_LABELS)
            return HS_ETOOBIG;
        size_t cap = HS_MIN(lb->cap * 2, (size_t)SCRAPE_RELABEL_MAX_LABELS);
        struct hs_label *v = hs_arena_alloc(lb->arena, cap * sizeof(v[0]));
        if (v == NULL)
            return HS_ENOMEM;
        memcpy(v, lb->v, lb->n * sizeof(v[0]));
        lb->v = v;
        lb->cap = cap;
    }
    lb->v[lb->n].name = name;
    lb->v[lb->n].value = value;
    lb->n++;
    return HS_OK;
}

void scrape__lb_labels(struct scrape__lb *lb, struct hs_labels *out)
{
    /* Insertion sort: label sets are small and mostly sorted already (the
     * input was sorted; rules append a few names or swap a deleted slot). */
    struct hs_label *v = lb->v;
    for (size_t i = 1; i < lb->n; i++) {
        struct hs_label x = v[i];
        size_t k = i;
        while (k > 0 && strcmp(v[k - 1].name, x.name) > 0) {
            v[k] = v[k - 1];
            k--;
        }
        v[k] = x;
    }
    out->v = v;
    out->n = lb->n;
}

int scrape__labels_copy(struct hs_arena *arena, const struct hs_labels *in, struct hs_labels *out)
{
    out->n = 0;
    out->v = hs_arena_alloc(arena, (in->n + 1) * sizeof(out->v[0]));
    if (out->v == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < in->n; i++) {
        const char *nm = hs_arena_strndup(arena, in->v[i].name, strlen(in->v[i].name));
        const char *val = hs_arena_strndup(arena, in->v[i].value, strlen(in->v[i].value));
        if (nm == NULL || val == NULL)
            return HS_ENOMEM;
        out->v[i].name = nm;
        out->v[i].value = val;
    }
    out->n = in->n;
    return HS_OK;
}

bool scrape__utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    while (p < e) {
        unsigned c = *p;
        size_t k;
        unsigned min;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        if ((size_t)(e - p) <= k)
            return false;
        for (size_t i = 1; i <= k; i++) {
            if ((p[i] & 0xC0) != 0x80)
                return false;
            c = (c << 6) | (p[i] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return false;
        p += k + 1;
    }
    return true;
}

/* ---- expansion ---------------------------------------------------------------- */

static bool is_name_byte(unsigned char c)
{
    /* Go accepts Unicode letters and digits; bytes of multi-byte UTF-8
     * sequences are taken as letters. */
    return isalnum(c) || c == '_' || c >= 0x80;
}

/*
 * Reads a group reference after '$' at t[*i]: name or {name}.  Sets *num to
 * the group number (-1 for a name) and returns the name length, or 0 when
 * the reference is malformed ('$' is then literal).
 */
static size_t read_ref(const char *t, size_t len, size_t *i, const char **name, long *num)
{
    size_t p = *i;
    bool brace = p < len && t[p] == '{';
    if (brace)
        p++;
    size_t start = p;
    while (p < len && is_name_byte((unsigned char)t[p]))
        p++;
    size_t n = p - start;
    if (n == 0)
        return 0;
    if (brace) {
        if (p >= len || t[p] != '}')
            return 0;
        p++;
    }
    *name = t + start;
    *num = 0;
    for (size_t k = 0; k < n; k++) {
        char c = t[start + k];
        if (c < '0' || c > '9' || *num >= 100000000) {
            *num = -1;
            break;
        }
        *num = *num * 10 + (c - '0');
    }
    if (n > 1 && t[start] == '0')
        *num = -1;
    *i = p;
    return n;
}

/* Appends the expansion of template 't' for the match in 'md' on 'subj'. */
static int expand(const struct scrape_relabel_rule *r, const char *t, const char *subj,
                  pcre2_match_data *md, int rc, struct hs_buf *out)
{
    size_t len = strlen(t), i = 0;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    uint32_t npairs = rc > 0 ? (uint32_t)rc : pcre2_get_ovector_count(md);
    while (i < len) {
        const char *d = memchr(t + i, '$', len - i);
        size_t stop = d ? (size_t)(d - t) : len;
        if (hs_buf_append(out, t + i, stop - i) != HS_OK)
            return HS_ENOMEM;
        if (d == NULL)
            break;
        i = stop + 1;
        if (i < len && t[i] == '$') {
            if (hs_buf_putc(out, '$') != HS_OK)
                return HS_ENOMEM;
            i++;
            continue;
        }
        const char *name;
        long num;
        size_t nlen = read_ref(t, len, &i, &name, &num);
        if (nlen == 0) {
            if (hs_buf_putc(out, '$') != HS_OK)
                return HS_ENOMEM;
            continue;
        }
        if (num < 0) {
            char tmp[256];
            if (nlen >= sizeof(tmp))
                continue;
            memcpy(tmp, name, nlen);
            tmp[nlen] = '\0';
            int g = pcre2_substring_number_from_name(r->re, (PCRE2_SPTR)tmp);
            num = g > 0 ? g : -1;
        }
        if (num < 0 || (uint32_t)num >= npairs)
            continue;
        PCRE2_SIZE s = ov[2 * num], e = ov[2 * num + 1];
        if (s == PCRE2_UNSET || e < s)
            continue;
        if (hs_buf_append(out, subj + s, e - s) != HS_OK)
            return HS_ENOMEM;
    }
    return HS_OK;
}

/* ---- matching ------------------------------------------------------------------- */

/* Returns >0 (pairs set) on a match, 0 on no match. */
static int match(const struct scrape_relabel_rule *r, const char *s, size_t n, pcre2_match_data *md)
{
    int rc = r->is_jit ? pcre2_jit_match(r->re, (PCRE2_SPTR)s, n, 0, 0, md, NULL)
                       : pcre2_match(r->re, (PCRE2_SPTR)s, n, 0, 0, md, NULL);
    if (rc == 0) /* more groups than the ovector holds: a match all the same */
        rc = (int)pcre2_get_ovector_count(md);
    return rc > 0 ? rc : 0;
}

static int join_sources(const struct scrape_relabel_rule *r, const struct scrape__lb *lb,
                        struct hs_buf *b)
{
    hs_buf_reset(b);
    for (size_t i = 0; i < r->nsource; i++) {
        if (i > 0 && hs_buf_puts(b, r->separator) != HS_OK)
            return HS_ENOMEM;
        if (hs_buf_puts(b, scrape__lb_get(lb, r->source_labels[i])) != HS_OK)
            return HS_ENOMEM;
    }
    if (hs_buf_reserve(b, 1) != HS_OK)
        return HS_ENOMEM;
    b->p[b->len] = '\0';
    return HS_OK;
}

static char *arena_dup(struct scrape__lb *lb, const char *s, size_t n)
{
    return hs_arena_strndup(lb->arena, s, n);
}

static int do_replace(const struct scrape_relabel_rule *r, struct scrape__lb *lb,
                      struct scrape_relabel_scratch *sc)
{
    const char *val = sc->buf.p;
    size_t vlen = sc->buf.len;
    if (r->is_default_regex && !r->is_target_template && strcmp(r->replacement, "$1") == 0) {
        if (!hs_label_name_valid(r->target_label, strlen(r->target_label)))
            return HS_OK;
        char *v = arena_dup(lb, val, vlen);
        return v ? scrape__lb_set(lb, r->target_label, v) : HS_ENOMEM;
    }
    int rc = match(r, val, vlen, sc->md);
    if (rc == 0)
        return HS_OK;
    const char *target = r->target_label;
    if (r->is_target_template) {
        hs_buf_reset(&sc->buf2);
        if (expand(r, r->target_label, val, sc->md, rc, &sc->buf2) != HS_OK)
            return HS_ENOMEM;
        if (sc->buf2.len == 0 || !hs_label_name_valid(sc->buf2.p, sc->buf2.len))
            return HS_OK;
        target = arena_dup(lb, sc->buf2.p, sc->buf2.len);
        if (target == NULL)
            return HS_ENOMEM;
    } else if (!hs_label_name_valid(target, strlen(target))) {
        return HS_OK;
    }
    hs_buf_reset(&sc->buf2);
    if (expand(r, r->replacement, val, sc->md, rc, &sc->buf2) != HS_OK)
        return HS_ENOMEM;
    if (sc->buf2.len == 0) {
        scrape__lb_del(lb, target);
        return HS_OK;
    }
    char *v = arena_dup(lb, sc->buf2.p, sc->buf2.len);
    return v ? scrape__lb_set(lb, target, v) : HS_ENOMEM;
}

static int do_case(const struct scrape_relabel_rule *r, struct scrape__lb *lb, const char *val,
                   size_t n)
{
    char *v = arena_dup(lb, val, n);
    if (v == NULL)
        return HS_ENOMEM;
    for (size_t i = 0; i < n; i++)
        v[i] = (char)(r->action == SCRAPE_RELABEL_LOWERCASE ? tolower((unsigned char)v[i])
                                                            : toupper((unsigned char)v[i]));
    return scrape__lb_set(lb, r->target_label, v);
}

static int do_hashmod(const struct scrape_relabel_rule *r, struct scrape__lb *lb, const char *val,
                      size_t n)
{
    /* As Prometheus: the last 8 bytes of the MD5 of the value, big-endian,
     * modulo 'modulus', so that shards agree with a Prometheus next door. */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(val, n, md, &mdlen, EVP_md5(), NULL) || mdlen != 16)
        return HS_ENOMEM;
    uint64_t h = 0;
    for (int i = 8; i < 16; i++)
        h = (h << 8) | md[i];
    char *v = hs_arena_printf(lb->arena, "%llu", (unsigned long long)(h % r->modulus));
    return v ? scrape__lb_set(lb, r->target_label, v) : HS_ENOMEM;
}

static int do_labelmap(const struct scrape_relabel_rule *r, struct scrape__lb *lb,
                       struct scrape_relabel_scratch *sc)
{
    size_t n = lb->n;
    struct hs_label *snap = hs_arena_alloc(lb->arena, (n + 1) * sizeof(snap[0]));
    if (snap == NULL)
        return HS_ENOMEM;
    memcpy(snap, lb->v, n * sizeof(snap[0]));
    for (size_t i = 0; i < n; i++) {
        const char *name = snap[i].name;
        int rc = match(r, name, strlen(name), sc->md);
        if (rc == 0)
            continue;
        hs_buf_reset(&sc->buf2);
        if (expand(r, r->replacement, name, sc->md, rc, &sc->buf2) != HS_OK)
            return HS_ENOMEM;
        if (sc->buf2.len == 0 || !hs_label_name_valid(sc->buf2.p, sc->buf2.len))
            continue;
        char *nm = arena_dup(lb, sc->buf2.p, sc->buf2.len);
        if (nm == NULL)
            return HS_ENOMEM;
        int src = scrape__lb_set(lb, nm, snap[i].value);
        if (src != HS_OK)
            return src;
    }
    return HS_OK;
}

static void do_labelfilter(const struct scrape_relabel_rule *r, struct scrape__lb *lb,
                           struct scrape_relabel_scratch *sc)
{
    bool keep_matching = r->action == SCRAPE_RELABEL_LABELKEEP;
    size_t i = 0;
    while (i < lb->n) {
        const char *name = lb->v[i].name;
        bool m = match(r, name, strlen(name), sc->md) > 0;
        if (m != keep_matching)
            lb->v[i] = lb->v[--lb->n];
        else
            i++;
    }
}

/* One rule: 1 keep going, 0 drop, <0 error. */
static int apply_rule(const struct scrape_relabel_rule *r, struct scrape__lb *lb,
                      struct scrape_relabel_scratch *sc)
{
    if (join_sources(r, lb, &sc->buf) != HS_OK)
        return HS_ENOMEM;
    const char *val = sc->buf.p;
    size_t n = sc->buf.len;
    int rc = HS_OK;
    switch (r->action) {
    case SCRAPE_RELABEL_DROP:
        return match(r, val, n, sc->md) > 0 ? 0 : 1;
    case SCRAPE_RELABEL_KEEP:
        return match(r, val, n, sc->md) > 0 ? 1 : 0;
    case SCRAPE_RELABEL_DROPEQUAL:
        return strcmp(scrape__lb_get(lb, r->target_label), val) == 0 ? 0 : 1;
    case SCRAPE_RELABEL_KEEPEQUAL:
        return strcmp(scrape__lb_get(lb, r->target_label), val) == 0 ? 1 : 0;
    case SCRAPE_RELABEL_REPLACE:
        rc = do_replace(r, lb, sc);
        break;
    case SCRAPE_RELABEL_LOWERCASE:
    case SCRAPE_RELABEL_UPPERCASE:
        rc = do_case(r, lb, val, n);
        break;
    case SCRAPE_RELABEL_HASHMOD:
        rc = do_hashmod(r, lb, val, n);
        break;
    case SCRAPE_RELABEL_LABELMAP:
        rc = do_labelmap(r, lb, sc);
        break;
    case SCRAPE_RELABEL_LABELDROP:
    case SCRAPE_RELABEL_LABELKEEP:
        do_labelfilter(r, lb, sc);
        break;
    default:
        break;
    }
    return rc < 0 ? rc : 1;
}

int scrape__relabel_process(const struct scrape_relabel_set *rs, struct scrape__lb *lb,
                            struct scrape_relabel_scratch *scratch, struct hs_err *err)
{
    for (size_t i = 0; i < rs->n; i++) {
        int rc = apply_rule(&rs->v[i], lb, scratch);
        if (rc < 0)
            return hs_err_set(err, rc, "relabelling: %s",
                              rc == HS_ETOOBIG ? "too many labels" : "out of memory");
        if (rc == 0)
            return 0;
    }
    return 1;
}

int scrape_relabel_apply(const struct scrape_relabel_set *rs, const struct hs_labels *in,
                         struct hs_arena *arena, struct scrape_relabel_scratch *scratch,
                         struct hs_labels *out, struct hs_err *err)
{
    if (rs == NULL || rs->n == 0) {
        *out = *in;
        return in->n > 0 ? 1 : 0;
    }
    struct scrape__lb lb;
    if (scrape__lb_init(&lb, arena, in) != HS_OK)
        return hs_err_set(err, HS_ENOMEM, "relabelling: out of memory");
    int rc = scrape__relabel_process(rs, &lb, scratch, err);
    if (rc <= 0)
        return rc;
    scrape__lb_labels(&lb, out);
    return out->n > 0 ? 1 : 0;
}

/* ---- parsing ------------------------------------------------------------------- */

struct rule_src {
    const struct hs_ynode *action, *source_labels, *separator, *regex, *target_label, *replacement,
        *modulus;
};

static int take_str(const struct hs_ydoc *doc, const struct hs_ynode *n, const char *what,
                    struct hs_arena *a, const char **out, struct hs_err *err)
{
    const char *s;
    int rc = hs_ynode_str(doc, n, what, &s, err);
    if (rc != HS_OK)
        return rc;
    *out = hs_arena_strndup(a, s, strlen(s));
    return *out ? HS_OK : hs_err_set(err, HS_ENOMEM, "out of memory");
}

static int read_rule_keys(const struct hs_ydoc *doc, const struct hs_ynode *m, const char *what,
                          struct rule_src *src, struct hs_err *err)
{
    memset(src, 0, sizeof(*src));
    if (m->type != HS_Y_MAP)
        return hs_ynode_error(doc, m, HS_EINVAL, err, "%s: each rule must be a map", what);
    for (size_t i = 0; i < m->n; i++) {
        const struct hs_ynode *k = m->items[2 * i], *v = m->items[2 * i + 1];
        const char *key = k->scalar;
        if (strcmp(key, "action") == 0)
            src->action = v;
        else if (strcmp(key, "source_labels") == 0)
            src->source_labels = v;
        else if (strcmp(key, "separator") == 0)
            src->separator = v;
        else if (strcmp(key, "regex") == 0)
            src->regex = v;
        else if (strcmp(key, "target_label") == 0)
            src->target_label = v;
        else if (strcmp(key, "replacement") == 0)
            src->replacement = v;
        else if (strcmp(key, "modulus") == 0)
            src->modulus = v;
        else
            return hs_ynode_error(doc, k, HS_EINVAL, err, "%s: unknown key \"%s\"", what, key);
    }
    return HS_OK;
}

static int read_sources(const struct hs_ydoc *doc, const struct hs_ynode *n, struct hs_arena *a,
                        struct scrape_relabel_rule *r, struct hs_err *err)
{
    if (n == NULL || hs_ynode_is_null(n))
        return HS_OK;
    if (n->type != HS_Y_SEQ)
        return hs_ynode_error(doc, n, HS_EINVAL, err, "source_labels: expected a list of names");
    if (n->n > SCRAPE_RELABEL_MAX_SOURCES)
        return hs_ynode_error(doc, n, HS_ETOOBIG, err, "source_labels: more than %d names",
                              SCRAPE_RELABEL_MAX_SOURCES);
    r->source_labels = hs_arena_alloc(a, (n->n + 1) * sizeof(r->source_labels[0]));
    if (r->source_labels == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n->n; i++) {
        int rc = take_str(doc, n->items[i], "source_labels", a, &r->source_labels[i], err);
        if (rc != HS_OK)
            return rc;
        const char *s = r->source_labels[i];
        if (!hs_label_name_valid(s, strlen(s)))
            return hs_ynode_error(doc, n->items[i], HS_EINVAL, err,
                                  "source_labels: \"%s\" is not a valid label name", s);
    }
    r->nsource = n->n;
    return HS_OK;
}

static void free_code(void *p)
{
    pcre2_code_free(p);
}

static int compile_regex(const struct hs_ydoc *doc, const struct hs_ynode *at, struct hs_arena *a,
                         struct scrape_relabel_rule *r, struct hs_err *err)
{
    size_t len = strlen(r->regex);
    if (len > SCRAPE_RELABEL_MAX_REGEX)
        return hs_ynode_error(doc, at, HS_ETOOBIG, err, "regex: longer than %d bytes",
                              SCRAPE_RELABEL_MAX_REGEX);
    r->is_default_regex = strcmp(r->regex, "(.*)") == 0;
    pcre2_general_context *gc = pcre2_general_context_create(pcre_malloc, pcre_free, NULL);
    pcre2_compile_context *cc = gc ? pcre2_compile_context_create(gc) : NULL;
    if (cc == NULL) {
        pcre2_general_context_free(gc);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    int ecode = 0;
    PCRE2_SIZE eoff = 0;
    uint32_t opts =
        PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_DOTALL | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)r->regex, len, opts, &ecode, &eoff, cc);
    pcre2_compile_context_free(cc);
    pcre2_general_context_free(gc);
    if (re == NULL) {
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(ecode, msg, sizeof(msg)) < 0)
            msg[0] = '\0';
        if (ecode == PCRE2_ERROR_HEAP_FAILED || ecode == PCRE2_ERROR_NOMEMORY)
            return hs_err_set(err, HS_ENOMEM, "out of memory");
        return hs_ynode_error(doc, at, HS_EINVAL, err, "regex \"%.60s\": %s at offset %zu",
                              r->regex, (const char *)msg, (size_t)eoff);
    }
    if (hs_arena_on_cleanup(a, free_code, re) != HS_OK) {
        pcre2_code_free(re);
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    }
    /* Without JIT support (or memory for it) the interpreter is used. */
    r->is_jit = pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) == 0;
    r->re = re;
    return HS_OK;
}

static bool target_template_ok(const char *t)
{
    /* Prometheus (legacy names): letters, digits, '_' and $name / ${name}. */
    if (t[0] == '\0')
        return false;
    for (const char *p = t; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '$' && *p != '{' && *p != '}')
            return false;
    return !isdigit((unsigned char)t[0]);
}

static int validate_rule(const struct hs_ydoc *doc, const struct hs_ynode *m,
                         const struct rule_src *src, const struct scrape_relabel_rule *r,
                         struct hs_err *err)
{
    const char *act = action_names[r->action];
    const struct hs_ynode *at = src->action ? src->action : m;
    int a = r->action;
    if (a == SCRAPE_RELABEL_HASHMOD && r->modulus == 0)
        return hs_ynode_error(doc, at, HS_EINVAL, err,
                              "relabel configuration for hashmod requires non-zero modulus");
    bool needs_target = a == SCRAPE_RELABEL_REPLACE || a == SCRAPE_RELABEL_HASHMOD ||
                        a == SCRAPE_RELABEL_LOWERCASE || a == SCRAPE_RELABEL_UPPERCASE ||
                        a == SCRAPE_RELABEL_KEEPEQUAL || a == SCRAPE_RELABEL_DROPEQUAL;
    if (needs_target && r->target_label == NULL)
        return hs_ynode_error(doc, at, HS_EINVAL, err,
                              "relabel configuration for %s action requires 'target_label' value",
                              act);
    if (a == SCRAPE_RELABEL_REPLACE && !target_template_ok(r->target_label))
        return hs_ynode_error(doc, src->target_label, HS_EINVAL, err,
                              "\"%s\" is invalid 'target_label' for %s action", r->target_label,
                              act);
    if (needs_target && a != SCRAPE_RELABEL_REPLACE &&
        !hs_label_name_valid(r->target_label, strlen(r->target_label)))
        return hs_ynode_error(doc, src->target_label, HS_EINVAL, err,
                              "\"%s\" is invalid 'target_label' for %s action", r->target_label,
                              act);
    if (a == SCRAPE_RELABEL_LABELMAP && !target_template_ok(r->replacement))
        return hs_ynode_error(doc, src->replacement ? src->replacement : at, HS_EINVAL, err,
                              "\"%s\" is invalid 'replacement' for %s action", r->replacement, act);
    if ((a == SCRAPE_RELABEL_LABELDROP || a == SCRAPE_RELABEL_LABELKEEP) &&
        (src->source_labels || src->target_label || src->modulus || src->separator ||
         src->replacement))
        return hs_ynode_error(doc, at, HS_EINVAL, err,
                              "%s action requires only 'regex', and no other fields", act);
    if ((a == SCRAPE_RELABEL_KEEPEQUAL || a == SCRAPE_RELABEL_DROPEQUAL) &&
        (src->regex || src->modulus || src->separator || src->replacement))
        return hs_ynode_error(doc, at, HS_EINVAL, err,
                              "%s action requires only 'source_labels' and 'target_label', and no "
                              "other fields",
                              act);
    if ((a == SCRAPE_RELABEL_LOWERCASE || a == SCRAPE_RELABEL_UPPERCASE) && src->replacement)
        return hs_ynode_error(doc, src->replacement, HS_EINVAL, err,
                              "'replacement' can not be set for %s action", act);
    return HS_OK;
}

static int parse_rule(const struct hs_ydoc *doc, const struct hs_ynode *m, const char *what,
                      struct hs_arena *a, struct scrape_relabel_rule *r, struct hs_err *err)
{
    struct rule_src src;
    int rc = read_rule_keys(doc, m, what, &src, err);
    if (rc != HS_OK)
        return rc;
    r->line = m->line;
    r->col = m->col;
    r->separator = ";";
    r->regex = "(.*)";
    r->replacement = "$1";
    r->action = SCRAPE_RELABEL_REPLACE;
    if (src.action) {
        const char *s;
        if ((rc = hs_ynode_str(doc, src.action, "action", &s, err)) != HS_OK)
            return rc;
        r->action = scrape_relabel_action_parse(s);
        if (r->action < 0)
            return hs_ynode_error(doc, src.action, HS_EINVAL, err, "unknown relabel action \"%s\"",
                                  s);
    }
    if ((rc = read_sources(doc, src.source_labels, a, r, err)) != HS_OK)
        return rc;
    if (src.separator && (rc = take_str(doc, src.separator, "separator", a, &r->separator, err)))
        return rc;
    if (src.regex && (rc = take_str(doc, src.regex, "regex", a, &r->regex, err)))
        return rc;
    if (src.target_label &&
        (rc = take_str(doc, src.target_label, "target_label", a, &r->target_label, err)))
        return rc;
    if (src.replacement &&
        (rc = take_str(doc, src.replacement, "replacement", a, &r->replacement, err)))
        return rc;
    if (src.modulus) {
        int64_t v;
        if ((rc = hs_ynode_i64(doc, src.modulus, "modulus", &v, err)) != HS_OK)
            return rc;
        if (v < 0)
            return hs_ynode_error(doc, src.modulus, HS_EINVAL, err,
                                  "modulus: must not be negative");
        r->modulus = (uint64_t)v;
    }
    if ((rc = validate_rule(doc, m, &src, r, err)) != HS_OK)
        return rc;
    r->is_target_template = r->target_label && strchr(r->target_label, '$') != NULL;
    return compile_regex(doc, src.regex ? src.regex : m, a, r, err);
}

/*
 * The rules' strings and compiled patterns live in an arena stored in front
 * of the rule array, so one free releases a set.
 */
struct set_mem {
    struct hs_arena arena;
    _Alignas(16) struct scrape_relabel_rule rules[];
};

int scrape_relabel_set_parse(const struct hs_ydoc *doc, const struct hs_ynode *seq,
                             const char *what, struct scrape_relabel_set *out, struct hs_err *err)
{
    out->v = NULL;
    out->n = 0;
    if (seq == NULL || hs_ynode_is_null(seq))
        return HS_OK;
    if (seq->type != HS_Y_SEQ)
        return hs_ynode_error(doc, seq, HS_EINVAL, err, "%s: expected a list of rules", what);
    if (seq->n > SCRAPE_RELABEL_MAX_RULES)
        return hs_ynode_error(doc, seq, HS_ETOOBIG, err, "%s: more than %d rules", what,
                              SCRAPE_RELABEL_MAX_RULES);
    if (seq->n == 0)
        return HS_OK;
    struct set_mem *mem = hs_calloc(1, sizeof(*mem) + seq->n * sizeof(mem->rules[0]));
    if (mem == NULL)
        return hs_err_set(err, HS_ENOMEM, "out of memory");
    hs_arena_init(&mem->arena, 1024, 0);
    for (size_t i = 0; i < seq->n; i++) {
        int rc = parse_rule(doc, seq->items[i], what, &mem->arena, &mem->rules[i], err);
        if (rc != HS_OK) {
            hs_arena_cleanup(&mem->arena);
            hs_free(mem);
            return rc;
        }
    }
    out->v = mem->rules;
    out->n = seq->n;
    return HS_OK;
}

void scrape_relabel_set_cleanup(struct scrape_relabel_set *rs)
{
    if (rs->v != NULL) {
        struct set_mem *mem =
            (struct set_mem *)(void *)((char *)rs->v - offsetof(struct set_mem, rules));
        hs_arena_cleanup(&mem->arena);
        hs_free(mem);
    }
    rs->v = NULL;
    rs->n = 0;
}
