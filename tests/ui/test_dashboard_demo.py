"""Browser test of the dashboard against a running `holoscope demo`.

Starts `holoscope demo` (simulated vLLM and SGLang fleet, serve with the
default rules, the gateway with capture and quality scoring, background
load; first fault an error burst on the SGLang model 3 s in) on free ports,
waits until the API has per-model latencies, tokens/s, GPU utilisation,
captured requests of both models and the error burst's LLMErrorRateHigh
alert (pending or firing), then runs browser/demo.mjs in headless Chromium:
fleet table with numbers for both models, fleet -> model -> instance -> GPU,
the alert in the alerts view and as a band on the model's charts, a chart
click into captured requests, and every other view.  It prints the 12-panel
model view's draw time and writes screenshots into
<build dir>/ui-screenshots-demo/.  The demo is stopped with SIGINT and must
exit 0.

Skips (with a message) only when Chromium is not installed; a missing
node or node_modules is a failure that says to run `make deps`.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import holo  # noqa: E402
from test_demo import LLAMA, QWEN, Demo, wait_for  # noqa: E402

ROOT = os.environ.get("HS_SOURCE_DIR") or os.path.join(HERE, "..", "..")
CHROMIUM = os.environ.get("HS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ALERT = "LLMErrorRateHigh"


class DashboardOverDemo(unittest.TestCase):
    def setUp(self):
        if not os.path.exists(CHROMIUM):
            self.skipTest("SKIP: chromium is not installed (%s); scripts/deps.sh installs it" % CHROMIUM)
        self.node = shutil.which("node")
        self.assertIsNotNone(self.node, "node is not installed: run `make deps`")
        self.assertTrue(os.path.isdir(os.path.join(ROOT, "node_modules", "playwright-core")),
                        "node_modules/playwright-core is missing: run `make deps`")

    def wait_data(self, d, t0):
        """Everything the views are checked against, within 75 s of start."""
        def left():
            return max(1.0, 75 - (time.time() - t0))

        def per_model(expr):
            models = {r["metric"].get("model") for r in d.query(expr)
                      if r["value"][1] not in ("NaN", "+Inf", "-Inf")}
            return {LLAMA, QWEN} <= models

        checks = [
            ("TTFT per model", lambda: per_model(
                "histogram_quantile(0.5, sum by (le, model) (rate(llm_server_time_to_first_token_seconds_bucket[5m])))")),
            ("tokens/s per model", lambda: per_model(
                "sum by (model) (rate(llm_server_generation_tokens_total[5m])) > 0")),
            ("GPU utilisation per model", lambda: per_model(
                'avg by (model) (max by (gpu_uuid) (hw_gpu_utilization_ratio{hw_gpu_task="general"}) '
                "* on (gpu_uuid) group_right () max by (gpu_uuid, model) (llm_server_gpu_info))")),
            ("captures of both models", lambda: self.captured(d) >= {LLAMA, QWEN}),
            ("%s on %s" % (ALERT, QWEN), lambda: d.query('ALERTS{alertname="%s", model="%s"}' % (ALERT, QWEN))),
        ]
        for what, fn in checks:
            self.assertTrue(wait_for(fn, left(), step=1.0),
                            "no %s within 75 s of start:\n%s" % (what, d.output()[-3000:]))

    @staticmethod
    def captured(d):
        now = time.time()
        status, body = d.get_json("/api/v1/captures", start=str(now - 600), end=str(now + 60), limit="200")
        if status != 200:
            return set()
        recs = body.get("data") or []
        return {(r.get("holoscope") or {}).get("model") for r in recs if isinstance(r, dict)}

    def test_dashboard_shows_the_live_demo_and_its_first_fault(self):
        d = Demo(limit_s=110)
        try:
            t0 = time.time()
            self.wait_data(d, t0)
            print("demo data and the %s alert ready after %.0f s" % (ALERT, time.time() - t0))
            shots = os.path.join(os.path.dirname(os.path.abspath(holo.BIN)), "ui-screenshots-demo")
            summary = {"models": [LLAMA, QWEN], "alert": {"name": ALERT, "model": QWEN}}
            env = dict(os.environ, HS_CHROMIUM=CHROMIUM)
            p = subprocess.run([self.node, os.path.join(HERE, "browser", "demo.mjs"), d.base, json.dumps(summary), shots],
                               capture_output=True, env=env, timeout=max(10, 105 - (time.time() - t0)),
                               cwd=os.path.join(HERE, "browser"))
            text = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
            print(text)
            print("screenshots: " + shots)
            print("wall time so far: %.0f s" % (time.time() - t0))
            self.assertEqual(p.returncode, 0, text + "\ndemo output:\n" + d.output()[-3000:])
            self.assertEqual(d.stop(signal.SIGINT), 0, "holoscope demo did not exit cleanly:\n" + d.output()[-3000:])
        finally:
            d.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
