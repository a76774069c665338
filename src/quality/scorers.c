/*
 * scorers.c - the output-quality checks and the composite score.
 *
 * Every scorer is a pure function of its arguments: no globals, no locks,
 * and it reads at most QUAL_MAX_SCAN_BYTES of the output (JSON validity:
 * QUAL_MAX_JSON_BYTES), so a huge answer costs no more than a large one.
 * Scores are in [0, 1] with 1 = good; a score below QUAL_FAIL_BELOW is a
 * failure.  The thresholds are documented in quality.h, above each scorer.
 */
#include "quality/internal.h"
#include "quality/quality.h"

#include <jansson.h>

#include <math.h>
#include <string.h>

static const char *const check_names[QUAL_CHECK_COUNT] = {
    "empty", "truncation", "repetition", "refusal", "language", "json", "length", "encoding",
};

const char *qual_check_name(int check)
{
    if (check < 0 || check >= QUAL_CHECK_COUNT)
        return "?";
    return check_names[check];
}

int qual_check_from_name(const char *name, size_t len)
{
    for (int i = 0; i < QUAL_CHECK_COUNT; i++)
        if (strlen(check_names[i]) == len && memcmp(check_names[i], name, len) == 0)
            return i;
    return -1;
}

const char *qual_result_name(int result)
{
    switch (result) {
    case QUAL_PASS:
        return "pass";
    case QUAL_FAIL:
        return "fail";
    default:
        return "skip";
    }
}

void qual_input_init(struct qual_input *in)
{
    memset(in, 0, sizeof(*in));
    in->output_tokens = -1;
    in->is_scorable = true;
}

static struct qual_check_result skip(void)
{
    return (struct qual_check_result){1.0, QUAL_SKIP};
}

static struct qual_check_result verdict(double score)
{
    if (!(score >= 0.0)) /* NaN too */
        score = 0.0;
    if (score > 1.0)
        score = 1.0;
    return (struct qual_check_result){score, score < QUAL_FAIL_BELOW ? QUAL_FAIL : QUAL_PASS};
}

static size_t scan_len(size_t len)
{
    return len > QUAL_MAX_SCAN_BYTES ? QUAL_MAX_SCAN_BYTES : len;
}

/* ---- empty, truncation ------------------------------------------------------ */

static bool is_blank(const char *out, size_t len)
{
    const unsigned char *s = (const unsigned char *)out;
    size_t i = 0;
    len = scan_len(len);
    while (i < len) {
        uint32_t cp;
        qual__utf8_next(s, len, &i, &cp);
        bool space = cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' ||
                     cp == '\v' || cp == 0xA0 || cp == 0x3000 || cp == 0xFEFF ||
                     (cp >= 0x2000 && cp <= 0x200B);
        if (!space)
            return false;
    }
    return true;
}

struct qual_check_result qual_score_empty(const char *out, size_t len)
{
    if (out == NULL || len == 0 || is_blank(out, len))
        return verdict(0.0);
    return verdict(1.0);
}

struct qual_check_result qual_score_truncation(const char *finish_reason, const char *out,
                                               size_t len)
{
    if (finish_reason == NULL)
        return skip();
    if (strcmp(finish_reason, "length") != 0)
        return verdict(1.0);
    if (out == NULL || len == 0 || is_blank(out, len))
        return verdict(0.0);
    return verdict(0.2);
}

/* ---- repetition -------------------------------------------------------------- */

/* Share of values in h[0..n) that are repeats of an earlier value (0 when
 * n == 0).  -1 on allocation failure. */
static double repeated_share(const uint64_t *h, size_t n)
{
    if (n == 0)
        return 0.0;
    size_t cap = 16;
    while (cap < n * 2)
        cap <<= 1;
    uint64_t *tab = hs_calloc(cap, sizeof(*tab));
    if (tab == NULL)
        return -1.0;
    size_t dup = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = h[i] | 1; /* 0 marks a free slot */
        size_t j = (size_t)(v >> 7) & (cap - 1);
        while (tab[j] != 0 && tab[j] != v)
            j = (j + 1) & (cap - 1);
        if (tab[j] == v)
            dup++;
        else
            tab[j] = v;
    }
    hs_free(tab);
    return (double)dup / (double)n;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x9e3779b97f4a7c15ull;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    return x ^ (x >> 32);
}

