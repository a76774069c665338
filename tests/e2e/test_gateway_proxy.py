"""End-to-end: the gateway of `holoscope serve` in front of a test upstream
(gw_upstream.py, replaying shared/fixtures/sse with injected delays and
faults), over real sockets on 127.0.0.1.

Checks: byte-identical relay (minus the injected usage chunk when the
client did not ask for usage), headers (Authorization untouched,
traceparent rewritten, X-Request-Id forwarded), the stored histograms
against the injected delays (through the Prometheus API of serve), the
OpenAI-style errors (404 listing routes, 400, 502, 504), mid-stream faults
(idle timeout -> error event), garbage and huge answers, a client leaving
mid-stream (upstream closed, counted client_cancelled), a slow client
(the upstream read is paused, memory stays flat), health checks, a reload,
and 1,000 concurrent streams (200 under a low fd limit) with flat fd count
and RSS afterwards.
"""
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import gw_upstream  # noqa: E402
import holo  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


CONFIG = """
collectors: {host: false, gpu: false}
rules: {default_pack: false}
gateway:
  listen: 127.0.0.1:0
  store_interval: 500ms
  max_connections: 2048
  tenant_header: x-tenant
  health_check: {path: /health, interval: 200ms, timeout: 500ms, unhealthy_threshold: 1}
  routes:
    - model: test-model
      upstreams: [%(up)s]
    - model: slow-model
      upstreams: [%(up)s]
      timeouts: {first_byte: 400ms, idle: 400ms}
    - model: huge-model
      upstreams: [%(up)s]
      max_response_size: 1MiB
    - model: down-model
      upstreams: [http://127.0.0.1:%(dead)d]
      timeouts: {connect: 1s}
    - model: alias-model
      upstream_model: real-model
      headers: {x-injected: from-route}
      upstreams: [%(up)s]
    - model: ha-model
      upstreams: [http://127.0.0.1:%(dead)d, %(up)s]
    - model: "glob-*"
      name: globbed
      upstreams: [%(up)s]
    - model: "delay-*"
      name: delayed
      upstreams: [%(up)s]
    - model: tgi-native
      provider: tgi
      paths: [/generate, /generate_stream]
      upstreams: [%(up)s]
"""


def events_of(data):
    return [e + b"\n\n" for e in data.split(b"\n\n") if e]


class GatewayEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.up = gw_upstream.Upstream()
        # A small ASan quarantine, so that RSS follows what is really held.
        asan = os.environ.get("ASAN_OPTIONS", "")
        asan += (":" if asan else "") + "quarantine_size_mb=1:thread_local_quarantine_size_kb=64"
        cls.srv = holo.Server(config=CONFIG % {"up": cls.up.url, "dead": free_port()},
                              limit_s=110, env={"ASAN_OPTIONS": asan})
        deadline = time.time() + 30
        cls.gw_port = None
        while time.time() < deadline and cls.gw_port is None:
            m = re.search(r"gateway listening.*?port=(\d+)", cls.srv.logs())
            if m:
                cls.gw_port = int(m.group(1))
            else:
                time.sleep(0.05)
        if cls.gw_port is None:
            raise RuntimeError("gateway did not start:\n" + cls.srv.logs())

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        logs = cls.srv.logs()
        cls.srv.close()
        cls.up.close()
        if code != 0:
            raise RuntimeError("holoscope exited %r:\n%s" % (code, logs[-4000:]))

    # ---- helpers ----

    def post(self, path, body, headers=None, timeout=20):
        c = http.client.HTTPConnection("127.0.0.1", self.gw_port, timeout=timeout)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        c.request("POST", path, body=data, headers=h)
        r = c.getresponse()
        out = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        return r.status, hdrs, out

    def chat(self, model="test-model", stream=False, headers=None, usage=None, timeout=20):
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        if stream:
            body["stream"] = True
        if usage is not None:
            body["stream_options"] = {"include_usage": usage}
        return self.post("/v1/chat/completions", body, headers, timeout)

    def metric(self, name, match=""):
        """Sum of the samples of `name` on serve's /metrics whose labels contain `match`."""
        st, _, body = self.srv.get("/metrics")
        self.assertEqual(st, 200)
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                if match in line:
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def query(self, expr):
        st, _, body = self.srv.get("/api/v1/query?query=" + urllib.parse.quote(expr))
        self.assertEqual(st, 200, body)
        res = json.loads(body)["data"]["result"]
        return [float(r["value"][1]) for r in res]

    @staticmethod
    def fixture(name):
        with open(os.path.join(gw_upstream.SSE_DIR, name), "rb") as f:
            return f.read()

    # ---- tests ----

    def test_non_streaming_answer_is_relayed_with_headers_and_overhead(self):
        st, h, body = self.chat(headers={"Authorization": "Bearer sk-secret-1",
                                         "traceparent":
                                         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                                         "X-Request-Id": "req-nonstream-1"})
        self.assertEqual(st, 200, body)
        self.assertEqual(json.loads(body), gw_upstream.NON_STREAM)
        self.assertIn("x-holoscope-overhead-us", h)
        self.assertGreaterEqual(int(h["x-holoscope-overhead-us"]), 0)
        rec = [r for r in self.up.recorded()
               if r["headers"].get("X-Request-Id") == "req-nonstream-1"]
        self.assertEqual(len(rec), 1)
        hd = rec[0]["headers"]
        self.assertEqual(hd.get("Authorization"), "Bearer sk-secret-1")
        tp = hd.get("traceparent")
        self.assertRegex(tp, r"^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$")
        self.assertNotIn("00f067aa0ba902b7", tp)

    def test_route_rewrites_the_model_and_injects_headers(self):
        st, _, _ = self.chat(model="alias-model", stream=True,
                             headers={"X-Request-Id": "req-rewrite", "x-injected": "from-client"})
        self.assertEqual(st, 200)
        rec = [r for r in self.up.recorded() if r["headers"].get("X-Request-Id") == "req-rewrite"]
        self.assertEqual(len(rec), 1)
        body = json.loads(rec[0]["body"])
        self.assertEqual(body["model"], "real-model")
        self.assertTrue(body["stream_options"]["include_usage"])
        self.assertEqual(rec[0]["headers"].get("x-injected"), "from-route")
        self.assertGreater(self.metric("holoscope_gateway_requests_total",
                                       'model="real-model",route="alias-model"'), 0)

    def test_invalid_traceparent_starts_a_new_trace(self):
        st, _, _ = self.chat(headers={"traceparent": "00-4BF92F3577B34DA6A3CE929D0E0E4736-"
                                      "00f067aa0ba902b7-01", "X-Request-Id": "req-tp-bad"})
        self.assertEqual(st, 200)
        rec = [r for r in self.up.recorded() if r["headers"].get("X-Request-Id") == "req-tp-bad"]
        tp = rec[0]["headers"]["traceparent"]
        self.assertRegex(tp, r"^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$")
        self.assertNotIn("4bf92f3577b34da6", tp.lower())

    def test_stream_with_usage_requested_is_byte_identical(self):
        st, h, body = self.chat(stream=True, usage=True)
        self.assertEqual(st, 200)
        self.assertTrue(h["content-type"].startswith("text/event-stream"))
        self.assertEqual(h.get("cache-control"), "no-cache")
        self.assertEqual(h.get("x-accel-buffering"), "no")
        self.assertEqual(body, self.fixture("openai-chat-stream.txt"))

    def test_stream_without_usage_gets_the_injected_usage_chunk_stripped(self):
        st, _, body = self.chat(stream=True, headers={"X-Request-Id": "req-inject-1"})
        self.assertEqual(st, 200)
        want = [e for e in events_of(self.fixture("openai-chat-stream.txt"))
                if not (b'"choices":[]' in e and b'"usage":{' in e)]
        self.assertEqual(body, b"".join(want))
        rec = [r for r in self.up.recorded() if r["headers"].get("X-Request-Id") == "req-inject-1"]
        self.assertTrue(json.loads(rec[0]["body"])["stream_options"]["include_usage"])

    def test_other_fixtures_pass_through_unchanged(self):
        for name in ("openai-chat-stream-n2.txt", "openai-chat-stream-tool-call.txt",
                     "vllm-chat-stream-continuous-usage.txt", "llamacpp-chat-stream-timings.txt"):
            st, _, body = self.chat(stream=True, usage=True, headers={"x-test-fixture": name})
            self.assertEqual(st, 200)
            self.assertEqual(body, self.fixture(name), name)
        st, _, body = self.post("/v1/responses", {"model": "glob-x", "stream": True,
                                                  "input": "hi"},
                                {"x-test-fixture": "openai-responses-stream.txt"})
        self.assertEqual(st, 200)
        self.assertEqual(body, self.fixture("openai-responses-stream.txt"))

    def test_tenant_label_is_a_hash_of_the_header_never_the_value(self):
        st, _, _ = self.chat(model="glob-tenant", headers={"x-tenant": "acme-secret-key"})
        self.assertEqual(st, 200)
        _, _, body = self.srv.get("/metrics")
        text = body.decode()
        self.assertNotIn("acme-secret-key", text)
        self.assertRegex(text, r'holoscope_gateway_requests_total\{[^}]*tenant="[0-9a-f]{16}"')

    def test_counters_reach_the_store(self):
        st, _, _ = self.chat(model="glob-counted")
        self.assertEqual(st, 200)
        deadline = time.time() + 10
        vals = []
        while time.time() < deadline and not vals:
            vals = self.query('holoscope_gateway_requests_total{route="globbed",outcome="ok",'
                              'status_class="2xx",operation="chat"}')
            time.sleep(0.2)
        self.assertTrue(vals and vals[0] >= 1, vals)
        le = self.query('count(holoscope_gateway_overhead_seconds_bucket{route="globbed",'
                        'phase="pre",le="5e-05"})')
        self.assertEqual(le, [1.0])

    def test_stored_histograms_agree_with_the_injected_delays(self):
        for _ in range(3):
            st, _, _ = self.chat(model="delay-60", stream=True, usage=True,
                                 headers={"x-test-delay-ms": "60"})
            self.assertEqual(st, 200)
        sel = '{route="delayed"}'
        deadline = time.time() + 15
        vals = []
        while time.time() < deadline:
            vals = self.query("gen_ai_client_operation_time_per_output_chunk_seconds_count" + sel)
            if vals and vals[0] >= 3 * 8:
                break
            time.sleep(0.3)
        self.assertTrue(vals and vals[0] >= 24, vals)  # 9 output events: 8 gaps each
        s = self.query("gen_ai_client_operation_time_per_output_chunk_seconds_sum" + sel)[0]
        c = self.query("gen_ai_client_operation_time_per_output_chunk_seconds_count" + sel)[0]
        self.assertGreater(s / c, 0.045)
        self.assertLess(s / c, 0.2)
        s = self.query("gen_ai_server_time_to_first_token_seconds_sum" + sel)[0]
        c = self.query("gen_ai_server_time_to_first_token_seconds_count" + sel)[0]
        self.assertEqual(c, 3)
        self.assertGreater(s / c, 0.05)  # one delay before the first output event
        self.assertLess(s / c, 0.5)
        le = self.query('gen_ai_server_time_to_first_token_seconds_bucket'
                        '{route="delayed",le="2.0"}')
        self.assertEqual(le, [3.0])
        tok = self.query('holoscope_gateway_tokens_total{route="delayed",token_type="output"}')
        self.assertEqual(tok, [27.0])  # usage 9 per request

    def test_gateway_errors_are_openai_shaped(self):
        st, _, body = self.chat(model="no-such-model")
        self.assertEqual(st, 404)
        err = json.loads(body)["error"]
        self.assertEqual(err["code"], "model_not_found")
        self.assertEqual(err["type"], "invalid_request_error")
        self.assertIn("test-model", err["message"])
        self.assertIn("glob-*", err["message"])
        st, _, body = self.post("/v1/chat/completions", b'{"model": "test-model", ')
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(body)["error"]["code"], "invalid_json")
        st, _, body = self.post("/v1/chat/completions", {"messages": []})
        self.assertEqual(st, 400)
        self.assertEqual(json.loads(body)["error"]["param"], "model")
        st, _, body = self.post("/v1/chat/completions", b"\x00\xff garbage")
        self.assertEqual(st, 400)

    def test_a_native_request_without_a_model_takes_the_route_bound_to_its_path(self):
        st, _, body = self.post("/generate_stream",
                                {"inputs": "hi", "parameters": {"max_new_tokens": 20,
                                                                "details": True}},
                                {"x-test-fixture": "tgi-generate-stream.txt"})
        self.assertEqual(st, 200, body)
        self.assertEqual(body, self.fixture("tgi-generate-stream.txt"))
        sel = '{route="tgi-native",model="tgi-native"'
        deadline = time.time() + 10
        vals = []
        while time.time() < deadline and not vals:
            vals = self.query('holoscope_gateway_requests_total' + sel +
                              ',operation="text_completion",outcome="ok"}')
            time.sleep(0.2)
        self.assertEqual(vals, [1.0])
        # TGI's details: 8 generated tokens, input_length 9, eos_token -> stop
        self.assertEqual(self.query('holoscope_gateway_tokens_total' + sel +
                                    ',token_type="output"}'), [8.0])
        self.assertEqual(self.query('holoscope_gateway_tokens_total' + sel +
                                    ',token_type="input"}'), [9.0])
        self.assertEqual(self.query('holoscope_gateway_finish_reason_total' + sel +
                                    ',finish_reason="stop"}'), [1.0])
        self.assertEqual(self.query('gen_ai_server_time_to_first_token_seconds_count' + sel +
                                    '}'), [1.0])
        # a model-less request on a path bound to no route is still a 400
        st, _, body = self.post("/completion", {"prompt": "hi", "stream": True})
        self.assertEqual(st, 400)
        err = json.loads(body)["error"]
        self.assertEqual((err["code"], err["param"]), ("missing_model", "model"))
        self.assertIn("paths:", err["message"])

    def test_upstream_down_is_502(self):
        st, _, body = self.chat(model="down-model")
        self.assertEqual(st, 502)
        self.assertEqual(json.loads(body)["error"]["code"], "upstream_unreachable")

    def test_health_checks_keep_requests_off_a_dead_replica(self):
        time.sleep(1.0)  # a few check rounds
        codes = [self.chat(model="ha-model")[0] for _ in range(20)]
        self.assertEqual(codes, [200] * 20)

    def test_slow_first_byte_is_504(self):
        t0 = time.time()
        st, _, body = self.chat(model="slow-model", headers={"x-test-first-byte-ms": "1500"})
        self.assertEqual(st, 504)
        self.assertEqual(json.loads(body)["error"]["code"], "upstream_timeout")
        self.assertLess(time.time() - t0, 1.4)

    def test_stall_mid_stream_ends_with_an_error_event(self):
        st, _, body = self.chat(model="slow-model", stream=True, usage=True,
                                headers={"x-test-mode": "stall"})
        self.assertEqual(st, 200)
        ev = events_of(body)
        self.assertEqual(ev[:3], events_of(self.fixture("openai-chat-stream.txt"))[:3])
        self.assertIn(b'"code":"upstream_stream_error"', ev[-2])
        self.assertEqual(ev[-1], b"data: [DONE]\n\n")

    def test_garbage_sse_is_relayed_and_the_server_keeps_serving(self):
        st, _, body = self.chat(stream=True, headers={"x-test-mode": "garbage"})
        self.assertEqual(st, 200)
        self.assertTrue(body.startswith(b"\x00\xffthis is not SSE"))
        st, _, _ = self.chat()
        self.assertEqual(st, 200)

    def test_upstream_5xx_passes_through(self):
        st, _, body = self.chat(headers={"x-test-mode": "status500"})
        self.assertEqual(st, 500)
        self.assertEqual(json.loads(body)["error"]["type"], "InternalServerError")

    def test_huge_response_past_the_route_ceiling_is_502(self):
        st, _, body = self.chat(model="huge-model", headers={"x-test-mode": "huge"})
        self.assertEqual(st, 502)
        st, _, body = self.chat(headers={"x-test-mode": "huge",
                                         "x-test-huge-bytes": str(4 << 20)})
        self.assertEqual(st, 200)
        self.assertGreater(len(body), (4 << 20) - 100)

    def test_models_are_listed_from_the_routes(self):
        c = http.client.HTTPConnection("127.0.0.1", self.gw_port, timeout=5)
        c.request("GET", "/v1/models")
        r = c.getresponse()
        ids = [m["id"] for m in json.loads(r.read())["data"]]
        c.close()
        self.assertEqual(ids, ["test-model", "slow-model", "huge-model", "down-model",
                               "alias-model", "ha-model", "glob-*", "delay-*", "tgi-native"])

    def test_a_slow_client_pauses_the_upstream_read(self):
        # 48 MiB: more than the slow phase reads (~15 MiB) plus every socket
        # buffer on the way (~20 MiB at most), so the upstream can only finish
        # early if the gateway buffers.
        total = 48 << 20
        _, rss0 = self.fds_rss()
        c = http.client.HTTPConnection("127.0.0.1", self.gw_port, timeout=30)
        c.request("POST", "/v1/chat/completions",
                  body=json.dumps({"model": "test-model", "stream": True,
                                   "stream_options": {"include_usage": True}}),
                  headers={"Content-Type": "application/json", "x-test-mode": "flood",
                           "x-test-flood-bytes": str(total)})
        r = c.getresponse()
        got, peak = 0, rss0
        t0 = time.time()
        while True:
            b = r.read(256 << 10)
            if not b:
                break
            got += len(b)
            if time.time() - t0 < 3.0:
                time.sleep(0.05)  # about 5 MB/s: far slower than the upstream
                peak = max(peak, self.fds_rss()[1])
        c.close()
        self.assertGreater(got, total)
        done_at = self.up.counters().get("flood_done_at", 0)
        # Without backpressure the gateway would buffer tens of MiB.
        self.assertLess(peak - rss0, 12 * 1024, (rss0, peak, done_at - t0))  # kB
        self.assertGreater(done_at, t0 + 2.5)  # the upstream was held back too

    def test_client_disconnect_cancels_the_upstream_call(self):
        before = self.metric("holoscope_gateway_requests_total", 'outcome="client_cancelled"')
        aborted = self.up.counters()["aborted"]
        s = socket.create_connection(("127.0.0.1", self.gw_port), timeout=10)
        body = json.dumps({"model": "test-model", "stream": True, "messages": []}).encode()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-test-delay-ms: 300\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(body), body))
        got = b""
        while b"data:" not in got:
            got += s.recv(65536)
        s.close()
        deadline = time.time() + 10
        while time.time() < deadline:
            if (self.metric("holoscope_gateway_requests_total", 'outcome="client_cancelled"')
                    > before and self.up.counters()["aborted"] > aborted):
                break
            time.sleep(0.1)
        self.assertGreater(self.metric("holoscope_gateway_requests_total",
                                       'outcome="client_cancelled"'), before)
        self.assertGreater(self.up.counters()["aborted"], aborted)

    def test_concurrent_streams_leave_fds_and_rss_flat(self):
        # 1,000 streams when the fd limit allows (each stream holds a client, a
        # gateway and two upstream-side sockets), else 200.
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        n = int(os.environ.get("GW_E2E_STREAMS", "1000" if soft >= 8192 else "200"))
        want = self.fixture("openai-chat-stream.txt")

        def one(results, i):
            try:
                st, _, body = self.chat(stream=True, usage=True,
                                        headers={"x-test-delay-ms": "5"}, timeout=60)
                results[i] = st == 200 and body == want
            except Exception as e:  # noqa: BLE001
                results[i] = repr(e)

        def wave():
            results = [None] * n
            ts = [threading.Thread(target=one, args=(results, i)) for i in range(n)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(90)
            bad = [r for r in results if r is not True]
            self.assertEqual(bad, [], bad[:5])

        fds0, _ = self.fds_rss()
        wave()  # warm-up: pools and buffers reach their size
        time.sleep(0.5)
        fds1, rss1 = self.fds_rss()
        wave()
        wave()
        time.sleep(0.5)
        fds2, rss2 = self.fds_rss()
        # Idle upstream keep-alive connections stay pooled (at most one per
        # concurrent stream); a leak would add one or two fds per request.
        self.assertLessEqual(fds2, fds0 + n + 16, (fds0, fds1, fds2))
        self.assertLessEqual(fds2, fds1 + n // 2, (fds0, fds1, fds2))
        self.assertLess(rss2, rss1 + 32 * 1024, (rss1, rss2))  # kB
        st, _, _ = self.chat()
        self.assertEqual(st, 200)

    def test_zzz_reload_applies_new_routes(self):
        path = os.path.join(self.srv.tmp, "holoscope.yml")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text + "    - model: added-on-reload\n      upstreams: [%s]\n" % self.up.url)
        self.srv.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline:
            st, _, _ = self.chat(model="added-on-reload")
            if st == 200:
                break
            time.sleep(0.1)
        self.assertEqual(st, 200)
        st, _, _ = self.chat()
        self.assertEqual(st, 200)

    def fds_rss(self):
        pid = self.srv.proc.pid
        fds = len(os.listdir("/proc/%d/fd" % pid))
        with open("/proc/%d/status" % pid) as f:
            rss = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
        return fds, rss

    def test_zz_outcomes_are_counted(self):
        # Runs last (alphabetical): every earlier case is in the counters.
        for outcome in ("ok", "gateway_error", "upstream_unreachable", "timeout",
                        "client_cancelled", "http_error"):
            self.assertGreater(self.metric("holoscope_gateway_requests_total",
                                           'outcome="%s"' % outcome), 0, outcome)
        self.assertGreater(self.metric("holoscope_gateway_overhead_seconds_count",
                                       'phase="pre"'), 0)


class GatewayConfigErrors(unittest.TestCase):
    def serve_with(self, text):
        d = tempfile.mkdtemp(prefix="hs-gwcfg-")
        try:
            path = os.path.join(d, "bad.yml")
            with open(path, "w") as f:
                f.write(text)
            return holo.run(["serve", "--config", path, "--data", os.path.join(d, "data"),
                             "--listen", "127.0.0.1:0"], timeout=30)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_a_bad_route_is_a_usage_error_naming_its_position(self):
        code, _, err = self.serve_with("gateway:\n  routes:\n    - model: a\n"
                                       "      upstreams: [ftp://x]\n")
        self.assertEqual(code, 2, err)
        self.assertIn("bad.yml:4:", err)
        self.assertIn("gateway.routes[0].upstreams[0]", err)

    def test_listening_beyond_loopback_needs_allow_remote(self):
        code, _, err = self.serve_with("gateway:\n  listen: 0.0.0.0:0\n")
        self.assertEqual(code, 2, err)
        self.assertIn("gateway.listen", err)


if __name__ == "__main__":
    unittest.main()
