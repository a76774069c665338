"""End-to-end: rule files in `holoscope serve`.

A rule file from the configuration is evaluated by the running server: a
recording rule's series lands in the store, an alert goes pending then
firing and shows in /api/v1/alerts, a SIGHUP with a changed file replaces
the rules, and a broken file on reload is refused while the old rules keep
running.
"""
import json
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402

RULES = """groups:
  - name: e2e
    interval: 1s
    rules:
      - record: e2e:answer
        expr: vector(42)
      - alert: AlwaysOn
        expr: vector(1) > 0
        for: 2s
        labels:
          severity: page
        annotations:
          summary: "value is {{ $value }}"
"""


class RulesEndToEnd(unittest.TestCase):
    def setUp(self):
        self.srv = None
        self.dir = holo.tempfile.mkdtemp(prefix="hs-rules-")
        self.rules = os.path.join(self.dir, "e2e.rules.yml")
        with open(self.rules, "w") as f:
            f.write(RULES)
        cfg = "rule_files:\n  - %s\nrules:\n  default_pack: false\ncollectors:\n  host: false\n  gpu: false\n" % (
            os.path.join(self.dir, "*.rules.yml"))
        self.srv = holo.Server(config=cfg)

    def tearDown(self):
        if self.srv:
            self.srv.close()
        holo.shutil.rmtree(self.dir, ignore_errors=True)

    def wait_for(self, path, pred, timeout=20):
        deadline = time.time() + timeout
        doc = None
        while time.time() < deadline:
            status, _, body = self.srv.get(path)
            self.assertEqual(status, 200, body)
            doc = json.loads(body)
            if pred(doc):
                return doc
            time.sleep(0.2)
        self.fail("condition not met for %s; last answer %s" % (path, doc))

    def test_recording_rule_results_are_stored_and_alerts_go_pending_then_firing(self):
        self.wait_for("/api/v1/query?query=e2e:answer",
                      lambda d: d["data"]["result"] and d["data"]["result"][0]["value"][1] == "42")
        doc = self.wait_for("/api/v1/alerts", lambda d: any(
            a["state"] == "firing" for a in d["data"]["alerts"]))
        alert = doc["data"]["alerts"][0]
        self.assertEqual(alert["labels"]["alertname"], "AlwaysOn")
        self.assertEqual(alert["labels"]["severity"], "page")
        self.assertEqual(alert["annotations"]["summary"], "value is 1")
        self.wait_for('/api/v1/query?query=ALERTS{alertname="AlwaysOn",alertstate="firing"}',
                      lambda d: len(d["data"]["result"]) == 1)
        status, _, body = self.srv.get("/api/v1/rules?type=record")
        groups = json.loads(body)["data"]["groups"]
        self.assertEqual([r["name"] for r in groups[0]["rules"]], ["e2e:answer"])

    def test_reload_replaces_the_rules_and_a_broken_file_keeps_the_old_ones(self):
        self.wait_for("/api/v1/rules", lambda d: len(d["data"]["groups"]) == 1)
        with open(self.rules, "w") as f:
            f.write(RULES.replace("e2e:answer", "e2e:renamed"))
        self.srv.send_signal(signal.SIGHUP)
        self.wait_for("/api/v1/rules", lambda d: any(
            r["name"] == "e2e:renamed" for g in d["data"]["groups"] for r in g["rules"]))
        with open(self.rules, "w") as f:
            f.write("groups:\n  - name: bad\n    rules:\n      - record: x\n        expr: sum(\n")
        status, _, body = self.srv.get("/-/reload", method="POST", data=b"")
        self.assertEqual(status, 500)
        self.assertIn("e2e.rules.yml", json.loads(body)["error"])
        status, _, body = self.srv.get("/api/v1/rules")
        names = [r["name"] for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
        self.assertIn("e2e:renamed", names)


if __name__ == "__main__":
    unittest.main(verbosity=2)
