/*
 * loadgen_stats.c - the load generator's numbers: a seeded random source,
 * bounded sample sets with exact quantiles (a uniform reservoir past the
 * ceiling), and the report in JSON, text and as a one-line progress
 * summary.
 *
 * Quantiles use linear interpolation between closest ranks, numpy's
 * default, so a report can be checked against any list of the same
 * observations.
 */
#include "sim/loadgen.h"

#include "sim/loadgen_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- random numbers ------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void lg__rng_seed(struct lg_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t lg__rng_next(struct lg_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double lg__rng_unit(struct lg_rng *r)
{
    return (double)(lg__rng_next(r) >> 11) * 0x1.0p-53;
}

int64_t lg__rng_range(struct lg_rng *r, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    uint64_t span = (uint64_t)(hi - lo) + 1;
    return lo + (int64_t)(lg__rng_next(r) % span);
}

double lg__rng_exp(struct lg_rng *r, double rate)
{
    double u = lg__rng_unit(r);
    return -log1p(-u) / rate; /* u < 1, so the log is finite */
}

/* ---- sample sets ------------------------------------------------------------ */

void lg__samples_init(struct lg_samples *s, size_t cap, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    s->cap = cap ? cap : 1;
    lg__rng_seed(&s->rng, seed);
}

void lg__samples_cleanup(struct lg_samples *s)
{
    hs_free(s->v);
    s->v = NULL;
    s->n = s->alloc = 0;
}

static bool samples_grow(struct lg_samples *s)
{
    size_t want = s->alloc ? s->alloc * 2 : 256;
    if (want > s->cap)
        want = s->cap;
    double *nv = hs_reallocarray(s->v, want, sizeof *nv);
    if (!nv)
        return false;
    s->v = nv;
    s->alloc = want;
    return true;
}

