"""Side-by-side PromQL compliance: holoscope against a real Prometheus.

The method of Prometheus's compliance tester: the same data goes into both
peers, the same queries go through both HTTP APIs, and the answers are
compared.

Data: an OpenMetrics file generated here (vLLM-like counters with resets,
gauges with NaN and +Inf, classic histograms with `le` buckets, DCGM-like
GPU gauges, a series that stops midway, label values with quotes,
backslashes and UTF-8), two hours at 15 s, ending more than three hours
before now so that both peers serve it from blocks, never from a head.
holoscope loads it with `holoscope tsdb create-blocks-from openmetrics`,
Prometheus with `promtool tsdb create-blocks-from openmetrics`; Prometheus
then runs with an empty scrape configuration on a free port of 127.0.0.1.

Queries: tests/e2e/compliance_queries.txt, one per line, each run as an
instant query at two evaluation times and as a range query.  The
evaluation times are off the 15 s sample grid so that no sample sits on a
range selector's left edge, where Prometheus 2.42 (closed) and 3
(left-open) differ; the queries that probe that edge on purpose name it.

Comparison: same result type, same label sets, values within 1e-9
relative (NaN equals NaN), the same order where the query is marked
`ordered`, the same errorType for failures.  Annotations after ` # `:
  ordered                 instant results are compared in order
  known-diff: NAME        a named Prometheus 2.42-vs-3 difference; the test
                          checks that the difference is exactly that one
  bug: DESCRIPTION        a known holoscope bug: reported, not counted as
                          a pass, not failing the run

Known-difference names (KNOWN_DIFFS below) and how each is checked:
  left-open-range   count_over_time on an aligned edge: Prometheus 2.42
                    counts one more sample (the one on the left edge)
  le-normalisation  3.x writes `le`/`quantile` values as canonical floats
                    ("1" -> "1.0"); equal after normalising both
  renamed-in-3      holt_winters (2.42) is double_exponential_smoothing
                    in 3: 2.42 rejects the new name, holoscope answers
  new-in-3          functions 2.42 does not know: 2.42 answers bad_data,
                    holoscope answers
  removed-in-3      spellings 3.x rejects: 2.42 answers, holoscope fails
                    with bad_data
  rate-zero-point   rate/increase of a counter that starts inside the
                    range: 2.42 limits extrapolation to the zero point
                    before the half-interval rule, later releases after it
                    (prometheus/prometheus#13725); same label sets, and
                    every differing value is smaller in holoscope
  atan2-drops-name  2.42 keeps __name__ on `a atan2 b`, 3.x drops it as for
                    every arithmetic operator; equal once 2.42's names are
                    removed

Prints a summary table and a final line "N passed, N failed"; fails on any
unexplained difference.  Skipped when /usr/bin/prometheus or promtool is
missing.
"""
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
QUERIES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compliance_queries.txt")

H2 = 7200
STEP = 15
RTOL = 1e-9
KNOWN_DIFFS = ("left-open-range", "le-normalisation", "renamed-in-3", "new-in-3",
               "removed-in-3", "rate-zero-point", "atan2-drops-name")

MODELS = ("meta-llama/Llama-3.1-8B-Instruct", "mistralai/Mixtral-8x7B", "qwen/Qwen2.5-72B")
REASONS = ("stop", "length")
BUCKETS = ("0.1", "0.5", "1", "2.5", "5", "10", "+Inf")


