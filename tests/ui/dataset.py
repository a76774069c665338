"""Deterministic 6 h dataset for the dashboard's browser test.

Writes OpenMetrics text with the series the views read: unified engine
series (llm_server_*) for 2 models on 3 instances, 4 GPUs (hw_gpu_*,
hw_power_watts, hw_temperature_celsius, gpu_sm_clock_hertz), host CPU
(node_cpu_seconds_total), the gateway's gen_ai_* histograms, quality
(holoscope_quality_score_mean, holoscope_quality_drift_psi), the cost recording rule and ALERTS.

A fault is injected on model llama-3-8b between FAULT_FROM and FAULT_TO
(seconds before the end): TTFT rises tenfold and ALERTS carries a firing
LLMTimeToFirstTokenHigh for that model over the same period.
"""
import math

STEP = 60
HOURS = 6
FAULT_FROM = 2 * 3600
FAULT_TO = 90 * 60

MODELS = {
    "llama-3-8b": {"backend": "vllm", "instances": ["pod-a:8000", "pod-b:8000"], "rps": 4.0},
    "qwen-7b": {"backend": "sglang", "instances": ["pod-c:8000"], "rps": 2.0},
}
# (instance, gpu index, uuid, model)
GPUS = [("pod-a:8000", "0", "GPU-0a0a0a0a", "llama-3-8b"),
        ("pod-b:8000", "0", "GPU-0b0b0b0b", "llama-3-8b"),
        ("pod-c:8000", "0", "GPU-0c0c0c0c", "qwen-7b"),
        ("pod-c:8000", "1", "GPU-1c1c1c1c", "qwen-7b")]
TTFT_LE = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
ITL_LE = [0.01, 0.025, 0.05, 0.1, 0.2, 0.5]
E2E_LE = [0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0]


def wave(i, period, phase=0.0):
    return 0.5 + 0.5 * math.sin(2 * math.pi * i / period + phase)


def fmt_le(x):
    return repr(float(x))


def in_fault(t, end):
    return end - FAULT_FROM <= t < end - FAULT_TO


class Writer:
    def __init__(self, f):
        self.f = f

    def family(self, name, kind):
        self.f.write("# TYPE %s %s\n" % (name, kind))

    def sample(self, name, labels, value, t):
        lab = ",".join('%s="%s"' % (k, v) for k, v in sorted(labels.items()))
        self.f.write("%s{%s} %r %d\n" % (name, lab, float(value), t))


def histogram(w, name, series, times, mean_of, rate_of):
    """series: list of label dicts; mean_of(labels, i, t) -> mean seconds;
    rate_of(labels, i, t) -> observations per second.  Exponential
    distribution with that mean, accumulated into cumulative buckets."""
    les = TTFT_LE if "first_token" in name else ITL_LE if "inter_token" in name else E2E_LE
    w.family(name, "histogram")
    for labels in series:
        acc = [0.0] * (len(les) + 1)
        total = 0.0
        sums = 0.0
        rows = []
        for i, t in enumerate(times):
            n = rate_of(labels, i, t) * STEP
            mean = mean_of(labels, i, t)
            for k, le in enumerate(les):
                acc[k] += n * (1 - math.exp(-le / mean))
            total += n
            sums += n * mean
            rows.append((t, list(acc), total, sums))
        for k, le in enumerate(les):
            lab = dict(labels, le=fmt_le(le))
            for t, a, _, _ in rows:
                w.sample(name + "_bucket", lab, round(a[k], 3), t)
        lab = dict(labels, le="+Inf")
        for t, _, tot, _ in rows:
            w.sample(name + "_bucket", lab, round(tot, 3), t)
        for t, _, tot, _ in rows:
            w.sample(name + "_count", labels, round(tot, 3), t)
        for t, _, _, s in rows:
            w.sample(name + "_sum", labels, round(s, 3), t)


def counter(w, family, series, times, rate_of):
    w.family(family, "counter")
    for labels in series:
        v = 0.0
        for i, t in enumerate(times):
            v += rate_of(labels, i, t) * STEP
            w.sample(family + "_total", labels, round(v, 3), t)


def gauge(w, name, series, times, value_of):
    w.family(name, "gauge")
    for labels in series:
        for i, t in enumerate(times):
            w.sample(name, labels, round(value_of(labels, i, t), 4), t)