void lg__samples_add(struct lg_samples *s, double x)
{
    if (s->count == 0 || x < s->min)
        s->min = x;
    if (s->count == 0 || x > s->max)
        s->max = x;
    s->count++;
    s->sum += x;
    if (s->n < s->cap && (s->n < s->alloc || samples_grow(s))) {
        s->v[s->n++] = x;
        return;
    }
    if (s->n == 0)
        return; /* nothing kept and no memory: counters only */
    /* Algorithm R: keep the new observation with probability n / count. */
    uint64_t j = lg__rng_next(&s->rng) % s->count;
    if (j < s->n)
        s->v[j] = x;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double lg__quantile_sorted(const double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    if (q <= 0)
        return v[0];
    if (q >= 1)
        return v[n - 1];
    double h = q * (double)(n - 1);
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= n)
        return v[n - 1];
    return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

int lg__samples_dist(const struct lg_samples *s, struct loadgen_dist *d)
{
    memset(d, 0, sizeof *d);
    d->count = s->count;
    if (s->count == 0)
        return HS_OK;
    d->mean = s->sum / (double)s->count;
    d->min = s->min;
    d->max = s->max;
    d->is_sampled = s->count > s->n;
    if (s->n == 0)
        return HS_OK;
    double *c = hs_reallocarray(NULL, s->n, sizeof *c);
    if (!c)
        return HS_ENOMEM;
    memcpy(c, s->v, s->n * sizeof *c);
    qsort(c, s->n, sizeof *c, cmp_double);
    d->p50 = lg__quantile_sorted(c, s->n, 0.50);
    d->p90 = lg__quantile_sorted(c, s->n, 0.90);
    d->p95 = lg__quantile_sorted(c, s->n, 0.95);
    d->p99 = lg__quantile_sorted(c, s->n, 0.99);
    hs_free(c);
    return HS_OK;
}

/* ---- outcomes ------------------------------------------------------------------ */

static const char *const outcome_names[LOADGEN_OUTCOME_COUNT] = {
    [LOADGEN_OK] = "ok",
    [LOADGEN_CONNECT] = "connect",
    [LOADGEN_TIMEOUT] = "timeout",
    [LOADGEN_HTTP_4XX] = "http_4xx",
    [LOADGEN_HTTP_5XX] = "http_5xx",
    [LOADGEN_ERROR_MIDSTREAM] = "error_midstream",
    [LOADGEN_STREAM_TRUNCATED] = "stream_truncated",
    [LOADGEN_MALFORMED] = "malformed",
    [LOADGEN_CANCELLED] = "cancelled",
};

const char *loadgen_outcome_name(int outcome)
{
    if (outcome < 0 || outcome >= LOADGEN_OUTCOME_COUNT)
        return "unknown";
    return outcome_names[outcome];
}

/* ---- JSON ------------------------------------------------------------------------ */

static int put_num(struct hs_buf *out, double v)
{
    char tmp[32];
    if (!isfinite(v))
        return hs_buf_puts(out, "null");
    hs_format_double(v, tmp, sizeof tmp);
    return hs_buf_puts(out, tmp);
}

static int put_key_num(struct hs_buf *out, const char *key, double v)
{
    int rc = hs_buf_printf(out, "\"%s\":", key);
    if (rc == HS_OK)
        rc = put_num(out, v);
    return rc;
}

static int put_dist_json(struct hs_buf *out, const char *key, const struct loadgen_dist *d)
{
    int rc = hs_buf_printf(out, "\"%s\":{\"count\":%llu,", key, (unsigned long long)d->count);
    const char *names[] = {"mean", "min", "max", "p50", "p90", "p95", "p99"};
    const double vals[] = {d->mean, d->min, d->max, d->p50, d->p90, d->p95, d->p99};
    for (size_t i = 0; rc == HS_OK && i < HS_ARRAY_LEN(names); i++) {
        rc = put_key_num(out, names[i], vals[i]);
        if (rc == HS_OK)
            rc = hs_buf_putc(out, ',');
    }
    if (rc == HS_OK)
        rc = hs_buf_printf(out, "\"sampled\":%s}", d->is_sampled ? "true" : "false");
    return rc;
}

static int put_u64(struct hs_buf *out, const char *key, uint64_t v)
{
    return hs_buf_printf(out, "\"%s\":%llu,", key, (unsigned long long)v);
}

static int put_counts_json(const struct loadgen_report *r, struct hs_buf *out)
{
    int rc = put_u64(out, "sent", r->sent);
    if (rc == HS_OK)
        rc = put_u64(out, "finished", r->finished);
    if (rc == HS_OK)
        rc = put_u64(out, "in_flight", r->in_flight);
    if (rc == HS_OK)
        rc = put_u64(out, "backlog", r->backlog);
    if (rc == HS_OK)
        rc = put_u64(out, "dropped", r->dropped);
    if (rc == HS_OK)
        rc = put_u64(out, "errors", r->errors);
    if (rc == HS_OK)
        rc = put_u64(out, "good", r->good);
    if (rc == HS_OK)
        rc = put_u64(out, "input_tokens", r->input_tokens);
    if (rc == HS_OK)
        rc = put_u64(out, "output_tokens", r->output_tokens);
    if (rc == HS_OK)
        rc = put_u64(out, "output_tokens_estimated", r->output_tokens_estimated);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "\"outcomes\":{");
    for (int i = 0; rc == HS_OK && i < LOADGEN_OUTCOME_COUNT; i++)
        rc = hs_buf_printf(out, "%s\"%s\":%llu", i ? "," : "", loadgen_outcome_name(i),
                           (unsigned long long)r->outcomes[i]);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "},");
    return rc;
}

