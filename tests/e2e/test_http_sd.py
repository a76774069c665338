"""End-to-end: http_sd_configs and the model label of TGI, over real HTTP.

A discovery endpoint in the test serves the target list (JSON, as
Prometheus' http_sd expects) and can change it or fail; the targets it
names serve the TGI fixture of shared/fixtures/exposition and TGI's
GET /info.  `holoscope serve` must scrape what the endpoint lists (with
__meta_url available to relabelling), follow a change, keep the last good
list when the endpoint answers 500, count the failures on /metrics, and
label the TGI series with the model_id of /info.
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

SHARED = os.environ.get("HS_SHARED_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared")
TGI = os.path.join(SHARED, "fixtures", "exposition", "tgi.prom")


class EngineHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/info":
            body = json.dumps({"model_id": "mistralai/Mistral-7B-Instruct-v0.3",
                               "max_total_tokens": 4096}).encode()
            ctype = "application/json"
        elif self.path == "/metrics":
            with open(TGI, "rb") as f:
                body = f.read()
            ctype = "text/plain; version=0.0.4"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class SDHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        st = self.server.state
        with st["lock"]:
            status, groups = st["status"], st["groups"]
            st["polls"] += 1
        body = json.dumps(groups).encode() if status == 200 else b"discovery is down"
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def serve(handler):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


class HttpSDEndToEnd(unittest.TestCase):
    def setUp(self):
        self.eng1 = serve(EngineHandler)
        self.eng2 = serve(EngineHandler)
        self.sd = serve(SDHandler)
        self.sd.state = {"lock": threading.Lock(), "status": 200, "polls": 0,
                         "groups": [{"targets": [self.addr(self.eng1)],
                                     "labels": {"az": "az1"}}]}
        self.sd_url = "http://127.0.0.1:%d/targets" % self.sd.server_address[1]
        cfg = """global:
  scrape_interval: 1s
scrape_configs:
  - job_name: tgi
    http_sd_configs:
      - url: %s
        refresh_interval: 1s
    relabel_configs:
      - source_labels: [__meta_url]
        target_label: sd_url
rules:
  default_pack: false
collectors:
  host: false
  gpu: false
""" % self.sd_url
        self.srv = holo.Server(config=cfg)

    def tearDown(self):
        self.srv.close()
        for h in (self.eng1, self.eng2, self.sd):
            h.shutdown()
            h.server_close()

    @staticmethod
    def addr(httpd):
        return "127.0.0.1:%d" % httpd.server_address[1]

    def set_sd(self, status=None, groups=None):
        with self.sd.state["lock"]:
            if status is not None:
                self.sd.state["status"] = status
            if groups is not None:
                self.sd.state["groups"] = groups
            return self.sd.state["polls"]

    def polls(self):
        with self.sd.state["lock"]:
            return self.sd.state["polls"]

    def query(self, q):
        status, _, body = self.srv.get("/api/v1/query?query=" + urllib.parse.quote(q))
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

    def active(self):
        _, _, body = self.srv.get("/api/v1/targets")
        return sorted(t["labels"]["instance"] for t in json.loads(body)["data"]["activeTargets"])

    def wait_active(self, want, timeout=20):
        deadline = time.time() + timeout
        got = None
        while time.time() < deadline:
            got = self.active()
            if got == want:
                return
            time.sleep(0.2)
        self.fail("active targets %s, want %s" % (got, want))

    def test_targets_follow_the_endpoint_and_tgi_series_get_the_model_of_info(self):
        one, two = self.addr(self.eng1), self.addr(self.eng2)
        self.wait_active([one])
        res = self.wait_query('tgi_request_count{instance="%s"}' % one,
                              lambda r: r and r[0]["metric"].get("model"))
        m = res[0]["metric"]
        self.assertEqual(m["model"], "mistralai/Mistral-7B-Instruct-v0.3")
        self.assertEqual(m["backend"], "tgi")
        self.assertEqual(m["az"], "az1")
        self.assertEqual(m["sd_url"], self.sd_url)
        # the unified series carry the model too
        self.wait_query('llm_server_requests_waiting{instance="%s",'
                        'model="mistralai/Mistral-7B-Instruct-v0.3"}' % one, lambda r: r)
        # the list changes: the second engine comes, the first goes
        self.set_sd(groups=[{"targets": [two], "labels": {"az": "az2"}}])
        self.wait_active([two])
        self.wait_query('up{instance="%s"} == 1' % two, lambda r: r)
        # discovery down: the last good list stays, the failures are counted
        base = self.set_sd(status=500)
        deadline = time.time() + 20
        while self.polls() < base + 3 and time.time() < deadline:
            time.sleep(0.2)
        self.assertGreaterEqual(self.polls(), base + 3)
        self.assertEqual(self.active(), [two])
        _, _, body = self.srv.get("/metrics")
        failures = [float(line.split()[-1]) for line in body.decode().splitlines()
                    if line.startswith("holoscope_sd_http_failures_total ")]
        self.assertTrue(failures and failures[0] >= 2, failures)
        self.assertIn("http_sd refresh failed", self.srv.logs())


if __name__ == "__main__":
    unittest.main(verbosity=2)
