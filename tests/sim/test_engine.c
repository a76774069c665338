/*
 * test_engine.c - the discrete-event engine model on a virtual clock:
 * queueing sanity (Little's law, TTFT against arrival rate), KV pressure
 * and preemption, max_tokens truncation, aborts, faults, determinism and
 * the /metrics formats.  No sockets, no wall time.
 */
#include "hs_test.h"

#include "sim/sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct run {
    int finished, stopped, truncated, aborted;
    double sum_time_in_system_s; /* over finished requests */
    double sum_ttft_s;
    int ttft_n;
    int tokens_seen;
    int64_t last_token_us;
    bool tokens_after_finish;
};

static void on_event(void *arg, int event, const struct sim_request_info *info)
{
    struct run *r = arg;
    if (event == SIM_EVENT_TOKEN) {
        r->tokens_seen++;
        if (info->output_tokens == 1) {
            r->sum_ttft_s += (double)(info->first_token_us - info->arrival_us) * 1e-6;
            r->ttft_n++;
        }
        return;
    }
    r->finished++;
    r->sum_time_in_system_s += (double)(info->now_us - info->arrival_us) * 1e-6;
    if (info->finish_reason == SIM_FINISH_STOP)
        r->stopped++;
    else if (info->finish_reason == SIM_FINISH_LENGTH)
        r->truncated++;
    else
        r->aborted++;
}

struct load {
    double rate_per_s;
    double duration_s;
    int max_tokens; /* 0 = default */
    uint64_t seed;
};

/* Runs Poisson arrivals, sampling the number of requests in the system every
 * 50 ms of virtual time; drains afterwards.  Returns the time-average number
 * in system over the arrival window. */
static double drive(struct sim_engine *e, const struct load *l, struct run *r)
{
    /* arrival times from their own generator, so the engine's draws do not
     * change the arrival process between engines */
    uint64_t s = l->seed * 2654435761u + 1;
    int64_t t = 0, next_sample = 0, end = (int64_t)(l->duration_s * 1e6);
    double area = 0;
    int samples = 0;
    for (;;) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(s >> 11) / 9007199254740992.0;
        t += (int64_t)(-log1p(-u) / l->rate_per_s * 1e6);
        while (next_sample <= t && next_sample < end) {
            sim_engine_run_until(e, next_sample);
            struct sim_engine_stats st;
            sim_engine_get_stats(e, &st);
            area += st.running + st.waiting;
            samples++;
            next_sample += 50000;
        }
        if (t >= end)
            break;
        sim_engine_run_until(e, t);
        struct sim_request_params p = {0, l->max_tokens, 0};
        struct hs_err err;
        assert_int_equal(sim_engine_submit(e, &p, t, on_event, r, NULL, &err), HS_OK);
    }
    sim_engine_run_until(e, end + (int64_t)3600e6);
    return samples ? area / samples : 0;
}

static struct sim_engine *engine(const struct sim_engine_config *c, uint64_t seed)
{
    struct hs_err err;
    struct sim_engine *e = sim_engine_new(c, seed, 1.0, &err);
    if (!e)
        fail_msg("sim_engine_new: %s", err.msg);
    return e;
}

static void littles_law_holds_within_tolerance(void **state)
{
    struct sim_engine_config c;
    sim_engine_config_defaults(&c);
    struct sim_engine *e = engine(&c, 7);
    struct run r = {0};
    struct load l = {.rate_per_s = 8, .duration_s = 600, .seed = 3};
    double L = drive(e, &l, &r);
    assert_true(r.finished > 3000);
    double lambda = r.finished / l.duration_s;
    double W = r.sum_time_in_system_s / r.finished;
    double rel = fabs(L - lambda * W) / (lambda * W);
    printf("# L=%.3f lambda=%.3f W=%.3f lambda*W=%.3f rel=%.4f\n", L, lambda, W, lambda * W, rel);
    assert_true(rel < 0.05);
    sim_engine_free(e);
}

