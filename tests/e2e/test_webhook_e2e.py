"""End-to-end: `holoscope serve` notifying webhooks with Alertmanager's
webhook v4 payload.

A Python HTTP server receives the payloads.  An alert rule reads a
recording rule of another file ("the switch"); it fires at once (for: 0s,
evaluation every second) and the webhook gets a "firing" payload with the
rule's labels and annotations; the switch file is then changed and the
configuration reloaded (SIGHUP), the alert resolves and the webhook gets a
"resolved" payload.  A second webhook points at a port where nothing
listens: its error counter on /metrics rises (retries with backoff) while
rule evaluation carries on.  A reload that changes a receiver's headers
applies at once (the next payload carries the new header); other alerting
settings are reported as needing a restart.
"""
import http.server
import json
import os
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402

SWITCH_ON = """groups:
  - name: switch
    interval: 1s
    rules:
      - record: e2e:switch
        expr: vector(1)
"""
SWITCH_OFF = SWITCH_ON.replace("vector(1)", "vector(0)")
ALERT = """groups:
  - name: alerts
    interval: 1s
    rules:
      - alert: SwitchOn
        expr: e2e:switch > 0
        for: 0s
        labels:
          severity: page
        annotations:
          summary: "switch is {{ $value }}"
"""


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        with self.server.lock:
            self.server.payloads.append({
                "path": self.path,
                "token": self.headers.get("X-Token"),
                "type": self.headers.get("Content-Type"),
                "json": json.loads(body),
            })
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class WebhookEndToEnd(unittest.TestCase):
    def setUp(self):
        self.srv = None
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        self.httpd.payloads = []
        self.httpd.lock = threading.Lock()
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.dir = holo.tempfile.mkdtemp(prefix="hs-webhook-")
        self.switch = os.path.join(self.dir, "switch.rules.yml")
        with open(self.switch, "w") as f:
            f.write(SWITCH_ON)
        with open(os.path.join(self.dir, "alert.rules.yml"), "w") as f:
            f.write(ALERT)
        cfg = """rule_files: ['%s']
rules:
  default_pack: false
  evaluation_interval: 1s
collectors: {host: false, gpu: false}
alerting:
  external_url: http://holoscope.example:9190
  external_labels: {cluster: e2e}
  max_retries: 2
  webhooks:
    - url: http://127.0.0.1:%d/hook
      name: good
      headers: {X-Token: abc}
    - url: http://127.0.0.1:%d/hook
      name: down
      timeout: 2s
""" % (os.path.join(self.dir, "*.rules.yml"), self.httpd.server_address[1], free_port())
        self.srv = holo.Server(config=cfg)

    def tearDown(self):
        if self.srv:
            self.srv.close()
        self.httpd.shutdown()
        self.httpd.server_close()
        holo.shutil.rmtree(self.dir, ignore_errors=True)

    def wait_payload(self, pred, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.httpd.lock:
                for p in self.httpd.payloads:
                    if pred(p["json"]):
                        return p
            time.sleep(0.1)
        with self.httpd.lock:
            self.fail("no matching payload; got %s\n%s" % (self.httpd.payloads, self.srv.logs()))

    def wait_payload_with(self, pred, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.httpd.lock:
                for p in self.httpd.payloads:
                    if pred(p):
                        return p
            time.sleep(0.1)
        self.fail("no matching request\n" + self.srv.logs())

    def metric(self, name, receiver):
        _, _, body = self.srv.get("/metrics")
        for line in body.decode().splitlines():
            if line.startswith(name + "{") and 'receiver="%s"' % receiver in line:
                return float(line.rsplit(" ", 1)[1])
        return None

    def last_eval(self):
        _, _, body = self.srv.get("/api/v1/rules")
        groups = json.loads(body)["data"]["groups"]
        return max(g["lastEvaluation"] for g in groups)

    def test_webhook_gets_firing_then_resolved_and_a_down_receiver_is_counted(self):
        firing = self.wait_payload(lambda j: j["status"] == "firing")
        j = firing["json"]
        self.assertEqual(firing["path"], "/hook")
        self.assertEqual(firing["token"], "abc")
        self.assertEqual(firing["type"], "application/json")
        self.assertEqual(j["version"], "4")
        self.assertEqual(j["receiver"], "good")
        self.assertEqual(j["groupLabels"], {"alertname": "SwitchOn"})
        self.assertEqual(j["groupKey"], '{}:{alertname="SwitchOn"}')
        self.assertEqual(j["externalURL"], "http://holoscope.example:9190")
        a = j["alerts"][0]
        self.assertEqual(a["status"], "firing")
        self.assertEqual(a["labels"], {"alertname": "SwitchOn", "severity": "page",
                                       "cluster": "e2e"})
        self.assertEqual(a["annotations"], {"summary": "switch is 1"})
        self.assertEqual(a["endsAt"], "0001-01-01T00:00:00Z")
        self.assertTrue(a["generatorURL"].startswith("http://holoscope.example:9190/graph?g0.expr="))
        self.assertEqual(len(a["fingerprint"]), 16)

        with open(self.switch, "w") as f:
            f.write(SWITCH_OFF)
        self.srv.send_signal(signal.SIGHUP)
        resolved = self.wait_payload(lambda j: j["status"] == "resolved")
        a = resolved["json"]["alerts"][0]
        self.assertEqual(a["status"], "resolved")
        self.assertEqual(a["labels"]["alertname"], "SwitchOn")
        self.assertNotEqual(a["endsAt"], "0001-01-01T00:00:00Z")

        # the receiver that is down: retried, its errors counted, evaluation goes on
        deadline = time.time() + 30
        while time.time() < deadline and (self.metric(
                "holoscope_notifications_errors_total", "down") or 0) < 2:
            time.sleep(0.2)
        self.assertGreaterEqual(self.metric("holoscope_notifications_errors_total", "down"), 2)
        self.assertEqual(self.metric("holoscope_notifications_sent_total", "down"), 0)
        self.assertGreaterEqual(self.metric("holoscope_notifications_sent_total", "good"), 2)
        before = self.last_eval()
        time.sleep(2.5)
        self.assertGreater(self.last_eval(), before)

        # receivers change live on reload; other alerting settings need a restart
        path = os.path.join(self.srv.tmp, "holoscope.yml")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text.replace("X-Token: abc", "X-Token: xyz").replace("max_retries: 2",
                                                                        "max_retries: 3"))
        with open(self.switch, "w") as f:
            f.write(SWITCH_ON)
        self.srv.send_signal(signal.SIGHUP)
        again = self.wait_payload_with(lambda p: p["token"] == "xyz" and
                                       p["json"]["status"] == "firing")
        self.assertEqual(again["json"]["receiver"], "good")
        logs = self.srv.logs()
        self.assertIn("alerting receivers updated", logs)
        self.assertIn("alerting settings other than the receivers take effect after a restart",
                      logs)
        self.assertNotIn("xyz", logs)

if __name__ == "__main__":
    unittest.main()