/* Word splitting state: the hashes so far and the longest runs of one
 * word repeated back to back, for words of one character (digits, single
 * letters, CJK characters: "0, 0, 0" in data is common) and longer ones. */
struct words {
    uint64_t *v;      /* one hash per word */
    size_t n;         /* words */
    size_t run;       /* current run of v[n-1] */
    size_t max_short; /* longest run of a one-character word */
    size_t max_long;  /* longest run of a longer word */
};

static void word_end(struct words *w, uint64_t h, size_t chars)
{
    h = mix64(h);
    w->run = (w->n > 0 && w->v[w->n - 1] == h) ? w->run + 1 : 1;
    size_t *max = chars > 1 ? &w->max_long : &w->max_short;
    if (w->run > *max)
        *max = w->run;
    w->v[w->n++] = h;
}

/* Splits s into words (room for len + 1 hashes in w->v). */
static void split_words(const unsigned char *s, size_t len, struct words *w)
{
    size_t i = 0, chars = 0;
    uint64_t h = 0;
    while (i <= len) {
        uint32_t cp = ' ';
        if (i < len)
            qual__utf8_next(s, len, &i, &cp);
        else
            i++;
        bool ideo = qual__is_ideograph(cp);
        if (!ideo && !qual__is_separator(cp) && cp != 0xFFFD) {
            if (cp >= 'A' && cp <= 'Z')
                cp |= 0x20;
            h = (h ^ cp) * 0x100000001b3ull; /* FNV-1a step; mixed at the word's end */
            chars++;
            continue;
        }
        if (chars > 0)
            word_end(w, h, chars);
        if (ideo)
            word_end(w, cp ^ 0x5bd1e995u, 1);
        h = 0;
        chars = 0;
    }
}

/* Hashes of the 16-byte shingles of s whose hash has (hash & keep_mask)
 * == 0, into buf; returns the count. */
static size_t shingles(const unsigned char *s, size_t len, uint64_t keep_mask, uint64_t *buf)
{
    const size_t k = 16;
    const uint64_t p = 0x100000001b3ull;
    uint64_t pk = 1, h = 0;
    for (size_t i = 0; i < k; i++) {
        pk *= p;
        h = h * p + s[i];
    }
    size_t n = 0;
    uint64_t m = mix64(h);
    if ((m & keep_mask) == 0)
        buf[n++] = m;
    for (size_t i = k; i < len; i++) {
        h = h * p + s[i] - pk * s[i - k];
        m = mix64(h);
        if ((m & keep_mask) == 0)
            buf[n++] = m;
    }
    return n;
}

/* Long texts keep one shingle in four, chosen by content (the same
 * shingle is always kept or always dropped), so the repeated share is
 * estimated from a quarter of the table work.  Text with very few distinct
 * shingles can lose them all to the sampling: then every shingle counts. */
static double shingle_share(const unsigned char *s, size_t len, uint64_t *buf)
{
    if (len < 32)
        return 0.0;
    size_t total = len - 15;
    size_t n = len >= 1024 ? shingles(s, len, 3, buf) : 0;
    if (n < total / 8)
        n = shingles(s, len, 0, buf);
    return repeated_share(buf, n);
}

struct qual_check_result qual_score_repetition(const char *out, size_t len)
{
    if (out == NULL)
        return skip();
    len = scan_len(len);
    const unsigned char *s = (const unsigned char *)out;
    uint64_t *buf = hs_malloc((len + 1) * sizeof(*buf));
    if (buf == NULL)
        return skip();
    struct words w = {.v = buf};
    split_words(s, len, &w);
    size_t nw = w.n;
    if (nw < 4 && len < 32) {
        hs_free(buf);
        return skip();
    }
    double worst = 0.0;
    if (nw >= 3) {
        for (size_t i = 0; i + 2 < nw; i++)
            buf[i] = mix64(buf[i] * 31 + mix64(buf[i + 1] * 17 + buf[i + 2]));
        worst = repeated_share(buf, nw - 2);
    }
    /* Byte shingles catch loops without spaces; JSON answers repeat their
     * keys by nature, so they are judged by their words only. */
    size_t lead = 0;
    while (lead < len && (s[lead] == ' ' || s[lead] == '\n' || s[lead] == '\t' || s[lead] == '\r'))
        lead++;
    if (worst >= 0.0 && lead < len && s[lead] != '{' && s[lead] != '[') {
        double sh = shingle_share(s, len, buf);
        if (sh < 0.0 || sh > worst)
            worst = sh;
    }
    hs_free(buf);
    if (worst < 0.0)
        return skip();
    double score = 1.0 - (worst - 0.25) / 0.40;
    if (w.max_long >= 5 || w.max_short >= 16)
        score = 0.0;
    return verdict(score > 1.0 ? 1.0 : score);
}

