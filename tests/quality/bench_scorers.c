/*
 * bench_scorers.c - CPU cost of the quality scorers and the tracker (not a
 * test: timings never decide pass/fail).  Build and run from the repo root:
 *
 *   gcc -O2 -D_GNU_SOURCE -Isrc tests/quality/bench_scorers.c src/core/*.c \
 *       src/quality/*.c $(pkg-config --cflags --libs jansson yaml-0.1) \
 *       -lpthread -lm -o /tmp/bench_scorers && /tmp/bench_scorers
 *
 * Text: words of a 640-word vocabulary, so the repetition check sees
 * natural-looking text.  Times are process CPU time per call.
 */
#include "quality/quality.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static char *make_text(size_t n)
{
    static const char *const w[] = {"latency", "model", "server", "tokens", "request", "cache",
                                    "memory",  "the",   "a",      "of",     "batch",   "queue",
                                    "answer",  "grows", "when",   "every"};
    char *s = malloc(n + 1);
    size_t o = 0;
    unsigned x = 1;
    while (o < n) {
        x = x * 1103515245u + 12345u;
        char p[24];
        size_t l = (size_t)snprintf(p, sizeof(p), "%s%u", w[(x >> 16) % 16], (x >> 8) % 40);
        if (o + l + 1 > n)
            break;
        memcpy(s + o, p, l);
        o += l;
        s[o++] = ' ';
    }
    while (o < n)
        s[o++] = '.';
    s[n] = '\0';
    return s;
}

int main(void)
{
    static const size_t sizes[] = {1024, 16384, 65536};
    struct qual_config c;
    qual_config_defaults(&c);
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
        size_t n = sizes[si];
        char *s = make_text(n);
        struct qual_input in;
        qual_input_init(&in);
        in.output = s;
        in.output_len = n;
        in.prompt = "Explain the metric in plain words please.";
        in.prompt_len = strlen(in.prompt);
        in.finish_reason = "stop";
        in.output_tokens = (int64_t)n / 4;
        struct qual_scores sc;
        int iters = (int)(20000000 / n);
        double t0 = cpu_seconds();
        for (int i = 0; i < iters; i++)
            qual_score_all(&c, &in, (double)n / 4, &sc);
        double us = (cpu_seconds() - t0) / iters * 1e6;
        printf("qual_score_all %6zu bytes: %8.2f us/record %6.2f us/KB (composite %.3f)\n", n, us,
               us / ((double)n / 1024.0), sc.composite);
        free(s);
    }
    struct qual_tracker *t = qual_tracker_new(NULL, NULL);
    struct qual_input in;
    qual_input_init(&in);
    in.model = "m";
    in.output = "A short but reasonable answer about latency.";
    in.output_len = strlen(in.output);
    double t0 = cpu_seconds();
    for (int i = 0; i < 200000; i++) {
        in.output_tokens = 100 + i % 50;
        if (qual_tracker_observe(t, &in, NULL, NULL) != HS_OK)
            return 1;
    }
    printf("qual_tracker_observe (45-byte answer): %.2f us/record\n",
           (cpu_seconds() - t0) / 200000 * 1e6);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    t0 = cpu_seconds();
    for (int i = 0; i < 1000; i++) {
        hs_buf_reset(&b);
        if (qual_tracker_metrics(t, &b) != HS_OK)
            return 1;
    }
    printf("qual_tracker_metrics (1 model, drift on): %.2f us/call, %zu bytes\n",
           (cpu_seconds() - t0) / 1000 * 1e6, b.len);
    hs_buf_cleanup(&b);
    qual_tracker_free(t);
    return 0;
}
