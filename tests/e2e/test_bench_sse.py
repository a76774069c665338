"""End-to-end: `holoscope bench` against a small OpenAI-style SSE server
written here, whose delays are known and whose own clock records when it
wrote each event.

The server streams a role chunk, TOKENS content chunks (the first after
FIRST_DELAY_S, the rest TOKEN_GAP_S apart), a finish chunk, a usage chunk
and [DONE].  bench's percentiles are compared with the server's own
record of the same requests: they must agree within the timer and
scheduling resolution (TOL_S), and TTFT can never be shorter than the
server's wait.  Special model names make the server fail on purpose.
"""
import http.server
import json
import os
import socket
import socketserver
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402

FIRST_DELAY_S = 0.12
TOKEN_GAP_S = 0.03
TOKENS = 6
TOL_S = 0.03  # timer + scheduling resolution on a loaded 2-core machine under sanitizers


def quantile(xs, q):
    """numpy's default (linear) quantile, as bench computes it."""
    xs = sorted(xs)
    if not xs:
        return 0.0
    h = q * (len(xs) - 1)
    lo = int(h)
    if lo + 1 >= len(xs):
        return xs[-1]
    return xs[lo] + (h - lo) * (xs[lo + 1] - xs[lo])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _send_json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/v1/models":
            self._send_json(200, {"object": "list", "data": [{"id": "known-model"}]})
        else:
            self._send_json(404, {"error": {"message": "no such path"}})

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _event(self, obj):
        self._chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        req = json.loads(self.rfile.read(n))
        t_recv = time.monotonic()
        srv = self.server
        with srv.lock:
            srv.requests.append(req)
            srv.auth.append(self.headers.get("Authorization"))
        model = req.get("model")
        if model == "fail":
            self._send_json(503, {"error": {"message": "overloaded", "type": "ServiceUnavailable"}})
            return
        if not req.get("stream"):
            time.sleep(FIRST_DELAY_S)
            self._send_json(200, {
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2}})
            with srv.lock:
                srv.e2e.append(time.monotonic() - t_recv)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        delta = lambda d, fin=None: {"choices": [{"index": 0, "delta": d, "finish_reason": fin}]}
        self._event(delta({"role": "assistant", "content": ""}))
        times = []
        for i in range(TOKENS):
            time.sleep(FIRST_DELAY_S if i == 0 else TOKEN_GAP_S)
            if model == "trunc" and i == 2:
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if model == "midstream" and i == 2:
                self._event({"error": {"message": "engine died", "type": "InternalServerError",
                                       "code": 500}})
                self._chunk(b"data: [DONE]\n\n")
                self._chunk(b"")
                return
            self._event(delta({"content": "tok%d " % i}))
            times.append(time.monotonic())
        self._event(delta({}, "stop"))
        self._event({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": TOKENS}})
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")
        with srv.lock:
            srv.ttft.append(times[0] - t_recv)
            srv.itl.extend(b - a for a, b in zip(times, times[1:]))
            srv.tpot.append((times[-1] - times[0]) / (TOKENS - 1))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()


class BenchAgainstKnownDelays(unittest.TestCase):
    def setUp(self):
        self.srv = Server(("127.0.0.1", 0), Handler)
        self.srv.lock = threading.Lock()
        self.srv.requests, self.srv.auth = [], []
        self.srv.ttft, self.srv.itl, self.srv.tpot, self.srv.e2e = [], [], [], []
        self.th = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.th.start()
        self.url = "http://127.0.0.1:%d" % self.srv.server_address[1]

    def tearDown(self):
        self.srv.shutdown()
        self.srv.server_close()

    def bench(self, *args, expect=0):
        code, out, err = holo.run(["bench", self.url] + list(args), timeout=90)
        self.assertEqual(code, expect, "stdout:\n%s\nstderr:\n%s" % (out, err))
        return out, err

    def bench_json(self, *args):
        out, err = self.bench(*args, "--json")
        return json.loads(out), err

    def assert_close(self, got, want, what):
        self.assertLessEqual(abs(got - want), TOL_S,
                             "%s: bench %.4f s, server %.4f s" % (what, got, want))

    def test_streaming_percentiles_match_the_servers_own_record(self):
        r, err = self.bench_json("--model", "m", "--concurrency", "3", "--requests", "12",
                                 "--header", "Authorization: Bearer sekret")
        self.assertEqual(err, "", "no progress line when stderr is not a terminal")
        self.assertEqual(r["outcomes"]["ok"], 12)
        self.assertEqual(r["errors"], 0)
        self.assertEqual(r["ttft"]["count"], 12)
        self.assertEqual(r["itl"]["count"], 12 * (TOKENS - 1))
        self.assertEqual(r["tpot"]["count"], 12)
        self.assertEqual(r["output_tokens"], 12 * TOKENS)
        self.assertEqual(r["input_tokens"], 12 * 5)
        for q in ("p50", "p90"):
            qq = float(q[1:]) / 100
            self.assert_close(r["ttft"][q], quantile(self.srv.ttft, qq), "ttft " + q)
            self.assert_close(r["tpot"][q], quantile(self.srv.tpot, qq), "tpot " + q)
        self.assert_close(r["itl"]["p50"], quantile(self.srv.itl, 0.5), "itl p50")
        self.assert_close(r["itl"]["mean"], sum(self.srv.itl) / len(self.srv.itl), "itl mean")
        # The server cannot have sent the first token before it waited.
        self.assertGreaterEqual(r["ttft"]["min"], FIRST_DELAY_S)
        self.assertGreaterEqual(r["e2e"]["min"], FIRST_DELAY_S + (TOKENS - 1) * TOKEN_GAP_S)
        self.assertEqual(set(self.srv.auth), {"Bearer sekret"})
        req = self.srv.requests[0]
        self.assertEqual(req["model"], "m")
        self.assertTrue(req["stream"])
        self.assertEqual(req["stream_options"], {"include_usage": True})
        self.assertEqual(req["messages"][0]["role"], "user")

    def test_non_streamed_requests_measure_e2e_only(self):
        r, _ = self.bench_json("--model", "m", "--no-stream", "--requests", "4",
                               "--concurrency", "2")
        self.assertEqual(r["outcomes"]["ok"], 4)
        self.assertEqual(r["ttft"]["count"], 0)
        self.assertEqual(r["e2e"]["count"], 4)
        self.assertGreaterEqual(r["e2e"]["min"], FIRST_DELAY_S)
        self.assert_close(r["e2e"]["p50"], quantile(self.srv.e2e, 0.5), "e2e p50")
        self.assertFalse(self.srv.requests[0]["stream"])

    def test_errors_are_reported_by_kind(self):
        r, _ = self.bench_json("--model", "fail", "--model", "trunc", "--model", "midstream",
                               "--requests", "12", "--concurrency", "3", "--seed", "3")
        o = r["outcomes"]
        self.assertEqual(o["ok"], 0)
        self.assertEqual(o["http_5xx"] + o["stream_truncated"] + o["error_midstream"], 12)
        for kind in ("http_5xx", "stream_truncated", "error_midstream"):
            self.assertGreater(o[kind], 0, kind)
        self.assertEqual(r["errors"], 12)
        self.assertEqual(r["goodput"], 0)
        text, _ = self.bench("--model", "fail", "--requests", "2")
        self.assertIn("http_5xx=2", text)
        self.assertIn("HTTP 503", text)

    def test_open_loop_sends_the_requested_count(self):
        r, _ = self.bench_json("--model", "m", "--rate", "40", "--requests", "8",
                               "--output-len", "4")
        self.assertEqual(r["sent"], 8)
        self.assertEqual(r["outcomes"]["ok"], 8)
        self.assertEqual(len(self.srv.requests), 8)
        self.assertEqual({q["max_tokens"] for q in self.srv.requests}, {4})

    def test_goodput_counts_requests_within_the_slo(self):
        r, _ = self.bench_json("--model", "m", "--requests", "3", "--slo-ttft", "10ms")
        self.assertEqual(r["good"], 0)  # the server waits longer than 10 ms
        r, _ = self.bench_json("--model", "m", "--requests", "3", "--slo-ttft", "30s",
                               "--slo-tpot", "10s")
        self.assertEqual(r["good"], 3)

    def test_model_is_discovered_and_prompts_come_from_a_file(self):
        tmp = tempfile.mkdtemp(prefix="hs-bench-")
        path = os.path.join(tmp, "prompts.jsonl")
        with open(path, "w") as f:
            f.write('{"prompt": "What is the capital of France?", "max_tokens": 7}\n')
        r, _ = self.bench_json("--requests", "2", "--prompts", path, "--api", "completions")
        self.assertEqual(r["outcomes"]["ok"], 2)
        req = self.srv.requests[0]
        self.assertEqual(req["model"], "known-model")
        self.assertEqual(req["prompt"], "What is the capital of France?")
        self.assertEqual(req["max_tokens"], 7)
        with open(path, "a") as f:
            f.write('{"prompt": 42}\n')
        _, err = self.bench("--requests", "1", "--model", "m", "--prompts", path, expect=1)
        self.assertIn("prompts.jsonl:2:", err)

    def test_a_progress_line_is_shown_only_on_a_terminal(self):
        import pty
        import select
        import subprocess
        master, slave = pty.openpty()
        p = subprocess.Popen([holo.BIN, "bench", self.url, "--model", "m", "--concurrency", "2",
                              "--duration", "2500ms", "--json"],
                             stdout=subprocess.PIPE, stderr=slave)
        os.close(slave)
        seen = b""
        deadline = time.time() + 60
        while time.time() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
            elif p.poll() is not None:
                break
        out = p.stdout.read()
        p.wait(30)
        p.stdout.close()
        os.close(master)
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"\r\x1b[K", seen)
        self.assertIn(b"sent ", seen)
        self.assertIn(b"in-flight", seen)
        self.assertGreater(json.loads(out)["outcomes"]["ok"], 0)

    def test_usage_errors_exit_2_with_a_message(self):
        for args, msg in ((["--rate", "0"], "--rate"), (["--concurrency", "x"], "--concurrency"),
                          (["--duration", "soon"], "--duration"), (["--bogus"], "unknown option"),
                          (["--api", "embeddings"], "--api"), (["--header", "nocolon"], "--header"),
                          (["--input-len", "10", "--input-spread", "10"], "--input-spread")):
            code, _, err = holo.run(["bench", self.url, "--model", "m"] + args)
            self.assertEqual(code, 2, args)
            self.assertIn(msg, err)
        code, _, err = holo.run(["bench"])
        self.assertEqual(code, 2)
        self.assertIn("missing URL", err)
        code, out, _ = holo.run(["bench", "--help"])
        self.assertEqual(code, 0)
        self.assertIn("SYNOPSIS", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
