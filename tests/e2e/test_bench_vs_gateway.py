"""End-to-end: `holoscope bench` through the gateway of `holoscope serve` to
the simulator (`holoscope sim`), and the gateway's own per-request
measurements of the same requests (its capture log at 100 %, read back
through GET /api/v1/captures) agree with what bench reports.

bench starts its clock when it hands a request to its HTTP client and the
gateway when it has read the request headers, and bench reads each event
after the gateway forwarded it: per request bench's TTFT and E2E can only
be larger, by the loopback hop and the gateway's overhead.  So bench's
percentiles must lie at or above the gateway's and within TOL of them.
TPOT is a difference of two output times, so it agrees both ways.

Skips (saying so) only when `holoscope sim` or the gateway is not in the
binary yet.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402

MODEL = "bench-model"
REQUESTS = 40
TOL_ABS_S = 0.025  # loopback hop + gateway overhead + scheduling under sanitizers
TOL_REL = 0.10
EPS_S = 0.002      # the two clocks are read at slightly different points


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


def has_command(name):
    code, out, err = holo.run([name, "--help"], timeout=30)
    return code == 0 and "SYNOPSIS" in out


class Sim:
    """`holoscope sim` with one vLLM-like replica; its URL from stdout."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [holo.BIN, "sim", "--engine", "bench:vllm:%s:1" % MODEL, "--seed", "3"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.watchdog = threading.Timer(110, self.proc.kill)
        self.watchdog.daemon = True
        self.watchdog.start()
        self.url = None
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline().decode(errors="replace")
            if not line:
                break
            m = re.search(r"^replica .*url=(\S+)", line)
            if m and self.url is None:
                self.url = m.group(1).rstrip("/")
            if line.strip() == "ready":
                break
        if self.url is None:
            self.close()
            raise RuntimeError("holoscope sim printed no replica URL")

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.watchdog.cancel()
        self.proc.stdout.close()


CONFIG = """
collectors: {host: false, gpu: false}
rules: {default_pack: false}
gateway:
  listen: 127.0.0.1:0
  store_interval: 500ms
  routes:
    - model: %(model)s
      upstreams: [%(up)s]
capture:
  dir: %(dir)s
  sampling_percentage: 100
  extensions: true
"""


class BenchAgreesWithTheGateway(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not has_command("sim"):
            raise unittest.SkipTest("`holoscope sim` is not in the binary yet")
        cls.tmp = tempfile.mkdtemp(prefix="hs-bench-gw-")
        cls.sim = Sim()
        try:
            cls.srv = holo.Server(config=CONFIG % {"model": MODEL, "up": cls.sim.url,
                                                   "dir": os.path.join(cls.tmp, "captures")},
                                  limit_s=110)
        except RuntimeError as e:
            cls.sim.close()
            if "gateway" in str(e):
                raise unittest.SkipTest("the gateway is not in the binary yet: %s" %
                                        str(e).splitlines()[-1])
            raise
        cls.gw_port = None
        deadline = time.time() + 20
        while time.time() < deadline and cls.gw_port is None:
            m = re.search(r"gateway listening.*?port=(\d+)", cls.srv.logs())
            if m:
                cls.gw_port = int(m.group(1))
            else:
                time.sleep(0.05)
        if cls.gw_port is None:
            cls.srv.close()
            cls.sim.close()
            raise unittest.SkipTest("the gateway is not in the binary yet (serve started "
                                    "no gateway listener)")

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        logs = cls.srv.logs()
        cls.srv.close()
        cls.sim.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if code != 0:
            raise RuntimeError("holoscope serve exited %r:\n%s" % (code, logs[-4000:]))

    def gateway_records(self, want):
        """The gateway's capture records of MODEL, once `want` are there."""
        deadline = time.time() + 30
        recs = []
        while time.time() < deadline:
            st, _, body = self.srv.get("/api/v1/captures?" + urllib.parse.urlencode(
                {"model": MODEL, "limit": 1000}))
            self.assertEqual(st, 200, body)
            recs = [r["holoscope"] for r in json.loads(body)["data"] if r.get("holoscope")]
            if len(recs) >= want:
                return recs
            time.sleep(0.2)
        self.fail("the gateway captured %d of %d requests" % (len(recs), want))

    def assert_agrees(self, what, bench, gateway, q, one_sided=True):
        b = bench[q]
        g = quantile(gateway, float(q[1:]) / 100)
        tol = TOL_ABS_S + TOL_REL * g
        msg = "%s %s: bench %.4f s, gateway %.4f s" % (what, q, b, g)
        if one_sided:
            self.assertGreaterEqual(b, g - EPS_S, msg)
            self.assertLessEqual(b, g + tol, msg)
        else:
            self.assertLessEqual(abs(b - g), tol, msg)

    def test_bench_percentiles_agree_with_the_gateways_measurements(self):
        code, out, err = holo.run(
            ["bench", "http://127.0.0.1:%d" % self.gw_port, "--model", MODEL,
             "--concurrency", "4", "--requests", str(REQUESTS), "--input-len", "32",
             "--output-len", "24", "--seed", "7", "--json"], timeout=100)
        self.assertEqual(code, 0, err)
        r = json.loads(out)
        self.assertEqual(r["outcomes"]["ok"], REQUESTS, out)
        recs = self.gateway_records(REQUESTS)
        self.assertEqual(len(recs), REQUESTS)
        self.assertTrue(all(x.get("outcome") == "ok" for x in recs))
        ttft = [x["ttft_s"] for x in recs if x.get("ttft_s") is not None]
        e2e = [x["e2e_s"] for x in recs if x.get("e2e_s") is not None]
        tpot = [x["tpot_s"] for x in recs if x.get("tpot_s") is not None]
        self.assertEqual(len(ttft), r["ttft"]["count"])
        self.assertEqual(len(e2e), r["e2e"]["count"])
        self.assertEqual(len(tpot), r["tpot"]["count"])
        self.assertEqual(sum(x.get("output_tokens", 0) for x in recs), r["output_tokens"])
        for q in ("p50", "p90", "p99"):
            self.assert_agrees("ttft", r["ttft"], ttft, q)
            self.assert_agrees("e2e", r["e2e"], e2e, q)
            self.assert_agrees("tpot", r["tpot"], tpot, q, one_sided=False)


if __name__ == "__main__":
    unittest.main(verbosity=2)