def write(path, end):
    """Writes the dataset ending at 'end' (unix seconds, a multiple of STEP).
    Returns a summary the test checks the views against."""
    n = HOURS * 3600 // STEP
    times = [end - (n - 1 - i) * STEP for i in range(n)]
    inst = []
    for model, m in MODELS.items():
        for ix in m["instances"]:
            inst.append({"model": model, "instance": ix, "backend": m["backend"]})

    def rps(lab, i, t):
        m = MODELS[lab["model"]]
        return m["rps"] / len(m["instances"]) * (0.7 + 0.6 * wave(i, 120))

    def ttft(lab, i, t):
        base = 0.18 if lab["model"] == "llama-3-8b" else 0.3
        return base * (10.0 if lab["model"] == "llama-3-8b" and in_fault(t, end) else 1.0) * (0.8 + 0.4 * wave(i, 60))

    with open(path, "w") as f:
        w = Writer(f)
        fin = [dict(l, finish_reason=r) for l in inst for r in ("stop", "length")]
        counter(w, "llm_server_requests_finished", fin, times,
                lambda l, i, t: rps(l, i, t) * (0.93 if l["finish_reason"] == "stop" else 0.07 if l["model"] == "qwen-7b" else 0.02))
        failed = [dict(l, error_type=e) for l in inst for e in ("timeout", "oom")]
        counter(w, "llm_server_requests_failed", failed, times,
                lambda l, i, t: rps(l, i, t) * (0.01 if l["error_type"] == "timeout" else 0.002))
        counter(w, "llm_server_generation_tokens", inst, times, lambda l, i, t: rps(l, i, t) * 220)
        counter(w, "llm_server_prompt_tokens", inst, times, lambda l, i, t: rps(l, i, t) * 600)
        histogram(w, "llm_server_time_to_first_token_seconds", inst, times, ttft, rps)
        histogram(w, "llm_server_inter_token_latency_seconds", inst, times,
                  lambda l, i, t: 0.03 * (0.8 + 0.4 * wave(i, 90)), lambda l, i, t: rps(l, i, t) * 220)
        histogram(w, "llm_server_request_duration_seconds", inst, times,
                  lambda l, i, t: ttft(l, i, t) + 220 * 0.03, rps)
        gauge(w, "llm_server_kv_cache_usage_ratio", inst, times, lambda l, i, t: 0.3 + 0.5 * wave(i, 100, len(l["instance"])))
        gauge(w, "llm_server_requests_running", inst, times, lambda l, i, t: round(8 + 10 * wave(i, 80)))
        gauge(w, "llm_server_requests_waiting", inst, times,
              lambda l, i, t: round(2 + 3 * wave(i, 40)) + (12 if l["model"] == "llama-3-8b" and in_fault(t, end) else 0))
        info = [{"model": g[3], "instance": g[0], "gpu": g[1], "gpu_uuid": g[2]} for g in GPUS]
        gauge(w, "llm_server_gpu_info", info, times, lambda l, i, t: 1)
        gpu = [{"instance": g[0], "gpu": g[1], "gpu_uuid": g[2]} for g in GPUS]
        gauge(w, "hw_gpu_utilization_ratio", [dict(g, hw_gpu_task="general") for g in gpu], times,
              lambda l, i, t: 0.5 + 0.4 * wave(i, 70, int(l["gpu"])))
        gauge(w, "hw_gpu_memory_usage_bytes", gpu, times, lambda l, i, t: 60e9 + 15e9 * wave(i, 150))
        gauge(w, "hw_gpu_memory_limit_bytes", gpu, times, lambda l, i, t: 80e9)
        gauge(w, "hw_power_watts", [dict(g, hw_type="gpu") for g in gpu], times, lambda l, i, t: 300 + 200 * wave(i, 70))
        gauge(w, "hw_temperature_celsius", [dict(g, hw_type="gpu", sensor="core") for g in gpu], times,
              lambda l, i, t: 60 + 20 * wave(i, 70))
        gauge(w, "gpu_sm_clock_hertz", gpu, times, lambda l, i, t: 1.98e9 - 3e8 * wave(i, 200))
        cpu = [{"instance": g, "cpu": "0", "mode": m} for g in ("pod-a:8000", "pod-b:8000", "pod-c:8000") for m in ("idle", "user")]
        counter(w, "node_cpu_seconds", cpu, times, lambda l, i, t: 0.4 + 0.3 * wave(i, 50) if l["mode"] == "idle" else 0.6 - 0.3 * wave(i, 50))
        gw = [{"model": mm, "upstream": MODELS[mm]["backend"], "operation": "chat"} for mm in MODELS]
        histogram(w, "gen_ai_server_request_duration_seconds", gw, times,
                  lambda l, i, t: 7.0 * (0.9 + 0.2 * wave(i, 60)), lambda l, i, t: MODELS[l["model"]]["rps"])
        histogram(w, "gen_ai_server_time_to_first_token_seconds", gw, times,
                  lambda l, i, t: 0.25 * (0.9 + 0.2 * wave(i, 60)), lambda l, i, t: MODELS[l["model"]]["rps"])
        q = [{"model": mm} for mm in MODELS]
        gauge(w, "holoscope_quality_score_mean", q, times, lambda l, i, t: 0.82 + 0.1 * wave(i, 300))
        gauge(w, "holoscope_quality_drift_psi", [dict(l, signal="output_tokens") for l in q], times,
              lambda l, i, t: 0.05 + 0.05 * wave(i, 200))
        gauge(w, "model:llm_cost_per_million_output_tokens:dollars", q, times,
              lambda l, i, t: 2.5 if l["model"] == "llama-3-8b" else 4.0)
        w.family("ALERTS", "gauge")
        lab = {"alertname": "LLMTimeToFirstTokenHigh", "alertstate": "firing", "model": "llama-3-8b", "severity": "warning"}
        for t in times:
            if in_fault(t, end):
                w.sample("ALERTS", lab, 1, t)
        f.write("# EOF\n")
    return {"models": sorted(MODELS), "instances": [l["instance"] for l in inst], "gpus": [g[2] for g in GPUS],
            "start": times[0], "end": end, "fault": (end - FAULT_FROM, end - FAULT_TO)}


