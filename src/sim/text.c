/*
 * text.c - the words the simulated models answer with: plausible English,
 * deterministic from a per-request seed, one word (with its leading space)
 * or one punctuation mark per token, so token counts and text agree.
 * Quality faults give repetitive text (one short phrase over and over),
 * empty answers, or the refusal sentence.
 */
#include "sim/internal.h"

#include <string.h>

static const char *const words[] = {
    "the",       "model",   "answer",   "data",     "system",    "request", "a",        "an",
    "of",        "to",      "in",       "and",      "for",       "with",    "is",       "are",
    "can",       "will",    "should",   "this",     "that",      "each",    "every",    "server",
    "latency",   "token",   "batch",    "memory",   "cache",     "result",  "value",    "time",
    "first",     "next",    "simple",   "clear",    "useful",    "small",   "large",    "fast",
    "stable",    "careful", "approach", "question", "example",   "process", "step",     "method",
    "function",  "user",    "service",  "network",  "queue",     "record",  "metric",   "signal",
    "important", "common",  "typical",  "possible", "different", "similar", "better",   "explains",
    "shows",     "returns", "uses",     "keeps",    "needs",     "makes",   "measures", "describes",
    "improves",  "reduces", "handles",  "follows",  "starts",    "when",    "because",  "while",
    "after",     "before",  "often",    "usually",  "here",      "there",   "also",     "then",
    "only",      "most",    "many",
};

static const char *const refusal[] = {"I'm",    " sorry", ",",     " but",  " I",
                                      " can't", " help",  " with", " that", "."};

static const char *const repeat[] = {" I", " think", " the", " answer", " is"};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static size_t put(char *out, size_t len, const char *a, const char *b)
{
    if (len == 0)
        return 0;
    size_t la = strlen(a), lb = b ? strlen(b) : 0;
    if (la + lb + 1 > len)
        la = lb = 0;
    memcpy(out, a, la);
    if (lb)
        memcpy(out + la, b, lb);
    out[la + lb] = '\0';
    return la + lb;
}

/* Sentence layout: token i is the k-th of a sentence of 6..17 tokens, the
 * last of which is a period. */
static void locate(uint64_t seed, int i, int *k, int *len, int *start)
{
    int s = 0, pos = 0;
    for (;;) {
        int n = 6 + (int)(mix(seed + 0x9e37u * (uint64_t)(s + 1)) % 12);
        if (i < pos + n) {
            *k = i - pos;
            *len = n;
            *start = pos;
            return;
        }
        pos += n;
        s++;
    }
}

size_t sim_text_token(uint64_t req_seed, int quality, int i, char *out, size_t out_len)
{
    if (i < 0 || quality == SIM_TEXT_EMPTY)
        return put(out, out_len, "", NULL);
    if (quality == SIM_TEXT_REFUSAL)
        return put(out, out_len, i < (int)HS_ARRAY_LEN(refusal) ? refusal[i] : "", NULL);
    if (quality == SIM_TEXT_REPETITIVE)
        return put(out, out_len, repeat[i % (int)HS_ARRAY_LEN(repeat)], NULL);
    int k, n, start;
    locate(req_seed, i, &k, &n, &start);
    if (k == n - 1)
        return put(out, out_len, ".", NULL);
    const char *w =
        words[mix(req_seed ^ (uint64_t)i * 0x2545f4914f6cdd1dull) % HS_ARRAY_LEN(words)];
    if (k == 0) {
        char cap[32];
        size_t l = put(cap, sizeof(cap), w, NULL);
        if (l > 0 && cap[0] >= 'a' && cap[0] <= 'z')
            cap[0] = (char)(cap[0] - 'a' + 'A');
        return put(out, out_len, i == 0 ? "" : " ", cap);
    }
    return put(out, out_len, " ", w);
}