/* ---- refusal --------------------------------------------------------------------- */

/* Lowercase forms, apostrophes straight.  Kept to phrases that decline:
 * "I'm sorry, but" alone also opens helpful answers. */
static const char *const refusals[] = {
    /* English */
    "i can't help",
    "i cannot help",
    "i can not help",
    "i can't assist",
    "i cannot assist",
    "i'm not able to help",
    "i am not able to help",
    "i'm unable to",
    "i am unable to",
    "i can't provide",
    "i cannot provide",
    "i won't be able to help",
    "i can't comply",
    "i cannot comply",
    "i must decline",
    "i'm sorry, but i can't",
    "i'm sorry, but i cannot",
    "i am sorry, but i cannot",
    "i apologize, but i can't",
    "i apologize, but i cannot",
    "as an ai language model",
    "i can't fulfill",
    "i cannot fulfill",
    "i can't do that",
    "i won't help",
    "sorry, i can't",
    "i'm not going to help",
    /* Spanish */
    "no puedo ayudar",
    "lo siento, pero no puedo",
    "no puedo proporcionar",
    "no puedo cumplir",
    /* French */
    "je ne peux pas vous aider",
    "je ne peux pas t'aider",
    "je ne peux pas répondre",
    "je ne peux pas fournir",
    "désolé, mais je ne peux pas",
    "désolée, mais je ne peux pas",
    /* German */
    "ich kann dir dabei nicht helfen",
    "ich kann ihnen dabei nicht helfen",
    "ich kann nicht helfen",
    "dabei kann ich nicht helfen",
    "dabei kann ich ihnen nicht helfen",
    "es tut mir leid, aber ich kann nicht",
    "es tut mir leid, aber ich kann dabei nicht",
    /* Italian */
    "non posso aiutarti",
    "non posso aiutarla",
    "non posso aiutare",
    "mi dispiace, ma non posso",
    /* Portuguese */
    "não posso ajudar",
    "desculpe, mas não posso",
    "não consigo ajudar",
    /* Dutch */
    "ik kan je daar niet mee helpen",
    "ik kan u daar niet mee helpen",
    "ik kan daar niet mee helpen",
    "ik kan je niet helpen",
    /* Russian */
    "я не могу помочь",
    "не могу помочь с этим",
    "извините, но я не могу",
    "к сожалению, я не могу",
    "я не могу выполнить",
    "я не могу предоставить",
    /* Chinese */
    "我不能帮助",
    "我无法帮助",
    "我不能帮你",
    "我无法帮你",
    "抱歉，我不能",
    "抱歉，我无法",
    "对不起，我不能",
    "对不起，我无法",
    "我无法提供",
    "我不能提供",
    /* Japanese */
    "お手伝いできません",
    "お手伝いすることはできません",
    "お答えできません",
    "お答えすることはできません",
    /* Korean */
    "도와드릴 수 없습니다",
    "도와 드릴 수 없습니다",
    "도울 수 없습니다",
    /* Arabic */
    "لا أستطيع المساعدة",
    "لا يمكنني المساعدة",
    "عذراً، لا أستطيع",
    "عذرًا، لا يمكنني",
    "لا يمكنني تقديم",
};

#define REFUSAL_SCAN  4096
#define REFUSAL_EARLY 400

/* Folds case (ASCII, Latin-1, Cyrillic) and apostrophes of s[0..len) into
 * out (room for len bytes); returns the bytes written.  out_pos[k] maps
 * folded offset k back to the source offset (for "early" decisions). */