static double mean_ttft_at(double rate)
{
    struct sim_engine_config c;
    sim_engine_config_defaults(&c);
    c.max_num_seqs = 32; /* a small batch makes the queue grow well before the KV pool fills */
    struct sim_engine *e = engine(&c, 11);
    struct run r = {0};
    struct load l = {.rate_per_s = rate, .duration_s = 300, .seed = 5};
    drive(e, &l, &r);
    sim_engine_free(e);
    assert_true(r.ttft_n > 0);
    return r.sum_ttft_s / r.ttft_n;
}

static void ttft_rises_with_arrival_rate(void **state)
{
    double a = mean_ttft_at(2), b = mean_ttft_at(10), c = mean_ttft_at(20);
    printf("# mean TTFT at 2/s %.4f s, 10/s %.4f s, 20/s %.4f s\n", a, b, c);
    assert_true(a < b);
    assert_true(b < c);
    assert_true(c > 2 * a);
}

static uint64_t preemptions_with_blocks(int kv_blocks, double rate)
{
    struct sim_engine_config c;
    sim_engine_config_defaults(&c);
    c.kv_blocks = kv_blocks;
    struct sim_engine *e = engine(&c, 13);
    struct run r = {0};
    struct load l = {.rate_per_s = rate, .duration_s = 120, .seed = 9};
    drive(e, &l, &r);
    struct sim_engine_stats st;
    sim_engine_get_stats(e, &st);
    assert_int_equal(st.running, 0);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(st.kv_blocks_used, 0);
    assert_int_equal(r.finished, r.stopped + r.truncated);
    sim_engine_free(e);
    return st.preemptions;
}

static void preemptions_appear_only_under_kv_pressure(void **state)
{
    /* the same heavy load: a large pool never preempts, a small one does */
    uint64_t roomy = preemptions_with_blocks(65536, 12);
    uint64_t tight = preemptions_with_blocks(600, 12);
    printf("# preemptions: 65536 blocks %llu, 600 blocks %llu\n", (unsigned long long)roomy,
           (unsigned long long)tight);
    assert_int_equal(roomy, 0);
    assert_true(tight > 0);
    /* and a light load on the small pool stays below it */
    assert_int_equal(preemptions_with_blocks(600, 0.2), 0);
}

static void kv_shrink_fault_causes_preemptions_and_slower_ttft(void **state)
{
    struct sim_engine_config c;
    sim_engine_config_defaults(&c);
    c.kv_blocks = 4000;
    struct sim_engine *a = engine(&c, 21), *b = engine(&c, 21);
    struct sim_engine_faults f = {.step_time_factor = 1, .kv_fraction = 0.15};
    sim_engine_set_faults(b, &f);
    struct run ra = {0}, rb = {0};
    struct load l = {.rate_per_s = 10, .duration_s = 120, .seed = 4};
    drive(a, &l, &ra);
    drive(b, &l, &rb);
    struct sim_engine_stats sa, sb;
    sim_engine_get_stats(a, &sa);
    sim_engine_get_stats(b, &sb);
    assert_int_equal(sa.preemptions, 0);
    assert_true(sb.preemptions > 0);
    assert_int_equal(sb.kv_blocks_total, 600);
    assert_true(rb.sum_ttft_s / rb.ttft_n > ra.sum_ttft_s / ra.ttft_n);
    sim_engine_free(a);
    sim_engine_free(b);
}

static void throttle_fault_multiplies_step_time(void **state)
{
    struct sim_engine_config c;
    sim_engine_config_defaults(&c);
    struct sim_engine *a = engine(&c, 1), *b = engine(&c, 1);
    struct sim_engine_faults f = {.step_time_factor = 2, .kv_fraction = 1};
    sim_engine_set_faults(b, &f);
    struct run ra = {0}, rb = {0};
    struct sim_request_params p = {100, 50, 50};
    assert_int_equal(sim_engine_submit(a, &p, 0, on_event, &ra, NULL, NULL), HS_OK);
    assert_int_equal(sim_engine_submit(b, &p, 0, on_event, &rb, NULL, NULL), HS_OK);
    sim_engine_run_until(a, 100000000);
    sim_engine_run_until(b, 100000000);
    struct sim_engine_stats sa, sb;
    sim_engine_get_stats(a, &sa);
    sim_engine_get_stats(b, &sb);
    assert_int_equal(sa.steps, 50);
    assert_int_equal(sb.steps, 50);
    assert_true(llabs(sb.busy_us - 2 * sa.busy_us) <= 50);
    sim_engine_free(a);
    sim_engine_free(b);
}

