"""Remote-write with a real peer: a real Prometheus scrapes its own /metrics
and remote-writes everything to `holoscope serve` on 127.0.0.1; the test
then checks that the series holoscope stored are exactly the series
Prometheus stored (both read through their /api/v1/series, which in
holoscope goes through the tsdb querier), that the instant value of a few
series agrees, and that every raw sample of the last 20 s (a range-vector
query) is the same on both sides.

Skipped, with the reason printed, when the holoscope binary is absent, when
no prometheus binary is installed, or when `holoscope serve` does not route
POST /api/v1/write yet (404/405).  Everything runs on 127.0.0.1 with free
ports and temp dirs, every process is bounded in time and killed at the end.

Run alone:  HOLOSCOPE_BIN=build/x/holoscope python3 tests/export/test_prometheus_peer.py -v
"""
import json
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
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import holo  # noqa: E402

PROMETHEUS = shutil.which("prometheus") or ("/usr/bin/prometheus"
                                            if os.path.exists("/usr/bin/prometheus") else None)
SCRAPE_S = 1
CATCH_UP_S = 60


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_get(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


def series(base, start=None, end=None):
    """The label sets /api/v1/series returns for the series of job "prometheus"."""
    # Only what Prometheus scraped: holoscope also stores its own collectors.
    q = [("match[]", '{job="prometheus"}')]
    if start is not None:
        q.append(("start", "%.3f" % start))
    if end is not None:
        q.append(("end", "%.3f" % end))
    status, body = http_get(base + "/api/v1/series?" + urllib.parse.urlencode(q))
    if status != 200:
        raise AssertionError("%s/api/v1/series: %d %s" % (base, status, body[:300]))
    data = json.loads(body)["data"]
    return {tuple(sorted(s.items())) for s in data}


def instant(base, query, t):
    q = urllib.parse.urlencode({"query": query, "time": "%.3f" % t})
    status, body = http_get(base + "/api/v1/query?" + q)
    if status != 200:
        raise AssertionError("%s query %s: %d %s" % (base, query, status, body[:300]))
    res = json.loads(body)["data"]["result"]
    return {tuple(sorted(r["metric"].items())): r["value"][1] for r in res}


def raw_samples(base, query, t):
    """Series -> [(t, value string), ...] of a range-vector instant query."""
    q = urllib.parse.urlencode({"query": query, "time": "%.3f" % t})
    status, body = http_get(base + "/api/v1/query?" + q)
    if status != 200:
        raise AssertionError("%s query %s: %d %s" % (base, query, status, body[:300]))
    res = json.loads(body)["data"]["result"]
    return {tuple(sorted(r["metric"].items())): [tuple(v) for v in r["values"]] for r in res}


class PrometheusPeer(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(holo.BIN):
            self.skipTest("holoscope binary not built (%s)" % holo.BIN)
        if PROMETHEUS is None:
            self.skipTest("no prometheus binary installed")
        self.tmp = tempfile.mkdtemp(prefix="hs-rw-peer-")
        self.prom = None
        self.srv = holo.Server(limit_s=150)
        # An empty remote-write 1.0 request: snappy block of an empty message.
        status, _, body = self.srv.get("/api/v1/write", method="POST", data=b"\x00", headers={
            "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0"})
        if status in (404, 405):
            self.skipTest("holoscope serve does not route POST /api/v1/write yet (%d)" % status)
        self.assertEqual(status, 204, body)

    def tearDown(self):
        if self.prom is not None and self.prom.poll() is None:
            self.prom.kill()
            self.prom.wait()
        if getattr(self, "srv", None) is not None:
            self.srv.close()
        if getattr(self, "tmp", None):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def start_prometheus(self):
        port = free_port()
        cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("""global:
  scrape_interval: %ds
  evaluation_interval: %ds
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:%d"]
remote_write:
  - url: "http://127.0.0.1:%d/api/v1/write"
    queue_config:
      batch_send_deadline: 1s
      max_samples_per_send: 500
      min_backoff: 50ms
      max_backoff: 1s
""" % (SCRAPE_S, SCRAPE_S, port, self.srv.port))
        log = open(os.path.join(self.tmp, "prometheus.log"), "wb")
        self.prom = subprocess.Popen(
            [PROMETHEUS, "--config.file", cfg, "--storage.tsdb.path",
             os.path.join(self.tmp, "prom-data"), "--web.listen-address", "127.0.0.1:%d" % port],
            stdout=log, stderr=log)
        watchdog = threading.Timer(150, self.prom.kill)
        watchdog.daemon = True
        watchdog.start()
        self.addCleanup(watchdog.cancel)
        self.addCleanup(log.close)
        base = "http://127.0.0.1:%d" % port
        deadline = time.time() + 30
        while time.time() < deadline:
            if http_get(base + "/-/ready")[0] == 200:
                return base
            if self.prom.poll() is not None:
                break
            time.sleep(0.1)
        with open(os.path.join(self.tmp, "prometheus.log"), "rb") as f:
            raise AssertionError("prometheus did not start:\n" + f.read().decode(errors="replace"))

    def test_series_written_by_prometheus_equal_the_series_prometheus_stored(self):
        prom = self.start_prometheus()
        start = time.time() - 60
        deadline = time.time() + 60
        while True:  # wait for a few scrapes
            ups = instant(prom, "count_over_time(up[1m])", time.time())
            if ups and min(float(v) for v in ups.values()) >= 3:
                break
            if time.time() > deadline:
                self.fail("Prometheus did not scrape itself 3 times in 60 s")
            time.sleep(0.5)
        cutoff = time.time() - SCRAPE_S
        want = series(prom, start, cutoff)
        self.assertGreater(len(want), 50, "Prometheus stored too few series")
        deadline = time.time() + CATCH_UP_S
        while True:
            got = series(self.srv.base, start, time.time() + 60)
            everything = series(prom)
            missing = want - got
            extra = got - everything
            if not missing and not extra:
                break
            if time.time() > deadline:
                self.fail("after %ds: %d series missing in holoscope (e.g. %s), %d extra (e.g. %s)"
                          % (CATCH_UP_S, len(missing), sorted(missing)[:3], len(extra),
                             sorted(extra)[:3]))
            time.sleep(0.5)
        # Values: series that do not change between scrapes must agree exactly.
        for q in ("prometheus_build_info", "up", "prometheus_config_last_reload_successful"):
            self.assertEqual(instant(self.srv.base, q, cutoff), instant(prom, q, cutoff), q)
        # Every raw sample of the last 20 s before the cutoff, bit for bit as
        # the API prints them (the newest ones may still be on their way).
        q = '{job="prometheus"}[20s]'
        want = raw_samples(prom, q, cutoff)
        self.assertGreater(sum(len(v) for v in want.values()), 500)
        deadline = time.time() + CATCH_UP_S
        while True:
            got = raw_samples(self.srv.base, q, cutoff)
            if got == want:
                break
            if time.time() > deadline:
                diff = [k for k in want if want[k] != got.get(k)]
                self.fail("raw samples differ for %d series, e.g. %s: prometheus %s, holoscope %s"
                          % (len(diff), diff[:1], want[diff[0]][:5] if diff else None,
                             got.get(diff[0], [])[:5] if diff else None))
            time.sleep(0.5)
        status, _, body = self.srv.get("/metrics")
        if status == 200 and b"holoscope_remote_write_requests_total" in body:
            self.assertIn(b'holoscope_remote_write_requests_total{code="204"}', body)
        self.prom.send_signal(signal.SIGTERM)
        self.prom.wait(30)


if __name__ == "__main__":
    unittest.main(verbosity=2)