static size_t fold(const unsigned char *s, size_t len, unsigned char *out, uint16_t *out_pos)
{
    size_t i = 0, o = 0;
    while (i < len) {
        size_t at = i;
        uint32_t cp;
        qual__utf8_next(s, len, &i, &cp);
        if (cp == 0x2019 || cp == 0x2018 || cp == 0x2BC) {
            out_pos[o] = (uint16_t)at;
            out[o++] = '\'';
            continue;
        }
        if (cp >= 'A' && cp <= 'Z')
            cp |= 0x20;
        else if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7)
            cp += 0x20;
        else if (cp >= 0x410 && cp <= 0x42F)
            cp += 0x20;
        else if (cp >= 0x400 && cp <= 0x40F)
            cp += 0x50;
        /* Re-encode; the folded form never needs more bytes than the source. */
        size_t n = i - at;
        unsigned char enc[4];
        size_t en;
        if (cp < 0x80) {
            enc[0] = (unsigned char)cp;
            en = 1;
        } else if (cp < 0x800) {
            enc[0] = (unsigned char)(0xC0 | (cp >> 6));
            enc[1] = (unsigned char)(0x80 | (cp & 0x3F));
            en = 2;
        } else {
            memcpy(enc, s + at, n);
            en = n;
        }
        if (en > n) { /* cannot happen for the folds above; keep the source bytes */
            memcpy(enc, s + at, n);
            en = n;
        }
        for (size_t k = 0; k < en; k++) {
            out_pos[o] = (uint16_t)at;
            out[o++] = enc[k];
        }
    }
    return o;
}

/* True when a phrase starting at folded[at] begins a word: the character
 * before it is not a letter, digit or apostrophe. */