def fmt(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def esc(s):
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labelstr(labels):
    return ",".join('%s="%s"' % (k, esc(v)) for k, v in labels)


def write_openmetrics(path, start, npoints):
    """Writes the shared data set; returns the number of series written."""
    out = []
    nseries = 0

    def series(name, labels, values):
        nonlocal nseries
        nseries += 1
        ls = labelstr(labels)
        head = "%s{%s}" % (name, ls) if ls else name
        for i, v in enumerate(values):
            if v is None:
                continue
            out.append("%s %s %d\n" % (head, fmt(v), start + i * STEP))

    ts = range(npoints)
    # vLLM-like counters, some with resets
    out.append("# TYPE vllm:request_success counter\n")
    out.append("# HELP vllm:request_success Finished requests.\n")
    for m, model in enumerate(MODELS):
        for r, reason in enumerate(REASONS):
            for inst in range(4):
                k = m * 8 + r * 4 + inst
                rate_ = 0.5 + k * 0.25
                reset_at = npoints // 2 + k * 7 if k % 3 == 0 else None
                vals = []
                acc = 0.0
                for i in ts:
                    if reset_at is not None and i == reset_at:
                        acc = 0.0
                    acc += rate_ * STEP * (1 + (i * (k + 3)) % 5 / 10.0)
                    vals.append(acc)
                series("vllm:request_success_total",
                       [("finished_reason", reason), ("instance", "10.0.0.%d:8000" % inst),
                        ("job", "vllm"), ("model_name", model)], vals)
    out.append("# TYPE vllm:prompt_tokens counter\n")
    for m, model in enumerate(MODELS):
        for inst in range(4):
            k = m * 4 + inst
            vals = [float(i * (40 + k * 13) + (i * i) % 97) for i in ts]
            series("vllm:prompt_tokens_total",
                   [("instance", "10.0.0.%d:8000" % inst), ("job", "vllm"), ("model_name", model)],
                   vals)
    # gauges
    out.append("# TYPE vllm:num_requests_running gauge\n")
    for m, model in enumerate(MODELS):
        for inst in range(4):
            k = m * 4 + inst
            vals = [float((i * (k + 5) + k * 11) % 23) for i in ts]
            series("vllm:num_requests_running",
                   [("instance", "10.0.0.%d:8000" % inst), ("job", "vllm"), ("model_name", model)],
                   vals)
    out.append("# TYPE vllm:gpu_cache_usage_perc gauge\n")
    for m, model in enumerate(MODELS):
        for inst in range(4):
            k = m * 4 + inst
            vals = [((i * 7 + k * 3) % 100) / 100.0 for i in ts]
            series("vllm:gpu_cache_usage_perc",
                   [("instance", "10.0.0.%d:8000" % inst), ("job", "vllm"), ("model_name", model)],
                   vals)
    # classic histogram
    out.append("# TYPE vllm:e2e_request_latency_seconds histogram\n")
    for m, model in enumerate(MODELS):
        for inst in range(4):
            k = m * 4 + inst
            base = ("instance", "10.0.0.%d:8000" % inst), ("job", "vllm"), ("model_name", model)
            counts = []
            sums = []
            acc = [0.0] * len(BUCKETS)
            s = 0.0
            for i in ts:
                for b in range(len(BUCKETS)):
                    acc[b] += float((b + 1) * (1 + (i + k + b) % 3))
                cum = 0.0
                row = []
                for b in range(len(BUCKETS)):
                    cum += acc[b]  # buckets are cumulative
                    row.append(cum)
                counts.append(row)
                s += 0.37 * (k + 1) * (1 + i % 4)
                sums.append(s)
            for b, le in enumerate(BUCKETS):
                series("vllm:e2e_request_latency_seconds_bucket",
                       sorted(list(base) + [("le", le)]), [counts[i][b] for i in ts])
            series("vllm:e2e_request_latency_seconds_sum", list(base), sums)
            series("vllm:e2e_request_latency_seconds_count", list(base),
                   [counts[i][-1] for i in ts])
    # DCGM-like GPU gauges
    for name, fn in (("DCGM_FI_DEV_GPU_UTIL", lambda i, g: float((i * 3 + g * 17) % 101)),
                     ("DCGM_FI_DEV_FB_USED", lambda i, g: float(40000 + (i * 31 + g * 1009) % 40000)),
                     ("DCGM_FI_DEV_GPU_TEMP", lambda i, g: 30.0 + ((i + g * 5) % 50) / 2.0)):
        out.append("# TYPE %s gauge\n" % name)
        for host in ("gpu-node-a", "gpu-node-b"):
            for g in range(8):
                series(name, [("Hostname", host), ("UUID", "GPU-%08x-%s" % (g * 2654435761 % 2**32, host[-1])),
                              ("gpu", str(g)), ("instance", host + ":9400"), ("job", "dcgm"),
                              ("modelName", "NVIDIA H100 80GB HBM3")],
                       [fn(i, g + (8 if host.endswith("b") else 0)) for i in ts])
    # special values, a series that stops midway, special characters
    out.append("# TYPE hs_special gauge\n")
    series("hs_special", [("kind", "nan")],
           [float("nan") if i % 10 == 3 else float(i) for i in ts])
    series("hs_special", [("kind", "inf")],
           [float("inf") if i % 20 == 5 else -float(i) for i in ts])
    series("hs_special", [("kind", "stops")],
           [float(i) if i < npoints // 2 else None for i in ts])
    series("hs_special", [("kind", "sparse")],
           [float(i) if i % 40 == 0 else None for i in ts])
    series("hs_special", [("kind", 'quote"back\\slash'), ("path", "/v1/chat/completions")],
           [1.5 for _ in ts])
    series("hs_special", [("kind", "utf8-\u00e9\u00e8-\u65e5\u672c")], [2.5 for _ in ts])
    out.append("# TYPE hs_dup gauge\n")
    series("hs_dup", [("a", "1"), ("b", "x")], [1.0 for _ in ts])
    series("hs_dup", [("a", "1"), ("b", "y")], [2.0 for _ in ts])
    series("hs_dup", [("a", "2"), ("b", "x")], [3.0 for _ in ts])
    out.append("# EOF\n")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(out))
    return nseries


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Prometheus:
    """A real Prometheus on 127.0.0.1 over a backfilled data directory."""

    def __init__(self, data, tmp, limit_s=110):
        cfg = os.path.join(tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(tmp, "prometheus.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file=" + cfg, "--storage.tsdb.path=" + data,
             "--storage.tsdb.retention.time=30d",
             "--web.listen-address=127.0.0.1:%d" % self.port],
            stdout=self.log, stderr=self.log)
        self.watchdog = threading.Timer(limit_s, self.proc.kill)
        self.watchdog.daemon = True
        self.watchdog.start()
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("prometheus exited:\n" + self.logs())
            try:
                with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, socket.timeout):
                pass
            time.sleep(0.1)
        self.close()
        raise RuntimeError("prometheus did not become ready:\n" + self.logs())

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def get(self, path, timeout=10):
        try:
            with urllib.request.urlopen(self.base + path, timeout=timeout) as r:
                return r.status, {}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {}, e.read()

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.watchdog.cancel()
        self.log.close()


def parse_query_file(path, subst):
    """Returns [(lineno, query, {'ordered': bool, 'known': name|None, 'bug': text|None})]."""
    items = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            ann = {"ordered": False, "known": None, "bug": None}
            q = line
            cut = line.find(" # ")
            if cut >= 0:
                q, rest = line[:cut], line[cut + 3:]
                for part in rest.split(" # "):
                    part = part.strip()
                    if part == "ordered":
                        ann["ordered"] = True
                    elif part.startswith("known-diff:"):
                        name = part[len("known-diff:"):].strip().split()[0]
                        if name not in KNOWN_DIFFS:
                            raise ValueError("%s:%d: unknown known-diff name %r"
                                             % (path, lineno, name))
                        ann["known"] = name
                    elif part.startswith("bug:"):
                        ann["bug"] = part[4:].strip()
                    else:
                        raise ValueError("%s:%d: unknown annotation %r" % (path, lineno, part))
            for k, v in subst.items():
                q = q.replace(k, v)
            items.append((lineno, q.strip(), ann))
    return items


def fnum(s):
    return float(s)  # "NaN", "+Inf", "-Inf" included


def close_enough(a, b):
    x, y = fnum(a), fnum(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if x == y:
        return True
    if math.isinf(x) or math.isinf(y):
        return False
    return abs(x - y) <= RTOL * max(abs(x), abs(y))


def norm_le(metric):
    out = dict(metric)
    for k in ("le", "quantile"):
        if k in out:
            try:
                out[k] = repr(float(out[k]))
            except ValueError:
                pass
    return out


def key(metric):
    return tuple(sorted(metric.items()))


class Answer:
    """One peer's answer: ok + (resultType, result) or errorType + error."""

    def __init__(self, status, body):
        self.http = status
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {"status": "error", "errorType": "unparseable",
                   "error": body[:200].decode(errors="replace")}
        self.ok = doc.get("status") == "success"
        self.error_type = doc.get("errorType")
        self.error = doc.get("error")
        data = doc.get("data") or {}
        self.rtype = data.get("resultType")
        self.result = data.get("result")

    def describe(self):
        if not self.ok:
            return "error %s: %s" % (self.error_type, self.error)
        return "%s %s" % (self.rtype, json.dumps(self.result)[:300])


def compare(p, h, ordered, normalise=False):
    """Returns None when equal, else a one-line description of the first difference."""
    if p.ok != h.ok:
        return "prometheus: %s / holoscope: %s" % (p.describe(), h.describe())
    if not p.ok:
        if p.error_type != h.error_type:
            return "errorType %s vs %s (%s | %s)" % (p.error_type, h.error_type, p.error, h.error)
        return None
    if p.rtype != h.rtype:
        return "resultType %s vs %s" % (p.rtype, h.rtype)
    if p.rtype in ("scalar", "string"):
        if p.result[0] != h.result[0] and not close_enough(p.result[0], h.result[0]):
            return "timestamp %s vs %s" % (p.result[0], h.result[0])
        if p.rtype == "string":
            return None if p.result[1] == h.result[1] else "string %r vs %r" % (p.result[1], h.result[1])
        return None if close_enough(p.result[1], h.result[1]) else \
            "scalar %s vs %s" % (p.result[1], h.result[1])
    nm = norm_le if normalise else (lambda m: m)
    pk = [key(nm(s["metric"])) for s in p.result]
    hk = [key(nm(s["metric"])) for s in h.result]
    if len(set(hk)) != len(hk):
        return "holoscope returned duplicate label sets"
    if set(pk) != set(hk):
        only_p = sorted(set(pk) - set(hk))[:2]
        only_h = sorted(set(hk) - set(pk))[:2]
        return "label sets differ (%d vs %d series); only prometheus: %s; only holoscope: %s" % (
            len(pk), len(hk), only_p, only_h)
    if ordered and p.rtype == "vector" and pk != hk:
        return "order differs: prometheus %s / holoscope %s" % (pk[:3], hk[:3])
    hmap = {k: s for k, s in zip(hk, h.result)}
    for k, ps in zip(pk, p.result):
        hs = hmap[k]
        if p.rtype == "vector":
            pv, hv = [ps["value"]], [hs["value"]]
        else:
            pv, hv = ps.get("values", []), hs.get("values", [])
        if len(pv) != len(hv):
            return "%s: %d vs %d points" % (dict(k), len(pv), len(hv))
        for (pt, px), (ht, hx) in zip(pv, hv):
            if abs(float(pt) - float(ht)) > 1e-6:
                return "%s: timestamps %s vs %s" % (dict(k), pt, ht)
            if not close_enough(px, hx):
                return "%s @%s: %s vs %s" % (dict(k), pt, px, hx)
    return None


def check_known(name, query, p, h):
    """Returns None when the documented difference (and only it) shows, else why not."""
    if name == "le-normalisation":
        return compare(p, h, False, normalise=True)
    if name == "atan2-drops-name":
        if p.ok and p.rtype in ("vector", "matrix"):
            for sm in p.result:
                if "__name__" not in sm["metric"]:
                    return "Prometheus 2.42 dropped __name__ after all"
                del sm["metric"]["__name__"]
        return compare(p, h, False)
    if name == "rate-zero-point":
        if not (p.ok and h.ok):
            return "both should answer: %s / %s" % (p.describe(), h.describe())
        hmap = {key(s["metric"]): s for s in h.result}
        if set(hmap) != {key(s["metric"]) for s in p.result}:
            return "label sets differ"
        for sm in p.result:
            hs = hmap[key(sm["metric"])]
            pv = [sm["value"]] if p.rtype == "vector" else sm["values"]
            hv = [hs["value"]] if h.rtype == "vector" else hs["values"]
            if [t for t, _ in pv] != [t for t, _ in hv]:
                return "timestamps differ"
            for (_, a), (_, b) in zip(pv, hv):
                if not close_enough(a, b) and not 0 <= float(b) < float(a):
                    return "%s: %s vs %s is not the zero-point difference" % (
                        dict(key(sm["metric"])), a, b)
        return None
    if name in ("renamed-in-3", "new-in-3"):
        if p.ok or p.error_type != "bad_data":
            return "expected Prometheus 2.42 to reject it with bad_data, got " + p.describe()
        if not h.ok:
            return "expected holoscope to answer, got " + h.describe()
        return None
    if name == "removed-in-3":
        if not p.ok:
            return "expected Prometheus 2.42 to answer, got " + p.describe()
        if h.ok or h.error_type != "bad_data":
            return "expected holoscope to reject it with bad_data, got " + h.describe()
        return None
    if name == "left-open-range":
        if not (p.ok and h.ok):
            return "both should answer: %s / %s" % (p.describe(), h.describe())
        if p.rtype != h.rtype:
            return "resultType %s vs %s" % (p.rtype, h.rtype)
        if p.rtype in ("vector", "matrix") and \
                {key(s["metric"]) for s in p.result} != {key(s["metric"]) for s in h.result}:
            return "label sets differ"
        if not query.startswith("count_over_time"):
            return None
        hmap = {key(s["metric"]): s for s in h.result}
        if set(hmap) != {key(s["metric"]) for s in p.result}:
            return "label sets differ"
        seen_edge = False
        for s in p.result:
            hs = hmap[key(s["metric"])]
            pv = [s["value"]] if p.rtype == "vector" else s["values"]
            hv = [hs["value"]] if h.rtype == "vector" else hs["values"]
            for (_, a), (_, b) in zip(pv, hv):
                d = float(a) - float(b)
                if d not in (0.0, 1.0):
                    return "count differs by %g, not by the one left-edge sample" % d
                seen_edge = seen_edge or d == 1.0
        return None if seen_edge else "no left-edge sample difference showed"
    return "unknown known-diff %r" % name


@unittest.skipUnless(os.access(PROMETHEUS, os.X_OK) and os.access(PROMTOOL, os.X_OK),
                     "prometheus and promtool are not installed")
class PromQLCompliance(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hs-compliance-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_every_query_answers_as_prometheus_does_or_names_its_difference(self):
        now = int(time.time())
        start = (now // H2) * H2 - 4 * H2  # a 2 h window ending >= 6 h before now
        npoints = H2 // STEP + 1
        om = os.path.join(self.tmp, "data.om")
        nseries = write_openmetrics(om, start, npoints)
        self.assertGreater(nseries, 200)

        hdir = os.path.join(self.tmp, "holo")
        code, out, err = holo.run(["tsdb", "create-blocks-from", "openmetrics", om, hdir])
        self.assertEqual(code, 0, out + err)
        pdir = os.path.join(self.tmp, "prom")
        p = subprocess.run([PROMTOOL, "tsdb", "create-blocks-from", "openmetrics", om, pdir],
                           capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))

        t_mid = start + 3600 + 7.5       # off the 15 s grid
        t_late = start + 5400 + 3.25
        t_edge = start + 3600            # on the grid: a sample on the left edge
        subst = {"$T_EDGE": "%d" % t_edge, "$T_START": "%d" % start,
                 "$T_END": "%d" % (start + H2)}
        items = parse_query_file(QUERIES, subst)
        self.assertGreaterEqual(len(items), 100)

        prom = Prometheus(pdir, self.tmp)
        self.addCleanup(prom.close)
        srv = holo.Server(data=hdir)
        self.addCleanup(srv.close)

        def ask(peer, q, kind):
            if kind[0] == "instant":
                args = {"query": q, "time": "%.3f" % kind[1]}
                path = "/api/v1/query?"
            else:
                args = {"query": q, "start": "%.3f" % kind[1], "end": "%.3f" % kind[2],
                        "step": "60"}
                path = "/api/v1/query_range?"
            status, _, body = peer.get(path + urllib.parse.urlencode(args))
            return Answer(status, body)

        kinds = [("instant", t_mid), ("instant", t_late),
                 ("range", start + 1800 + 7.5, start + H2 - 600 + 7.5)]
        equal, known, bugs, failed = 0, {}, [], []
        for lineno, q, ann in items:
            for kind in kinds:
                pa, ha = ask(prom, q, kind), ask(srv, q, kind)
                label = "line %d %s: %s" % (lineno, kind[0], q)
                if ann["known"]:
                    why = check_known(ann["known"], q, pa, ha)
                    if why is None:
                        known.setdefault(ann["known"], 0)
                        known[ann["known"]] += 1
                    else:
                        failed.append("%s\n    known-diff %s did not show as documented: %s"
                                      % (label, ann["known"], why))
                    continue
                diff = compare(pa, ha, ann["ordered"])
                if ann["bug"]:
                    bugs.append("%s\n    bug: %s\n    %s" % (label, ann["bug"],
                                                          diff or "(now equal: remove the bug note)"))
                elif diff is None:
                    equal += 1
                else:
                    failed.append("%s\n    %s" % (label, diff))

        print("\nPromQL compliance against %s" % PROMETHEUS)
        print("  %-36s %5d" % ("compared equal", equal))
        for name in KNOWN_DIFFS:
            if name in known:
                print("  %-36s %5d" % ("known difference " + name, known[name]))
        print("  %-36s %5d" % ("known bugs", len(bugs)))
        print("  %-36s %5d" % ("failed", len(failed)))
        for b in bugs:
            print("KNOWN BUG " + b)
        for f in failed:
            print("FAILED " + f)
        print("%d passed, %d failed" % (equal + sum(known.values()), len(failed)))
        self.assertEqual(failed, [], "%d unexplained differences" % len(failed))


if __name__ == "__main__":
    unittest.main()