static int put_rates_json(const struct loadgen_report *r, struct hs_buf *out)
{
    const char *names[] = {"elapsed_s",
                           "rate",
                           "request_throughput",
                           "output_token_throughput",
                           "total_token_throughput",
                           "goodput",
                           "slo_ttft_s",
                           "slo_tpot_s",
                           "slo_e2e_s"};
    const double vals[] = {r->elapsed_s,
                           r->rate,
                           r->request_throughput,
                           r->output_token_throughput,
                           r->total_token_throughput,
                           r->goodput,
                           r->slo_ttft_s,
                           r->slo_tpot_s,
                           r->slo_e2e_s};
    int rc = HS_OK;
    for (size_t i = 0; rc == HS_OK && i < HS_ARRAY_LEN(names); i++) {
        rc = put_key_num(out, names[i], vals[i]);
        if (rc == HS_OK)
            rc = hs_buf_putc(out, ',');
    }
    return rc;
}

int loadgen_report_json(const struct loadgen_report *r, struct hs_buf *out)
{
    int rc =
        hs_buf_printf(out, "{\"is_done\":%s,\"stream\":%s,\"open_loop\":%s,\"concurrency\":%d,",
                      r->is_done ? "true" : "false", r->is_stream ? "true" : "false",
                      r->is_open_loop ? "true" : "false", r->concurrency);
    if (rc == HS_OK)
        rc = put_rates_json(r, out);
    if (rc == HS_OK)
        rc = put_counts_json(r, out);
    if (rc == HS_OK)
        rc = put_dist_json(out, "ttft", &r->ttft);
    if (rc == HS_OK)
        rc = hs_buf_putc(out, ',');
    if (rc == HS_OK)
        rc = put_dist_json(out, "itl", &r->itl);
    if (rc == HS_OK)
        rc = hs_buf_putc(out, ',');
    if (rc == HS_OK)
        rc = put_dist_json(out, "tpot", &r->tpot);
    if (rc == HS_OK)
        rc = hs_buf_putc(out, ',');
    if (rc == HS_OK)
        rc = put_dist_json(out, "e2e", &r->e2e);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, ",\"last_error\":");
    if (rc == HS_OK)
        rc = hs_buf_json_str(out, r->last_error, strlen(r->last_error));
    if (rc == HS_OK)
        rc = hs_buf_puts(out, "}");
    return rc;
}

/* ---- text ------------------------------------------------------------------------- */

static int put_dist_text(struct hs_buf *out, const char *name, const struct loadgen_dist *d)
{
    if (d->count == 0)
        return hs_buf_printf(out, "%-6s %10s\n", name, "-");
    return hs_buf_printf(out, "%-6s %10.2f %10.2f %10.2f %10.2f %10.2f %10.2f %10llu%s\n", name,
                         d->mean * 1e3, d->p50 * 1e3, d->p90 * 1e3, d->p99 * 1e3, d->min * 1e3,
                         d->max * 1e3, (unsigned long long)d->count,
                         d->is_sampled ? " (sampled)" : "");
}

static int put_slo_text(const struct loadgen_report *r, struct hs_buf *out)
{
    if (r->slo_ttft_s <= 0 && r->slo_tpot_s <= 0 && r->slo_e2e_s <= 0)
        return hs_buf_printf(out, "%-28s %.2f req/s (no SLO set: every ok request)\n",
                             "Goodput:", r->goodput);
    int rc = hs_buf_printf(out, "%-28s %.2f req/s (%llu good of %llu finished; SLO",
                           "Goodput:", r->goodput, (unsigned long long)r->good,
                           (unsigned long long)r->finished);
    if (rc == HS_OK && r->slo_ttft_s > 0)
        rc = hs_buf_printf(out, " ttft<=%gms", r->slo_ttft_s * 1e3);
    if (rc == HS_OK && r->slo_tpot_s > 0)
        rc = hs_buf_printf(out, " tpot<=%gms", r->slo_tpot_s * 1e3);
    if (rc == HS_OK && r->slo_e2e_s > 0)
        rc = hs_buf_printf(out, " e2e<=%gms", r->slo_e2e_s * 1e3);
    if (rc == HS_OK)
        rc = hs_buf_puts(out, ")\n");
    return rc;
}