static bool at_word_start(const unsigned char *folded, size_t at)
{
    if (at == 0)
        return true;
    size_t b = at - 1;
    while (b > 0 && at - b < 4 && (folded[b] & 0xC0) == 0x80)
        b--;
    size_t i = b;
    uint32_t cp;
    qual__utf8_next(folded, at, &i, &cp);
    if (cp < 0x80)
        return !((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') && !(cp >= '0' && cp <= '9') &&
               cp != '\'';
    return qual__script_of(cp) == QUAL_SCRIPT_NONE;
}

struct qual_check_result qual_score_refusal(const char *out, size_t len)
{
    if (out == NULL || len == 0)
        return skip();
    if (len > REFUSAL_SCAN)
        len = REFUSAL_SCAN;
    unsigned char folded[REFUSAL_SCAN];
    uint16_t pos[REFUSAL_SCAN];
    size_t n = fold((const unsigned char *)out, len, folded, pos);
    /* Phrases grouped by first byte; a phrase is tried only where a word
     * starts (CJK phrases, whose text has no spaces, wherever their first
     * byte occurs). */
    enum { NREF = HS_ARRAY_LEN(refusals) };
    uint8_t start[257] = {0}, order[NREF];
    uint8_t plen[NREF];
    for (size_t r = 0; r < NREF; r++) {
        start[(unsigned char)refusals[r][0] + 1]++;
        plen[r] = (uint8_t)strlen(refusals[r]);
    }
    for (int b = 0; b < 256; b++)
        start[b + 1] = (uint8_t)(start[b + 1] + start[b]);
    uint8_t fill[256];
    memcpy(fill, start, sizeof(fill));
    for (size_t r = 0; r < NREF; r++)
        order[fill[(unsigned char)refusals[r][0]]++] = (uint8_t)r;
    for (size_t at = 0; at < n; at++) {
        unsigned char b = folded[at];
        if (start[b] == start[b + 1])
            continue;
        if (b < 0xE0 && !at_word_start(folded, at))
            continue;
        for (size_t k = start[b]; k < start[b + 1]; k++) {
            size_t r = order[k];
            if (plen[r] <= n - at && memcmp(folded + at, refusals[r], plen[r]) == 0)
                return verdict(pos[at] < REFUSAL_EARLY ? 0.0 : 0.6);
        }
    }
    return verdict(1.0);
}

/* ---- language ---------------------------------------------------------------------- */

#define LANGUAGE_SCAN 16384

/* Letters per script; CJK characters weigh 3 letters, Hangul syllables 2
 * (one character carries about a short word). */
static double script_counts(const char *text, size_t len, double counts[QUAL_SCRIPT_COUNT])
{
    memset(counts, 0, sizeof(double) * QUAL_SCRIPT_COUNT);
    const unsigned char *s = (const unsigned char *)text;
    if (len > LANGUAGE_SCAN) /* the script shows long before the end */
        len = LANGUAGE_SCAN;
    size_t i = 0;
    double total = 0;
    while (i < len) {
        uint32_t cp;
        qual__utf8_next(s, len, &i, &cp);
        int sc = qual__script_of(cp);
        if (sc == QUAL_SCRIPT_NONE)
            continue;
        double w = sc == QUAL_SCRIPT_CJK ? 3.0 : sc == QUAL_SCRIPT_HANGUL ? 2.0 : 1.0;
        counts[sc] += w;
        total += w;
    }
    return total;
}

static int dominant(const double counts[QUAL_SCRIPT_COUNT])
{
    int best = QUAL_SCRIPT_NONE;
    for (int k = 1; k < QUAL_SCRIPT_COUNT; k++)
        if (counts[k] > 0 && (best == QUAL_SCRIPT_NONE || counts[k] > counts[best]))
            best = k;
    return best;
}

int qual_dominant_script(const char *text, size_t len, size_t min_letters)
{
    if (text == NULL)
        return QUAL_SCRIPT_NONE;
    double counts[QUAL_SCRIPT_COUNT];
    double total = script_counts(text, len, counts);
    if (total < (double)min_letters || total == 0)
        return QUAL_SCRIPT_NONE;
    return dominant(counts);
}

const char *qual_script_name(int script)
{
    static const char *const names[QUAL_SCRIPT_COUNT] = {
        "none",   "latin",      "cyrillic", "greek", "arabic",
        "hebrew", "devanagari", "thai",     "cjk",   "hangul",
    };
    if (script < 0 || script >= QUAL_SCRIPT_COUNT)
        return "none";
    return names[script];
}

struct qual_check_result qual_score_language(const char *prompt, size_t prompt_len, const char *out,
                                             size_t out_len)
{
    if (prompt == NULL || out == NULL)
        return skip();
    double pc[QUAL_SCRIPT_COUNT], oc[QUAL_SCRIPT_COUNT];
    double pt = script_counts(prompt, prompt_len, pc);
    double ot = script_counts(out, out_len, oc);
    if (pt < 8 || ot < 8)
        return skip();
    int want = dominant(pc);
    return verdict(2.0 * oc[want] / ot);
}

/* ---- JSON ---------------------------------------------------------------------------- */

static bool json_ok(const char *s, size_t len)
{
    json_error_t jerr;
    json_t *j = json_loadb(s, len, 0, &jerr);
    if (j == NULL)
        return false;
    json_decref(j);
    return true;
}

struct qual_check_result qual_score_json(bool wants_json, const char *out, size_t len)
{
    if (!wants_json)
        return skip();
    if (out == NULL || len == 0 || len > QUAL_MAX_JSON_BYTES)
        return verdict(0.0);
    if (json_ok(out, len))
        return verdict(1.0);
    const char *f = memmem(out, len, "```", 3);
    if (f != NULL) {
        const char *body = f + 3;
        const char *end = out + len;
        const char *nl = memchr(body, '\n', (size_t)(end - body));
        if (nl != NULL) {
            body = nl + 1;
            const char *close = memmem(body, (size_t)(end - body), "```", 3);
            if (close != NULL && json_ok(body, (size_t)(close - body)))
                return verdict(0.3);
        }
    }
    return verdict(0.0);
}

/* ---- length, encoding -------------------------------------------------------------------- */

struct qual_check_result qual_score_length(int64_t tokens, double median)
{
    if (!(median > 0) || tokens <= 0)
        return skip();
    double d = fabs(log2((double)tokens / median));
    if (d <= 1.0)
        return verdict(1.0);
    return verdict(1.0 - (d - 1.0) / 2.0);
}

struct qual_check_result qual_score_encoding(const char *out, size_t len)
{
    if (out == NULL || len == 0)
        return skip();
    const unsigned char *s = (const unsigned char *)out;
    len = scan_len(len);
    size_t i = 0, chars = 0, bad = 0;
    bool invalid = false;
    while (i < len) {
        uint32_t cp;
        if (!qual__utf8_next(s, len, &i, &cp)) {
            /* A sequence cut by the scan limit is not the text's fault. */
            if (len == QUAL_MAX_SCAN_BYTES && len - i < 4 && s[i - 1] >= 0xC0)
                break;
            invalid = true;
        }
        chars++;
        if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || (cp >= 0x7F && cp <= 0x9F) ||
            cp == 0xFFFD)
            bad++;
    }
    double score = 1.0 - 10.0 * (double)bad / (double)(chars ? chars : 1);
    if (invalid && score > 0.4)
        score = 0.4;
    return verdict(score);
}

/* ---- composite ------------------------------------------------------------------------- */

static int64_t estimate_tokens(const struct qual_input *in)
{
    if (in->output_tokens >= 0)
        return in->output_tokens;
    if (in->output == NULL || in->output_len == 0)
        return 0;
    return (int64_t)((in->output_len + 3) / 4);
}

void qual_score_all(const struct qual_config *c, const struct qual_input *in, double median_tokens,
                    struct qual_scores *out)
{
    memset(out, 0, sizeof(*out));
    out->output_tokens = estimate_tokens(in);
    for (int k = 0; k < QUAL_CHECK_COUNT; k++)
        out->checks[k] = skip();
    out->composite = 1.0;
    if (!in->is_scorable)
        return;
    const char *o = in->output;
    size_t n = o ? in->output_len : 0;
    struct qual_check_result *r = out->checks;
    r[QUAL_CHECK_EMPTY] = qual_score_empty(o, n);
    bool empty = r[QUAL_CHECK_EMPTY].result == QUAL_FAIL;
    bool tool_only =
        empty && (in->has_tool_calls ||
                  (in->finish_reason != NULL && strcmp(in->finish_reason, "tool_calls") == 0));
    r[QUAL_CHECK_TRUNCATION] = qual_score_truncation(in->finish_reason, o, n);
    r[QUAL_CHECK_JSON] = qual_score_json(in->wants_json, o, n);
    if (tool_only) {
        r[QUAL_CHECK_EMPTY] = skip();
        r[QUAL_CHECK_JSON] = skip();
    }
    if (!empty) {
        r[QUAL_CHECK_REPETITION] = qual_score_repetition(o, n);
        r[QUAL_CHECK_REFUSAL] = qual_score_refusal(o, n);
        r[QUAL_CHECK_LANGUAGE] = qual_score_language(in->prompt, in->prompt_len, o, n);
        r[QUAL_CHECK_LENGTH] = qual_score_length(out->output_tokens, median_tokens);
        r[QUAL_CHECK_ENCODING] = qual_score_encoding(o, n);
    }
    double composite = 1.0;
    for (int k = 0; k < QUAL_CHECK_COUNT; k++) {
        if (r[k].result == QUAL_SKIP)
            continue;
        if (r[k].result == QUAL_FAIL)
            out->failed_mask |= 1u << k;
        composite *= 1.0 - c->weights[k] * (1.0 - r[k].score);
    }
    out->composite = composite < 0 ? 0 : composite;
}

int qual_scores_json(const struct qual_scores *s, struct hs_buf *out)
{
    char num[32];
    hs_format_double(round(s->composite * 1000) / 1000, num, sizeof(num));
    int rc = hs_buf_printf(out, "{\"score\":%s,\"failed\":[", num);
    bool first = true;
    for (int k = 0; rc == HS_OK && k < QUAL_CHECK_COUNT; k++) {
        if (!(s->failed_mask & (1u << k)))
            continue;
        rc = hs_buf_printf(out, "%s\"%s\"", first ? "" : ",", check_names[k]);
        first = false;
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "],\"checks\":{");
    first = true;
    for (int k = 0; rc == HS_OK && k < QUAL_CHECK_COUNT; k++) {
        if (s->checks[k].result == QUAL_SKIP)
            continue;
        hs_format_double(round(s->checks[k].score * 1000) / 1000, num, sizeof(num));
        rc = hs_buf_printf(out, "%s\"%s\":%s", first ? "" : ",", check_names[k], num);
        first = false;
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "}}");
    return rc;
}
