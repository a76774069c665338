"""End-to-end: `holoscope serve` sending alerts to a real Alertmanager
(Debian's prometheus-alertmanager, API v2).

Alertmanager runs on a free port with a temporary configuration and
storage path.  An alert rule fires at once (for: 0s, evaluation every
second) and must show in Alertmanager's GET /api/v2/alerts with its labels
(external labels included), annotations and generatorURL.  The rule reads a
recording rule of another file; changing that file and reloading
(SIGHUP) resolves the alert, and holoscope's resolved notification
(endsAt = resolution time) makes Alertmanager drop it long before a firing
alert's own endsAt (4 x resend_delay = 4 minutes) would.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402

AM_BIN = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

SWITCH_ON = """groups:
  - name: switch
    interval: 1s
    rules:
      - record: e2e:switch
        expr: vector(1) > 0
"""
SWITCH_OFF = SWITCH_ON.replace("vector(1) > 0", "vector(0)")
ALERT = """groups:
  - name: alerts
    interval: 1s
    rules:
      - alert: E2EAlwaysFiring
        expr: e2e:switch > 0
        for: 0s
        labels:
          severity: warning
        annotations:
          summary: "switch is {{ $value }}"
"""
AM_CONFIG = """route:
  receiver: blackhole
  group_wait: 1s
receivers:
  - name: blackhole
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@unittest.skipIf(AM_BIN is None, "prometheus-alertmanager is not installed (scripts/deps.sh)")
class AlertmanagerEndToEnd(unittest.TestCase):
    def setUp(self):
        self.srv = None
        self.am = None
        self.dir = tempfile.mkdtemp(prefix="hs-am-")
        with open(os.path.join(self.dir, "am.yml"), "w") as f:
            f.write(AM_CONFIG)
        self.am_port = free_port()
        self.am_url = "http://127.0.0.1:%d" % self.am_port
        self.am_log = open(os.path.join(self.dir, "am.log"), "wb")
        self.am = subprocess.Popen(
            [AM_BIN, "--config.file=" + os.path.join(self.dir, "am.yml"),
             "--storage.path=" + os.path.join(self.dir, "am-data"),
             "--web.listen-address=127.0.0.1:%d" % self.am_port,
             "--cluster.listen-address="],
            stdout=self.am_log, stderr=self.am_log)
        deadline = time.time() + 30
        while True:
            try:
                with urllib.request.urlopen(self.am_url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline or self.am.poll() is not None:
                self.fail("alertmanager did not start:\n" + self.am_logs())
            time.sleep(0.1)
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
  alertmanagers:
    - static_configs: [{targets: ['127.0.0.1:%d']}]
      timeout: 5s
""" % (os.path.join(self.dir, "*.rules.yml"), self.am_port)
        self.srv = holo.Server(config=cfg)

    def tearDown(self):
        if self.srv:
            self.srv.close()
        if self.am:
            self.am.terminate()
            try:
                self.am.wait(10)
            except subprocess.TimeoutExpired:
                self.am.kill()
                self.am.wait()
        self.am_log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def am_logs(self):
        with open(os.path.join(self.dir, "am.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def am_alerts(self):
        return [a for a in get_json(self.am_url + "/api/v2/alerts")
                if a["labels"].get("alertname") == "E2EAlwaysFiring"]

    def test_alert_reaches_alertmanager_then_resolves_after_reload(self):
        deadline = time.time() + 30
        alerts = []
        while time.time() < deadline and not alerts:
            alerts = self.am_alerts()
            time.sleep(0.2)
        self.assertTrue(alerts, "alert never reached Alertmanager:\n" + self.srv.logs())
        a = alerts[0]
        self.assertEqual(a["labels"], {"alertname": "E2EAlwaysFiring", "severity": "warning",
                                       "cluster": "e2e"})
        self.assertEqual(a["annotations"], {"summary": "switch is 1"})
        self.assertEqual(a["status"]["state"], "active")
        self.assertTrue(a["generatorURL"].startswith(
            "http://holoscope.example:9190/graph?g0.expr=e2e%3Aswitch"), a["generatorURL"])

        _, _, body = self.srv.get("/metrics")
        text = body.decode()
        self.assertIn('holoscope_notifications_sent_total{receiver="http://127.0.0.1:%d",'
                      'type="alertmanager"}' % self.am_port, text)

        with open(self.switch, "w") as f:
            f.write(SWITCH_OFF)
        self.srv.send_signal(signal.SIGHUP)
        deadline = time.time() + 30
        while time.time() < deadline and alerts:
            alerts = self.am_alerts()
            time.sleep(0.2)
        self.assertEqual(alerts, [], "alert not resolved in Alertmanager:\n" + self.srv.logs())
        _, _, body = self.srv.get("/api/v1/alerts")
        self.assertEqual(json.loads(body)["data"]["alerts"], [])


if __name__ == "__main__":
    unittest.main()