static void max_tokens_truncates_with_finish_reason_length(void **state)
{
    struct sim_engine_config c;
    sim_engine_config_defaults(&c);
    struct sim_engine *e = engine(&c, 1);
    struct run r = {0};
    struct sim_request_params longer = {20, 10, 500}, shorter = {20, 100, 30};
    assert_int_equal(sim_engine_submit(e, &longer, 0, on_event, &r, NULL, NULL), HS_OK);
    assert_int_equal(sim_engine_submit(e, &shorter, 0, on_event, &r, NULL, NULL), HS_OK);
    sim_engine_run_until(e, 60000000);
    assert_int_equal(r.truncated, 1);
    assert_int_equal(r.stopped, 1);
    assert_int_equal(r.tokens_seen, 10 + 30);
    struct sim_engine_stats st;
    sim_engine_get_stats(e, &st);
    assert_int_equal(st.generation_tokens, 40);
    assert_int_equal(st.prompt_tokens, 40);
    assert_int_equal(st.finished[SIM_FINISH_LENGTH], 1);
    sim_engine_free(e);
}

static void truncation_fault_sends_requests_into_max_tokens(void **state)
{
    struct sim_engine_config c;
    sim_engine_config_defaults(&c);
    struct sim_engine *e = engine(&c, 5);
    struct sim_engine_faults f = {.step_time_factor = 1, .kv_fraction = 1, .truncation_ratio = 1};
    sim_engine_set_faults(e, &f);
    struct run r = {0};
    struct load l = {.rate_per_s = 2, .duration_s = 20, .max_tokens = 64, .seed = 2};
    drive(e, &l, &r);
    assert_true(r.finished > 10);
    assert_int_equal(r.truncated, r.finished);
    sim_engine_free(e);
}

static void abort_ends_a_running_request_and_frees_its_blocks(void **state)
{
    struct sim_engine_config c;
    sim_engine_config_defaults(&c);
    struct sim_engine *e = engine(&c, 1);
    struct run r = {0};
    uint64_t id = 0;
    struct sim_request_params p = {200, 1000, 1000};
    assert_int_equal(sim_engine_submit(e, &p, 0, on_event, &r, &id, NULL), HS_OK);
    sim_engine_run_until(e, 200000);
    struct sim_engine_stats st;
    sim_engine_get_stats(e, &st);
    assert_int_equal(st.running, 1);
    assert_true(st.kv_blocks_used > 0);
    /* a step is under way: the abort lands when it ends */
    sim_engine_abort(e, id, 200000);
    sim_engine_run_until(e, 300000);
    sim_engine_get_stats(e, &st);
    assert_int_equal(r.aborted, 1);
    assert_int_equal(st.running, 0);
    assert_int_equal(st.kv_blocks_used, 0);
    sim_engine_abort(e, id, 300000); /* unknown now: ignored */
    assert_int_equal(r.aborted, 1);
    sim_engine_free(e);
}

static void oversized_prompt_is_refused_with_the_limits_named(void **state)
{
    struct sim_engine_config c;
    sim_engine_config_defaults(&c);
    struct sim_engine *e = engine(&c, 1);
    struct run r = {0};
    struct hs_err err;
    struct sim_request_params p = {9000, 10, 10};
    assert_int_equal(sim_engine_submit(e, &p, 0, on_event, &r, NULL, &err), HS_EINVAL);
    assert_non_null(strstr(err.msg, "9000"));
    assert_non_null(strstr(err.msg, "8192"));
    sim_engine_free(e);
}

static void engine_new_rejects_a_bad_config(void **state)
{
    struct sim_engine_config c;
    sim_engine_config_defaults(&c);
    c.max_num_seqs = 0;
    struct hs_err err;
    assert_null(sim_engine_new(&c, 1, 1.0, &err));
    assert_non_null(strstr(err.msg, "max_num_seqs"));
    sim_engine_config_defaults(&c);
    assert_null(sim_engine_new(&c, 1, 0.0, &err));
}

