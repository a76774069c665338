"""End-to-end: the `pricing:` section feeds the default pack's cost rules.

holoscope scrapes a small target exposing one GPU (hw_gpu_memory_limit_bytes
with gpu_uuid and gpu_model) serving one model (llm_server_gpu_info), writes
holoscope_pricing_gpu_hour_dollars{gpu_model} and
holoscope_pricing_daily_budget_dollars from its configuration, and
evaluates the cost recording rules taken verbatim from rules/default.yml
(in a group with a 1 s interval): model:llm_gpu_cost:dollars_per_hour and
fleet:llm_gpu_cost:dollars_per_hour must equal the configured hour price.
A bad price is refused by `holoscope check config` with its position.
"""
import http.server
import json
import os
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402

SOURCE = os.environ.get("HS_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
GPU_MODEL = "NVIDIA H100 80GB HBM3"
EXPOSITION = (
    '# TYPE hw_gpu_memory_limit_bytes gauge\n'
    'hw_gpu_memory_limit_bytes{gpu_uuid="GPU-e2e-1",gpu_model="%s"} 85899345920\n'
    'hw_gpu_memory_limit_bytes{gpu_uuid="GPU-e2e-2",gpu_model="NVIDIA L4"} 24000000000\n'
    '# TYPE llm_server_gpu_info gauge\n'
    'llm_server_gpu_info{gpu_uuid="GPU-e2e-1",model="llama-e2e"} 1\n'
    'llm_server_gpu_info{gpu_uuid="GPU-e2e-2",model="small-e2e"} 1\n' % GPU_MODEL).encode()


class Target(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(EXPOSITION)))
        self.end_headers()
        self.wfile.write(EXPOSITION)

    def log_message(self, *args):
        pass


def cost_rules():
    """The cost recording rules of the default pack, unchanged, in a 1 s group."""
    with open(os.path.join(SOURCE, "rules", "default.yml")) as f:
        lines = f.read().split("\n")
    wanted = ("model:llm_gpu_cost:dollars_per_hour", "fleet:llm_gpu_cost:dollars_per_hour")
    out, keep = [], False
    for line in lines:
        if line.startswith("      - ") or not line.startswith("       "):
            keep = line.startswith("      - record: ") and line.split(": ", 1)[1] in wanted
        if keep:
            out.append(line)
    assert sum(1 for line in out if line.startswith("      - record: ")) == 2, out
    return "groups:\n  - name: cost\n    interval: 1s\n    rules:\n" + "\n".join(out) + "\n"


class PricingEndToEnd(unittest.TestCase):
    def setUp(self):
        self.srv = None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Target)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.dir = holo.tempfile.mkdtemp(prefix="hs-pricing-")
        rules = os.path.join(self.dir, "cost.rules.yml")
        with open(rules, "w") as f:
            f.write(cost_rules())
        cfg = """rule_files: ['%s']
rules:
  default_pack: false
  evaluation_interval: 1s
collectors: {host: false, gpu: false}
scrape_configs:
  - job_name: gpus
    scrape_interval: 1s
    static_configs: [{targets: ['127.0.0.1:%d']}]
pricing:
  gpu_hour_dollars:
    "%s": 2.49
    "NVIDIA L4": 0.8
  daily_budget_dollars: 500
""" % (rules, self.httpd.server_address[1], GPU_MODEL)
        self.srv = holo.Server(config=cfg)

    def tearDown(self):
        if self.srv:
            self.srv.close()
        self.httpd.shutdown()
        self.httpd.server_close()
        holo.shutil.rmtree(self.dir, ignore_errors=True)

    def query(self, q):
        status, _, body = self.srv.get("/api/v1/query?query=" + urllib.parse.quote(q))
        self.assertEqual(status, 200, body)
        return json.loads(body)["data"]["result"]

    def wait_value(self, q, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = self.query(q)
            if r:
                return r
            time.sleep(0.2)
        self.fail("no value for %s\n%s" % (q, self.srv.logs()))

    def test_cost_recording_rules_yield_the_configured_prices(self):
        r = self.wait_value('holoscope_pricing_gpu_hour_dollars{gpu_model="%s"}' % GPU_MODEL)
        self.assertEqual(r[0]["value"][1], "2.49")
        r = self.wait_value("holoscope_pricing_daily_budget_dollars")
        self.assertEqual(r[0]["value"][1], "500")
        r = self.wait_value('model:llm_gpu_cost:dollars_per_hour{model="llama-e2e"}')
        self.assertAlmostEqual(float(r[0]["value"][1]), 2.49)
        r = self.wait_value('model:llm_gpu_cost:dollars_per_hour{model="small-e2e"}')
        self.assertAlmostEqual(float(r[0]["value"][1]), 0.8)
        r = self.wait_value("fleet:llm_gpu_cost:dollars_per_hour")
        self.assertAlmostEqual(float(r[0]["value"][1]), 3.29)

    def test_a_bad_price_is_refused_with_its_position(self):
        path = os.path.join(self.dir, "bad.yml")
        with open(path, "w") as f:
            f.write("pricing:\n  gpu_hour_dollars:\n    H100: -1\n")
        code, _, err = holo.run(["check", "config", path])
        self.assertEqual(code, 2, err)
        self.assertIn("bad.yml:3:11", err)
        self.assertIn("price >= 0", err)


if __name__ == "__main__":
    unittest.main()