def write_captures(root, end, every_s=300):
    """Writes capture-log files (the layout of gateway/capture.h, SageMaker
    Data Capture lines with the "holoscope" block) for both models: one
    record every 'every_s' seconds over the dataset's hours, in one file per
    model and UTC hour.  Returns the number of records."""
    import json
    import os
    import time as _t
    n = 0
    start = end - HOURS * 3600
    files = {}
    for model, m in MODELS.items():
        for k, t in enumerate(range(start - start % every_s + every_s, end, every_s)):
            ttft = (0.18 if model == "llama-3-8b" else 0.3) * (10.0 if model == "llama-3-8b" and in_fault(t, end) else 1.0)
            finish = "length" if k % 9 == 4 else "stop"
            when = _t.strftime("%Y-%m-%dT%H:%M:%SZ", _t.gmtime(t))
            rid = "req-%s-%04d" % (model, k)
            req = {"model": model, "messages": [{"role": "user", "content": "Write to [REDACTED:email] about order %d" % k}]}
            resp = {"id": "chatcmpl-%d" % k, "object": "chat.completion",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Done: message %d sent." % k},
                                 "finish_reason": finish}],
                    "usage": {"prompt_tokens": 40 + k % 7, "completion_tokens": 12 + k % 5}}
            rec = {"captureData": {
                       "endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                                         "data": json.dumps(req), "encoding": "JSON"},
                       "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                          "data": json.dumps(resp), "encoding": "JSON"}},
                   "eventMetadata": {"eventId": "00000000-0000-4000-8000-%012d" % n, "inferenceId": rid,
                                     "inferenceTime": when},
                   "eventVersion": "0",
                   "holoscope": {"v": 1, "request_id": rid, "model": model, "upstream": m["backend"],
                                 "operation": "chat", "stream": True, "http_status": 200, "outcome": "ok",
                                 "ttft_s": round(ttft, 4), "e2e_s": round(ttft + 6.6, 4),
                                 "input_tokens": 40 + k % 7, "output_tokens": 12 + k % 5,
                                 "finish_reasons": [finish], "quality": {"score": 0.9 if finish == "stop" else 0.55,
                                             "failed": [] if finish == "stop" else ["truncation"],
                                             "checks": {"empty": 1, "truncation": 1 if finish == "stop" else 0}}}}
            g = _t.gmtime(t)
            d = os.path.join(root, model, m["backend"], "%04d" % g.tm_year, "%02d" % g.tm_mon, "%02d" % g.tm_mday,
                             "%02d" % g.tm_hour)
            key = (model, d)
            if key not in files:
                os.makedirs(d, exist_ok=True)
                files[key] = open(os.path.join(d, "%02d-%02d-000-%08d-0000-4000-8000-000000000000.jsonl"
                                               % (g.tm_min, g.tm_sec, len(files))), "w")
            files[key].write(json.dumps(rec, separators=(",", ":")) + "\n")
            n += 1
    for f in files.values():
        f.close()
    return n