static int put_outcomes_text(const struct loadgen_report *r, struct hs_buf *out)
{
    int rc = hs_buf_printf(out, "%-28s %llu", "Errors:", (unsigned long long)r->errors);
    bool any = false;
    for (int i = 1; rc == HS_OK && i < LOADGEN_OUTCOME_COUNT; i++) {
        if (r->outcomes[i] == 0)
            continue;
        rc = hs_buf_printf(out, "%s%s=%llu", any ? " " : " (", loadgen_outcome_name(i),
                           (unsigned long long)r->outcomes[i]);
        any = true;
    }
    if (rc == HS_OK)
        rc = hs_buf_puts(out, any ? ")\n" : "\n");
    if (rc == HS_OK && r->last_error[0])
        rc = hs_buf_printf(out, "%-28s %s\n", "Last error:", r->last_error);
    return rc;
}

int loadgen_report_text(const struct loadgen_report *r, struct hs_buf *out)
{
    int rc =
        hs_buf_printf(out,
                      "%-28s %s, %s\n"
                      "%-28s %.3f s\n"
                      "%-28s %llu sent, %llu finished, %llu ok\n",
                      "Mode:", r->is_open_loop ? "open loop (Poisson)" : "closed loop",
                      r->is_stream ? "streaming" : "non-streaming", "Duration:", r->elapsed_s,
                      "Requests:", (unsigned long long)r->sent, (unsigned long long)r->finished,
                      (unsigned long long)r->outcomes[LOADGEN_OK]);
    if (rc == HS_OK && r->dropped)
        rc =
            hs_buf_printf(out, "%-28s %llu\n", "Dropped arrivals:", (unsigned long long)r->dropped);
    if (rc == HS_OK)
        rc = put_outcomes_text(r, out);
    if (rc == HS_OK)
        rc = hs_buf_printf(out,
                           "%-28s %.2f req/s\n"
                           "%-28s %.2f tok/s\n"
                           "%-28s %.2f tok/s\n"
                           "%-28s %llu in, %llu out%s\n",
                           "Request throughput:", r->request_throughput,
                           "Output token throughput:", r->output_token_throughput,
                           "Total token throughput:", r->total_token_throughput,
                           "Tokens:", (unsigned long long)r->input_tokens,
                           (unsigned long long)r->output_tokens,
                           r->output_tokens_estimated ? " (partly counted from events)" : "");
    if (rc == HS_OK)
        rc = put_slo_text(r, out);
    if (rc == HS_OK)
        rc = hs_buf_printf(out, "\n%-6s %10s %10s %10s %10s %10s %10s %10s\n", "(ms)", "mean",
                           "p50", "p90", "p99", "min", "max", "count");
    if (rc == HS_OK)
        rc = put_dist_text(out, "TTFT", &r->ttft);
    if (rc == HS_OK)
        rc = put_dist_text(out, "TPOT", &r->tpot);
    if (rc == HS_OK)
        rc = put_dist_text(out, "ITL", &r->itl);
    if (rc == HS_OK)
        rc = put_dist_text(out, "E2E", &r->e2e);
    return rc;
}

int loadgen_report_progress(const struct loadgen_report *r, struct hs_buf *out)
{
    int rc = hs_buf_printf(
        out, "%6.1fs  sent %llu  done %llu  in-flight %llu  errors %llu  %.1f req/s", r->elapsed_s,
        (unsigned long long)r->sent, (unsigned long long)r->finished,
        (unsigned long long)r->in_flight, (unsigned long long)r->errors, r->request_throughput);
    if (rc == HS_OK && r->ttft.count)
        rc = hs_buf_printf(out, "  ttft p50 %.0fms", r->ttft.p50 * 1e3);
    if (rc == HS_OK && r->e2e.count)
        rc = hs_buf_printf(out, "  e2e p50 %.0fms", r->e2e.p50 * 1e3);
    return rc;
}
