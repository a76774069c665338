"""End-to-end: `holoscope serve` scraping real HTTP targets.

A small HTTP server in the test serves the engine fixtures of
shared/fixtures/exposition (vLLM, SGLang, DCGM); holoscope scrapes them
every second and must store the original series with the detected
`backend` and the normalised `model` label, the unified llm_server_* /
hw_gpu_* series, the report series, and /api/v1/targets must show target
health, including a target that refuses connections.
"""
import http.server
import json
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402

SHARED = os.environ.get("HS_SHARED_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared")
FIXTURES = os.path.join(SHARED, "fixtures", "exposition")


class FixtureHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        name = self.path.strip("/").split("/")[0]
        path = os.path.join(FIXTURES, name + ".prom")
        if not os.path.exists(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class ScrapeEndToEnd(unittest.TestCase):
    def setUp(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FixtureHandler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        port = self.httpd.server_address[1]
        dead = free_port()
        cfg = """global:
  scrape_interval: 1s
scrape_configs:
  - job_name: vllm
    metrics_path: /vllm/metrics
    static_configs:
      - targets: ["127.0.0.1:%d"]
        labels: {component: chat, az: az1}
  - job_name: dcgm
    metrics_path: /dcgm/metrics
    static_configs:
      - targets: ["127.0.0.1:%d"]
  - job_name: sglang
    metrics_path: /sglang/metrics
    static_configs:
      - targets: ["127.0.0.1:%d"]
  - job_name: down
    static_configs:
      - targets: ["127.0.0.1:%d"]
rules:
  default_pack: false
collectors:
  host: false
  gpu: false
""" % (port, port, port, dead)
        self.srv = holo.Server(config=cfg)

    def tearDown(self):
        self.srv.close()
        self.httpd.shutdown()
        self.httpd.server_close()

    def query(self, q):
        status, _, body = self.srv.get("/api/v1/query?query=" + holo.urllib.parse.quote(q))
        self.assertEqual(status, 200, body)
        return json.loads(body)["data"]["result"]

    def wait_query(self, q, pred, timeout=20):
        deadline = time.time() + timeout
        res = None
        while time.time() < deadline:
            res = self.query(q)
            if pred(res):
                return res
            time.sleep(0.2)
        self.fail("%s never satisfied the condition; last result %s" % (q, res))

    def test_engines_are_detected_and_labelled_with_backend_and_model(self):
        res = self.wait_query('up', lambda r: len(r) == 4)
        up = {r["metric"]["job"]: r["value"][1] for r in res}
        self.assertEqual(up, {"vllm": "1", "dcgm": "1", "sglang": "1", "down": "0"})
        res = self.wait_query('count by (backend) ({__name__=~"vllm:.+"})', lambda r: r)
        self.assertEqual({r["metric"].get("backend") for r in res}, {"vllm"})
        res = self.query('count by (model) (vllm:num_requests_running)')
        self.assertTrue(all(r["metric"].get("model") for r in res), res)
        res = self.query('vllm:num_requests_running')
        self.assertEqual(res[0]["metric"]["component"], "chat")
        self.assertEqual(res[0]["metric"]["az"], "az1")
        res = self.wait_query('count by (backend) (DCGM_FI_DEV_GPU_UTIL)', lambda r: r)
        self.assertEqual(res[0]["metric"]["backend"], "dcgm")
        res = self.wait_query('count by (backend) ({__name__=~"sglang:.+"})', lambda r: r)
        self.assertEqual(res[0]["metric"]["backend"], "sglang")

    def test_unified_series_are_stored_beside_the_originals(self):
        res = self.wait_query('count by (__name__) ({__name__=~"llm_server_.+"})', lambda r: r)
        names = {r["metric"]["__name__"] for r in res}
        self.assertTrue(any(n.startswith("llm_server_") for n in names), names)
        res = self.wait_query('count({__name__=~"hw_gpu_.+|gpu_.+"})', lambda r: r)
        self.assertGreater(int(res[0]["value"][1]), 0)

    def test_targets_api_reports_health_and_the_last_error(self):
        deadline = time.time() + 20
        while time.time() < deadline:
            status, _, body = self.srv.get("/api/v1/targets")
            active = json.loads(body)["data"]["activeTargets"]
            down = [t for t in active if t["labels"]["job"] == "down"]
            # Targets start at their own offsets: wait until all were scraped.
            if len(active) == 4 and all(t["health"] != "unknown" for t in active):
                break
            time.sleep(0.2)
        self.assertEqual(len(active), 4)
        self.assertIn("connect", down[0]["lastError"])
        self.assertEqual({t["health"] for t in active if t["labels"]["job"] != "down"}, {"up"})
        status, _, body = self.srv.get("/api/v1/targets?state=dropped")
        self.assertEqual(json.loads(body)["data"]["activeTargets"], [])
        status, _, body = self.srv.get("/metrics")
        self.assertIn("holoscope_scrapes_total", body.decode())
        self.assertRegex(body.decode(), r"\nholoscope_scrape_samples_scraped_total [1-9]")


if __name__ == "__main__":
    unittest.main(verbosity=2)
