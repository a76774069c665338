"""End to end: `holoscope demo` brings the whole product alive.

Within 60 s of start the API must answer TTFT quantiles and tokens/s per
model, GPU utilisation per simulated GPU, captured requests must exist, and
after the first scheduled fault (an error burst on the SGLang model) the
matching alert must be pending or firing.  Ctrl-C (SIGINT) stops everything
and removes the temporary data directory.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
QWEN = "Qwen/Qwen2.5-7B-Instruct"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Demo:
    """`holoscope demo` on free ports, bounded in time, stopped by the test."""

    def __init__(self, args=(), limit_s=110):
        self.gw_port = free_port()
        argv = [holo.BIN, "demo", "--listen", "127.0.0.1:0",
                "--gateway-listen", "127.0.0.1:%d" % self.gw_port,
                "--first-fault", "3s", "--rate", "6"] + list(args)
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.text = ""
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.watchdog = threading.Timer(limit_s, self.proc.kill)
        self.watchdog.daemon = True
        self.watchdog.start()
        self.port = self._wait(r"msg=listening .*port=(\d+)", 30)
        self.base = "http://127.0.0.1:%s" % self.port

    def _read(self):
        for line in iter(self.proc.stdout.readline, b""):
            with self.lock:
                self.text += line.decode(errors="replace")

    def output(self):
        with self.lock:
            return self.text

    def _wait(self, pattern, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(pattern, self.output())
            if m:
                return m.group(1)
            if self.proc.poll() is not None:
                raise RuntimeError("demo exited (%d):\n%s" % (self.proc.returncode, self.output()))
            time.sleep(0.05)
        raise RuntimeError("demo did not print %r:\n%s" % (pattern, self.output()))

    def get_json(self, path, **params):
        url = self.base + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def query(self, expr):
        status, body = self.get_json("/api/v1/query", query=expr)
        if status != 200 or body.get("status") != "success":
            return []
        return body["data"]["result"]

    def stop(self, sig=signal.SIGINT, timeout=30):
        return holo.stop_process(self.proc, sig, timeout)

    def close(self):
        self.stop(signal.SIGKILL)
        self.watchdog.cancel()
        self.reader.join(5)
        self.proc.stdout.close()


def wait_for(fn, timeout, step=1.0):
    """Calls fn until it returns something truthy or the time is up."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(step)
    return last


class DemoTest(unittest.TestCase):
    def test_demo_brings_quality_infrastructure_captures_and_alerts_alive(self):
        d = Demo()
        try:
            t0 = time.time()
            out = d.output()
            self.assertIn("holoscope demo", out)
            m = re.search(r"data\s+(\S+) \(removed at exit\)", out)
            self.assertIsNotNone(m, out)
            tmp_dir = m.group(1)
            self.assertTrue(os.path.isdir(tmp_dir))

            def per_model(expr):
                res = d.query(expr)
                models = {r["metric"].get("model") for r in res
                          if r["value"][1] not in ("NaN", "+Inf", "-Inf")}
                return models if {LLAMA, QWEN} <= models else None

            # TTFT quantiles per model, as the user got them (gateway) ...
            ttft = wait_for(lambda: per_model(
                "histogram_quantile(0.95, sum by (le, model) "
                "(rate(gen_ai_server_time_to_first_token_seconds_bucket[1m])))"), 60)
            self.assertTrue(ttft, "no gateway TTFT quantiles per model:\n" + d.output()[-3000:])
            # ... and as the engines report them (scraped, unified names)
            eng = wait_for(lambda: per_model(
                "histogram_quantile(0.95, sum by (le, model) "
                "(rate(llm_server_time_to_first_token_seconds_bucket[1m])))"), 60 - (time.time() - t0))
            self.assertTrue(eng, "no engine TTFT quantiles per model")
            toks = wait_for(lambda: per_model(
                "sum by (model) (rate(llm_server_generation_tokens_total[1m])) > 0"),
                max(5, 60 - (time.time() - t0)))
            self.assertTrue(toks, "no tokens/s per model")

            gpus = wait_for(lambda: d.query("hw_gpu_utilization_ratio"), max(5, 60 - (time.time() - t0)))
            uuids = {r["metric"].get("gpu_uuid") for r in gpus or []}
            self.assertGreaterEqual(len(uuids), 3, "GPU utilisation per simulated GPU: %r" % gpus)

            def captures():
                now = time.time()
                status, body = d.get_json("/api/v1/captures", start=str(now - 600), end=str(now + 60),
                                          limit="20")
                if status != 200:
                    return None
                data = body.get("data")
                recs = data if isinstance(data, list) else (data or {}).get("records", [])
                return recs or None
            recs = wait_for(captures, max(5, 60 - (time.time() - t0)))
            self.assertTrue(recs, "no captured requests")
            self.assertLess(time.time() - t0, 75)

            # the error burst started 3 s in: its alert is pending or firing
            alert = wait_for(lambda: d.query(
                'ALERTS{alertname="LLMErrorRateHigh", model="%s"}' % QWEN), 60, step=2)
            self.assertTrue(alert, "LLMErrorRateHigh is not pending or firing:\n%s" %
                            json.dumps(d.get_json("/api/v1/alerts")[1])[:2000])
            self.assertIn(alert[0]["metric"]["alertstate"], ("pending", "firing"))

            self.assertEqual(d.stop(signal.SIGINT), 0, d.output()[-3000:])
            self.assertFalse(os.path.exists(tmp_dir), "temporary data directory left behind")
        finally:
            d.close()

    def test_demo_rejects_bad_options_with_a_precise_message(self):
        code, _, err = holo.run(["demo", "--period", "soon"])
        self.assertEqual(code, 2)
        self.assertIn("--period", err)
        code, _, err = holo.run(["demo", "--config", "x.yml"])
        self.assertEqual(code, 2)
        self.assertIn("demo writes its own configuration", err)
        code, out, _ = holo.run(["demo", "--help"])
        self.assertEqual(code, 0)
        self.assertIn("SYNOPSIS", out)


if __name__ == "__main__":
    unittest.main()