static void same_seed_gives_the_same_run(void **state)
{
    struct sim_engine_config c;
    sim_engine_config_defaults(&c);
    struct sim_engine_stats s[2];
    struct run r[2] = {{0}, {0}};
    for (int i = 0; i < 2; i++) {
        struct sim_engine *e = engine(&c, 99);
        struct load l = {.rate_per_s = 5, .duration_s = 60, .seed = 8};
        drive(e, &l, &r[i]);
        sim_engine_get_stats(e, &s[i]);
        sim_engine_free(e);
    }
    assert_int_equal(s[0].generation_tokens, s[1].generation_tokens);
    assert_int_equal(s[0].busy_us, s[1].busy_us);
    assert_true(r[0].sum_ttft_s == r[1].sum_ttft_s);
}

static void speed_divides_step_times(void **state)
{
    struct sim_engine_config c;
    sim_engine_config_defaults(&c);
    struct hs_err err;
    struct sim_engine *a = sim_engine_new(&c, 1, 1.0, &err), *b = sim_engine_new(&c, 1, 4.0, &err);
    struct run ra = {0}, rb = {0};
    struct sim_request_params p = {100, 40, 40};
    assert_int_equal(sim_engine_submit(a, &p, 0, on_event, &ra, NULL, NULL), HS_OK);
    assert_int_equal(sim_engine_submit(b, &p, 0, on_event, &rb, NULL, NULL), HS_OK);
    sim_engine_run_until(a, 100000000);
    sim_engine_run_until(b, 100000000);
    struct sim_engine_stats sa, sb;
    sim_engine_get_stats(a, &sa);
    sim_engine_get_stats(b, &sb);
    assert_true(llabs(sa.busy_us - 4 * sb.busy_us) <= 200);
    sim_engine_free(a);
    sim_engine_free(b);
}

static char *metrics_of(enum sim_kind kind)
{
    struct sim_engine_config c;
    sim_engine_config_defaults(&c);
    c.kind = kind;
    c.model = "org/model \"quoted\"";
    struct sim_engine *e = engine(&c, 3);
    struct run r = {0};
    struct load l = {.rate_per_s = 4, .duration_s = 10, .seed = 1};
    drive(e, &l, &r);
    struct hs_buf b;
    hs_buf_init(&b, 0);
    assert_int_equal(sim_engine_metrics(e, &b), HS_OK);
    sim_engine_free(e);
    return hs_buf_detach(&b, NULL);
}

static void vllm_metrics_carry_the_v1_families_and_labels(void **state)
{
    char *m = metrics_of(SIM_VLLM);
    assert_non_null(strstr(m, "# TYPE vllm:num_requests_running gauge\n"));
    assert_non_null(strstr(m, "# TYPE vllm:kv_cache_usage_perc gauge\n"));
    assert_non_null(strstr(m, "# TYPE vllm:time_to_first_token_seconds histogram\n"));
    assert_non_null(strstr(m, "vllm:num_requests_running{engine=\"0\","
                              "model_name=\"org/model \\\"quoted\\\"\"} 0.0\n"));
    assert_non_null(strstr(m, "finished_reason=\"length\""));
    assert_non_null(strstr(m, "vllm:time_to_first_token_seconds_bucket{engine=\"0\","));
    assert_non_null(strstr(m, "le=\"+Inf\",model_name=\"org/model \\\"quoted\\\"\"} "));
    assert_null(strstr(m, "sglang:"));
    hs_free(m);
}

static void sglang_metrics_carry_the_scheduler_and_tokenizer_families(void **state)
{
    char *m = metrics_of(SIM_SGLANG);
    assert_non_null(strstr(m, "# TYPE sglang:num_running_reqs gauge\n"));
    assert_non_null(strstr(m, "# TYPE sglang:token_usage gauge\n"));
    assert_non_null(strstr(m, "# TYPE sglang:inter_token_latency_seconds histogram\n"));
    assert_non_null(strstr(m, "sglang:num_queue_reqs{engine_type=\"unified\",model_name="
                              "\"org/model \\\"quoted\\\"\",pp_rank=\"0\",tp_rank=\"0\"} 0.0\n"));
    assert_non_null(strstr(
        m, "sglang:queue_time_seconds_bucket{engine_type=\"unified\",le=\"0.0\",model_name="));
    assert_null(strstr(m, "vllm:"));
    hs_free(m);
}

