"""Browser test of the dashboard: headless Chromium driven by playwright-core.

Generates the deterministic 6 h dataset of dataset.py (2 models, 3
instances, 4 GPUs, gateway, quality, ALERTS with an injected TTFT fault),
backfills it with `holoscope tsdb create-blocks-from openmetrics`, starts
`holoscope serve` on it (default rule pack off, so nothing but the dataset
is evaluated), and runs browser/dashboard.mjs with node.  That script checks
every view, the drill-down fleet -> model -> instance -> GPU, range changes,
chart clicks into captures, alert bands and error display, prints the
measured first-load size and model-view draw time, and writes a screenshot
of each view into <build dir>/ui-screenshots/.

Skips (with a message) only when Chromium is not installed; a missing
node or node_modules is a failure that says to run `make deps`.
"""
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import dataset  # noqa: E402
import holo  # noqa: E402

ROOT = os.environ.get("HS_SOURCE_DIR") or os.path.join(HERE, "..", "..")
CHROMIUM = os.environ.get("HS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


# Live rules over the backfilled data: one alert fires at once, one stays
# pending (its 'for' is longer than the test), for the alerts view.
RULES = """groups:
  - name: ui-test
    interval: 1s
    rules:
      - alert: UITestQualityLow
        expr: holoscope_quality_score_mean{model="qwen-7b"} > 0
        labels:
          severity: warning
        annotations:
          summary: "quality of {{ $labels.model }} is {{ $value }}"
      - alert: UITestKVCacheHigh
        expr: max by (model) (llm_server_kv_cache_usage_ratio) > 0
        for: 1h
"""


# The rules above, the capture log written by dataset.write_captures, and
# one scrape target nobody listens on (port 1), so the targets view has a
# target that is down with its last error.
CONFIG = """rule_files:
  - %s
capture:
  dir: %s
scrape_configs:
  - job_name: engine-down
    scrape_interval: 1s
    scrape_timeout: 500ms
    static_configs:
      - targets: ["127.0.0.1:1"]
"""


class DashboardInChromium(unittest.TestCase):
    def wait_target_down(self, timeout=20):
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            status, _, body = self.srv.get("/api/v1/targets")
            if status == 200:
                got = json.loads(body)["data"]["activeTargets"]
                if got and got[0]["health"] == "down" and got[0]["lastError"]:
                    return
            time.sleep(0.2)
        self.fail("the scrape target did not go down: %r\n%s" % (got, self.srv.logs()[-2000:]))

    def wait_alerts(self, want, timeout=20):
        deadline = time.time() + timeout
        got = {}
        while time.time() < deadline:
            status, _, body = self.srv.get("/api/v1/alerts")
            if status == 200:
                got = {a["labels"]["alertname"]: a["state"] for a in json.loads(body)["data"]["alerts"]}
                if all(got.get(k) == v for k, v in want.items()):
                    return
            time.sleep(0.2)
        self.fail("alerts did not reach %r: %r\n%s" % (want, got, self.srv.logs()[-2000:]))

    def setUp(self):
        if not os.path.exists(CHROMIUM):
            self.skipTest("SKIP: chromium is not installed (%s); scripts/deps.sh installs it" % CHROMIUM)
        self.node = shutil.which("node")
        self.assertIsNotNone(self.node, "node is not installed: run `make deps`")
        self.assertTrue(os.path.isdir(os.path.join(ROOT, "node_modules", "playwright-core")),
                        "node_modules/playwright-core is missing: run `make deps`")
        self.tmp = tempfile.mkdtemp(prefix="hs-ui-")
        self.srv = None

    def tearDown(self):
        if self.srv is not None:
            self.srv.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def check_http_answers(self):
        """The page and its assets over real HTTP, beside the routes "/" must
        not shadow."""
        status, h, body = self.srv.get("/", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(status, 200)
        self.assertEqual(h.get("Content-Encoding"), "gzip")
        self.assertEqual(h.get("Cache-Control"), "no-cache")
        page = gzip.decompress(body).decode()
        names = re.findall(r'"assets/([^"]+)"', page)
        self.assertEqual(len(names), 6, page)
        for n in names:
            status, h, _ = self.srv.get("/assets/" + n)
            self.assertEqual(status, 200, n)
            self.assertIn("immutable", h.get("Cache-Control", ""), n)
            etag = h.get("ETag")
            status, _, _ = self.srv.get("/assets/" + n, headers={"If-None-Match": etag})
            self.assertEqual(status, 304, n)
        self.assertEqual(self.srv.get("/assets/missing.js")[0], 404)
        self.assertEqual(self.srv.get("/-/ready")[0], 200)
        status, _, body = self.srv.get("/metrics")
        self.assertEqual(status, 200)
        self.assertIn(b"# TYPE", body)
        status, _, body = self.srv.get("/api/v1/query?query=1")
        self.assertEqual(status, 200)
        self.assertIn(b'"success"', body)

    def test_every_view_loads_with_data_and_drills_down(self):
        end = int(time.time()) // dataset.STEP * dataset.STEP - dataset.STEP
        om = os.path.join(self.tmp, "data.om")
        summary = dataset.write(om, end)
        data = os.path.join(self.tmp, "data")
        code, out, err = holo.run(["tsdb", "create-blocks-from", "openmetrics", om, data])
        self.assertEqual(code, 0, out + err)
        rules = os.path.join(self.tmp, "ui-rules.yml")
        with open(rules, "w") as f:
            f.write(RULES)
        captures = os.path.join(self.tmp, "captures")
        summary["captures"] = dataset.write_captures(captures, end, every_s=60)
        self.srv = holo.Server(data=data, config=CONFIG % (rules, captures),
                               args=["--rules.default_pack=false", "--collectors.gpu=false"])
        self.wait_alerts({"UITestQualityLow": "firing", "UITestKVCacheHigh": "pending"})
        self.wait_target_down()
        self.check_http_answers()
        bin_dir = os.path.dirname(os.path.abspath(holo.BIN))
        shots = os.path.join(bin_dir, "ui-screenshots")
        env = dict(os.environ, HS_CHROMIUM=CHROMIUM)
        p = subprocess.run([self.node, os.path.join(HERE, "browser", "dashboard.mjs"), self.srv.base,
                            json.dumps(summary), shots],
                           capture_output=True, env=env, timeout=100, cwd=os.path.join(HERE, "browser"))
        text = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
        print(text)
        print("screenshots: " + shots)
        self.assertEqual(p.returncode, 0, text + "\nserver log:\n" + self.srv.logs()[-3000:])
        rc = self.srv.stop()
        self.assertEqual(rc, 0, "holoscope did not exit cleanly:\n" + self.srv.logs()[-3000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
