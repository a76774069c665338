"""End-to-end: `holoscope sim`, the simulated fleet, over real sockets.

Starts `holoscope sim` (two vLLM replicas, one SGLang replica, their DCGM
nodes), reads the endpoints it prints, and checks: OpenAI chat and legacy
completions, streamed (SSE ending in [DONE], include_usage honoured) and
not; OpenAI-style errors; the /metrics of every endpoint pass
`promtool check metrics` with no problem beyond those the real exporters'
own captures (shared/fixtures/exposition) show; `holoscope serve` scraping
the fleet detects each endpoint as the right backend; the fault control
endpoint (quality, errors, replica_down refusing connections, DELETE); and
a clean stop on SIGTERM.
"""
import json
import os
import re
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

SHARED = os.environ.get("HS_SHARED_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared")
FIXTURES = os.path.join(SHARED, "fixtures", "exposition")
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


class Sim:
    """`holoscope sim` with its endpoints parsed from standard output."""

    def __init__(self, args=(), limit_s=110):
        self.tmp = tempfile.mkdtemp(prefix="hs-sim-")
        self.err_path = os.path.join(self.tmp, "stderr.log")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen([holo.BIN, "sim"] + list(args), stdout=subprocess.PIPE,
                                     stderr=self.err)
        self.watchdog = threading.Timer(limit_s, self.proc.kill)
        self.watchdog.daemon = True
        self.watchdog.start()
        self.replicas, self.nodes = [], []
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                raise RuntimeError("holoscope sim exited:\n" + self.logs())
            if line.strip() == "ready":
                return
            kind, rest = line.split(" ", 1)
            ep = dict(kv.split("=", 1) for kv in rest.split())
            (self.replicas if kind == "replica" else self.nodes).append(ep)
        raise RuntimeError("holoscope sim never became ready:\n" + self.logs())

    def logs(self):
        with open(self.err_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.watchdog.cancel()
        self.err.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def request(url, body=None, method=None, timeout=20):
    """Returns (status, body bytes) without raising on 4xx/5xx."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data else "GET"),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def sse_events(body):
    return [line[len("data: "):] for line in body.decode().split("\n\n")
            if line.startswith("data: ")]


def promtool_problems(text):
    """promtool check metrics on 'text': (exit code, set of problem kinds)."""
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=30)
    out = (p.stdout + p.stderr).decode()
    kinds = set()
    for line in out.splitlines():
        if line.strip():
            # "NAME problem text": keep the problem text only
            kinds.add(line.split(" ", 1)[1] if " " in line else line)
    return p.returncode, kinds, out


class SimEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.sim = Sim(["--seed", "7"])

    @classmethod
    def tearDownClass(cls):
        cls.sim.close()

    def replica(self, backend, i=0):
        return [r for r in self.sim.replicas if r["backend"] == backend][i]

    def test_endpoints_are_printed_for_every_replica_and_node(self):
        self.assertEqual([r["backend"] for r in self.sim.replicas], ["vllm", "vllm", "sglang"])
        self.assertEqual([n["backend"] for n in self.sim.nodes], ["dcgm", "dcgm"])
        for ep in self.sim.replicas + self.sim.nodes:
            self.assertRegex(ep["url"], r"^http://127\.0\.0\.1:\d+$")
        status, body = request(self.replica("vllm")["url"] + "/v1/models")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["data"][0]["id"], LLAMA)

    def test_chat_stream_is_openai_sse_with_usage_and_done(self):
        url = self.replica("vllm")["url"] + "/v1/chat/completions"
        status, body = request(url, {"model": LLAMA, "stream": True, "max_tokens": 12,
                                     "stream_options": {"include_usage": True},
                                     "messages": [{"role": "user", "content": "Say hello"}]})
        self.assertEqual(status, 200)
        events = sse_events(body)
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        self.assertEqual(chunks[0]["choices"][0]["delta"]["role"], "assistant")
        self.assertTrue(all(c["object"] == "chat.completion.chunk" for c in chunks))
        usage = chunks[-1]
        self.assertEqual(usage["choices"], [])
        finish = chunks[-2]["choices"][0]["finish_reason"]
        self.assertIn(finish, ("stop", "length"))
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[1:-2])
        self.assertEqual(usage["usage"]["completion_tokens"], len(chunks) - 3)
        self.assertLessEqual(usage["usage"]["completion_tokens"], 12)
        self.assertEqual(usage["usage"]["total_tokens"], usage["usage"]["prompt_tokens"]
                         + usage["usage"]["completion_tokens"])
        self.assertRegex(text, r"[A-Za-z]")
        if usage["usage"]["completion_tokens"] == 12:
            self.assertEqual(finish, "length")

    def test_stream_without_include_usage_has_no_usage_chunk(self):
        url = self.replica("sglang")["url"] + "/v1/completions"
        status, body = request(url, {"model": "Qwen/Qwen3-8B", "prompt": "Once upon a time",
                                     "stream": True, "max_tokens": 5})
        self.assertEqual(status, 200)
        events = sse_events(body)
        self.assertEqual(events[-1], "[DONE]")
        chunks = [json.loads(e) for e in events[:-1]]
        self.assertTrue(all(c["usage"] is None for c in chunks))
        self.assertTrue(all(c["object"] == "text_completion" for c in chunks))
        self.assertIn(chunks[-1]["choices"][0]["finish_reason"], ("stop", "length"))

    def test_non_streamed_chat_and_completion_answer_json_with_usage(self):
        url = self.replica("vllm", 1)["url"]
        status, body = request(url + "/v1/chat/completions",
                               {"model": LLAMA, "max_tokens": 3,
                                "messages": [{"role": "user", "content": "hi"}]})
        self.assertEqual(status, 200, body)
        d = json.loads(body)
        self.assertEqual(d["object"], "chat.completion")
        self.assertEqual(d["choices"][0]["message"]["role"], "assistant")
        self.assertLessEqual(d["usage"]["completion_tokens"], 3)
        status, body = request(url + "/v1/completions",
                               {"model": LLAMA, "prompt": "x", "max_tokens": 4})
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["object"], "text_completion")

    def test_bad_requests_get_openai_errors(self):
        url = self.replica("vllm")["url"] + "/v1/chat/completions"
        status, body = request(url, {"model": "nope", "messages": [{"role": "user",
                                                                    "content": "x"}]})
        self.assertEqual(status, 404)
        self.assertIn("does not exist", json.loads(body)["error"]["message"])
        status, body = request(url, {"model": LLAMA, "n": 2,
                                     "messages": [{"role": "user", "content": "x"}]})
        self.assertEqual(status, 400)
        self.assertIn("n=1", json.loads(body)["error"]["message"])
        req = urllib.request.Request(url, data=b'{"model": ', method="POST")
        try:
            urllib.request.urlopen(req, timeout=10)
            self.fail("accepted broken JSON")
        except urllib.error.HTTPError as e:
            self.assertEqual(e.code, 400)
            self.assertIn("invalid JSON", json.loads(e.read())["error"]["message"])
        status, body = request(url, {"model": LLAMA, "messages": "hello"})
        self.assertEqual(status, 400)
        self.assertIn("messages", json.loads(body)["error"]["message"])

    @unittest.skipUnless(os.path.exists(PROMTOOL), "promtool is not installed")
    def test_metrics_pass_promtool_like_the_real_exporters(self):
        # one request first, so histograms hold observations
        request(self.replica("sglang")["url"] + "/v1/completions",
                {"model": "Qwen/Qwen3-8B", "prompt": "p", "max_tokens": 2})
        fixtures = {"vllm": "vllm.prom", "sglang": "sglang-current.prom", "dcgm": "dcgm.prom"}
        for ep in self.sim.replicas + self.sim.nodes:
            status, body = request(ep["url"] + ep["metrics"])
            self.assertEqual(status, 200)
            rc, kinds, out = promtool_problems(body.decode())
            self.assertIn(rc, (0, 3), out)  # 1 would be a parse error
            with open(os.path.join(FIXTURES, fixtures[ep["backend"]])) as f:
                _, real_kinds, _ = promtool_problems(f.read())
            self.assertTrue(kinds <= real_kinds,
                            "%s: problems the real exporter does not have: %s"
                            % (ep["backend"], kinds - real_kinds))

    def test_serve_detects_every_endpoint_as_its_backend(self):
        jobs = []
        for i, ep in enumerate(self.sim.replicas + self.sim.nodes):
            jobs.append("""  - job_name: sim%d
    static_configs:
      - targets: ["%s"]
        labels: {expect: %s}
""" % (i, ep["url"][len("http://"):], ep["backend"]))
        cfg = ("global:\n  scrape_interval: 1s\nscrape_configs:\n" + "".join(jobs)
               + "rules:\n  default_pack: false\ncollectors:\n  host: false\n  gpu: false\n")
        srv = holo.Server(config=cfg)
        try:
            q = ('count by (job, backend, expect) ({__name__=~"vllm:num_requests_running|'
                 'sglang:num_running_reqs|DCGM_FI_DEV_GPU_UTIL"})')
            deadline = time.time() + 30
            res = []
            while time.time() < deadline:
                status, _, body = srv.get("/api/v1/query?query=" + urllib.parse.quote(q))
                self.assertEqual(status, 200, body)
                res = json.loads(body)["data"]["result"]
                if len(res) == 5 and all(r["metric"].get("backend") for r in res):
                    break
                time.sleep(0.3)
            got = {r["metric"]["job"]: (r["metric"].get("backend"), r["metric"]["expect"])
                   for r in res}
            self.assertEqual(len(got), 5, res)
            for job, (backend, expect) in got.items():
                self.assertEqual(backend, expect, job)
        finally:
            srv.close()


class SimFaults(unittest.TestCase):
    def setUp(self):
        self.sim = Sim(["--engine", "m:vllm:org/m:2", "--seed", "3"])
        self.url = self.sim.replicas[0]["url"]

    def tearDown(self):
        self.sim.close()

    def chat(self, url=None, max_tokens=12):
        return request((url or self.url) + "/v1/chat/completions",
                       {"model": "org/m", "max_tokens": max_tokens,
                        "messages": [{"role": "user", "content": "hello"}]})

    def test_quality_fault_degrades_answers_until_deleted(self):
        status, body = request(self.url + "/sim/faults", {"kind": "quality", "magnitude": 1,
                                                          "duration_s": 60})
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["faults"][0]["kind"], "quality")
        seen = set()
        for _ in range(12):
            status, body = self.chat()
            self.assertEqual(status, 200)
            text = json.loads(body)["choices"][0]["message"]["content"]
            if text == "":
                seen.add("empty")
            elif text == "I'm sorry, but I can't help with that.":
                seen.add("refusal")
            elif re.fullmatch(r"( I think the answer is)+( I think| I think the( answer)?)?",
                              text):
                seen.add("repetitive")
            else:
                self.fail("not degraded: %r" % text)
        self.assertEqual(seen, {"empty", "refusal", "repetitive"})
        status, body = request(self.url + "/sim/faults", method="DELETE")
        self.assertEqual(json.loads(body)["faults"], [])
        time.sleep(0.2)
        status, body = self.chat()
        self.assertNotIn(json.loads(body)["choices"][0]["message"]["content"],
                         ("", "I'm sorry, but I can't help with that."))

    def test_error_fault_answers_500_and_counts_5xx_in_metrics(self):
        request(self.url + "/sim/faults", {"kind": "errors", "magnitude": 1, "duration_s": 30})
        status, body = self.chat()
        self.assertEqual(status, 500)
        self.assertEqual(json.loads(body)["error"]["code"], 500)
        status, body = request(self.url + "/metrics")
        self.assertIn('http_requests_total{handler="/v1/chat/completions",method="POST",'
                      'status="5xx"} 1.0', body.decode())

    def test_replica_down_refuses_connections_then_comes_back(self):
        status, body = request(self.url + "/sim/faults", {"kind": "replica_down",
                                                          "duration_s": 1.5})
        self.assertEqual(status, 200, body)
        port = int(self.url.rsplit(":", 1)[1])
        deadline = time.time() + 5
        refused = False
        while time.time() < deadline and not refused:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                time.sleep(0.05)
            except ConnectionRefusedError:
                refused = True
        self.assertTrue(refused, "the port never refused connections")
        # the other replica keeps serving
        status, _ = self.chat(self.sim.replicas[1]["url"])
        self.assertEqual(status, 200)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if request(self.url + "/health", timeout=2)[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        self.assertEqual(self.chat()[0], 200)

    def test_bad_fault_requests_are_refused_with_a_reason(self):
        status, body = request(self.url + "/sim/faults", {"kind": "meltdown"})
        self.assertEqual(status, 400)
        self.assertIn("unknown fault kind", json.loads(body)["error"]["message"])
        status, body = request(self.url + "/sim/faults", {"kind": "throttle", "target": "zz"})
        self.assertEqual(status, 400)
        self.assertIn("unknown fault target", json.loads(body)["error"]["message"])

    def test_throttle_fault_shows_thermal_reasons_on_the_node(self):
        request(self.url + "/sim/faults", {"kind": "throttle", "target": "m", "duration_s": 30})
        node = self.sim.nodes[0]
        deadline = time.time() + 5
        while time.time() < deadline:
            body = request(node["url"] + "/metrics")[1].decode()
            m = re.findall(r'^DCGM_FI_DEV_CLOCKS_EVENT_REASONS\{.*\} (\d+)$', body, re.M)
            if m and all(int(v) & 0x60 == 0x60 for v in m):
                break
            time.sleep(0.1)
        self.assertTrue(m and all(int(v) & 0x60 == 0x60 for v in m), body)
        self.assertRegex(body, r'DCGM_FI_DEV_SM_CLOCK\{[^}]*\} 1410')
        # an engine-wide fault survives a plain DELETE, not one naming the engine
        request(self.url + "/sim/faults", method="DELETE")
        self.assertEqual(len(json.loads(request(self.url + "/sim/faults")[1])["faults"]), 1)
        status, body = request(self.url + "/sim/faults?target=m", method="DELETE")
        self.assertEqual((status, json.loads(body)["faults"]), (200, []))
        deadline = time.time() + 5
        while time.time() < deadline:
            body = request(node["url"] + "/metrics")[1].decode()
            if not re.search(r'DCGM_FI_DEV_SM_CLOCK\{[^}]*\} 1410', body):
                break
            time.sleep(0.1)
        self.assertNotRegex(body, r'DCGM_FI_DEV_SM_CLOCK\{[^}]*\} 1410')

    def test_idle_gpu_fault_answers_503_and_shows_an_idle_gpu(self):
        request(self.url + "/sim/faults", {"kind": "idle_gpu", "duration_s": 30})
        status, body = self.chat()
        self.assertEqual(status, 503)
        self.assertIn("no capacity", json.loads(body)["error"]["message"])
        self.assertEqual(request(self.url + "/health")[0], 200)

    def test_sigterm_stops_cleanly_with_a_stream_in_flight(self):
        self.chat()
        port = int(self.url.rsplit(":", 1)[1])
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        req = json.dumps({"model": "org/m", "stream": True, "max_tokens": 4000,
                          "messages": [{"role": "user", "content": "long"}]}).encode()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(req) + req)
        self.assertIn(b"chat.completion.chunk", s.recv(65536))
        self.assertEqual(self.sim.stop(), 0, self.sim.logs())
        s.close()
        self.assertNotIn("ERROR: AddressSanitizer", self.sim.logs())
        self.assertNotIn("LeakSanitizer", self.sim.logs())


if __name__ == "__main__":
    unittest.main(verbosity=2)