static void text_is_deterministic_and_reads_as_sentences(void **state)
{
    char a[32], b[32], all[4096] = "";
    for (int i = 0; i < 60; i++) {
        sim_text_token(42, SIM_TEXT_GOOD, i, a, sizeof(a));
        sim_text_token(42, SIM_TEXT_GOOD, i, b, sizeof(b));
        assert_string_equal(a, b);
        assert_true(strlen(all) + strlen(a) < sizeof(all));
        memcpy(all + strlen(all), a, strlen(a) + 1);
    }
    assert_true(all[0] >= 'A' && all[0] <= 'Z');
    assert_non_null(strchr(all, '.'));
    sim_text_token(43, SIM_TEXT_GOOD, 1, b, sizeof(b));
    char refusal[128] = "";
    for (int i = 0; i < 12; i++) {
        sim_text_token(1, SIM_TEXT_REFUSAL, i, a, sizeof(a));
        memcpy(refusal + strlen(refusal), a, strlen(a) + 1);
    }
    assert_string_equal(refusal, "I'm sorry, but I can't help with that.");
    assert_int_equal(sim_text_token(1, SIM_TEXT_EMPTY, 3, a, sizeof(a)), 0);
    sim_text_token(1, SIM_TEXT_REPETITIVE, 0, a, sizeof(a));
    sim_text_token(1, SIM_TEXT_REPETITIVE, 5, b, sizeof(b));
    assert_string_equal(a, b);
}

static void engine_survives_every_allocation_failure(void **state)
{
    struct sim_engine_config c;
    sim_engine_config_defaults(&c);
    c.kv_blocks = 40; /* preemptions requeue, which may allocate */
    for (long n = 0; n < 120; n++) {
        hs_alloc_fail_after(n);
        struct sim_engine *e = sim_engine_new(&c, 1, 1.0, NULL);
        if (!e) {
            hs_alloc_fail_after(-1);
            continue;
        }
        struct run r = {0};
        int accepted = 0;
        for (int i = 0; i < 80; i++) {
            struct sim_request_params p = {50, 40, 40};
            if (sim_engine_submit(e, &p, i * 1000, on_event, &r, NULL, NULL) == HS_OK)
                accepted++;
        }
        sim_engine_run_until(e, 1000000000);
        assert_int_equal(r.finished, accepted);
        struct hs_buf b;
        hs_buf_init(&b, 0);
        HS_IGNORE_RESULT(sim_engine_metrics(e, &b));
        hs_buf_cleanup(&b);
        sim_engine_free(e);
        hs_alloc_fail_after(-1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(littles_law_holds_within_tolerance),
        cmocka_unit_test(ttft_rises_with_arrival_rate),
        cmocka_unit_test(preemptions_appear_only_under_kv_pressure),
        cmocka_unit_test(kv_shrink_fault_causes_preemptions_and_slower_ttft),
        cmocka_unit_test(throttle_fault_multiplies_step_time),
        cmocka_unit_test(max_tokens_truncates_with_finish_reason_length),
        cmocka_unit_test(truncation_fault_sends_requests_into_max_tokens),
        cmocka_unit_test(abort_ends_a_running_request_and_frees_its_blocks),
        cmocka_unit_test(oversized_prompt_is_refused_with_the_limits_named),
        cmocka_unit_test(engine_new_rejects_a_bad_config),
        cmocka_unit_test(same_seed_gives_the_same_run),
        cmocka_unit_test(speed_divides_step_times),
        cmocka_unit_test(vllm_metrics_carry_the_v1_families_and_labels),
        cmocka_unit_test(sglang_metrics_carry_the_scheduler_and_tokenizer_families),
        cmocka_unit_test(text_is_deterministic_and_reads_as_sentences),
        cmocka_unit_test(engine_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
