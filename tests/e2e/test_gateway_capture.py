"""End-to-end: gateway -> capture log -> GET /api/v1/captures.

`holoscope serve` runs the gateway in front of the test upstream
(gw_upstream.py) with capture.sampling_percentage 100.  Requests carrying
planted PII go through; the upstream must receive them unchanged (§9.1),
while neither the capture files on disk nor the captures API may contain
any of them (§9.2, §9.3).  The records come back with their measurements.

Skipped only when the binary has no gateway yet (serve refuses the
`gateway:` section).
"""
import base64
import glob
import http.client
import json
import os
import re
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import gw_upstream  # noqa: E402
import holo  # noqa: E402

PII = ["jane.doe@example.com", "4111 1111 1111 1111", "+14155550132",
       "sk-abcdefghijklmnopqrstuvwxyz0123", "192.168.10.77", "123-45-6789", "ORD-424242"]

CONFIG = """
collectors: {host: false, gpu: false}
rules: {default_pack: false}
gateway:
  listen: 127.0.0.1:0
  routes:
    - model: test-model
      upstreams: [%(up)s]
capture:
  dir: %(dir)s
  sampling_percentage: 100
  max_file_age: 1s
  redaction:
    rules:
      - {name: ORDER, regex: 'ORD-[0-9]{6}'}
"""


def has_gateway():
    tmp = tempfile.mkdtemp(prefix="hs-gwcheck-")
    try:
        path = os.path.join(tmp, "c.yml")
        with open(path, "w") as f:
            f.write("gateway:\n  routes:\n    - model: m\n      upstreams: [http://127.0.0.1:9]\n")
        code, _, err = holo.run(["check", "config", path])
        return code == 0 and "unknown key" not in err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@unittest.skipUnless(has_gateway(), "this holoscope binary has no gateway yet")
class GatewayCapture(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hs-gwcap-")
        cls.dir = os.path.join(cls.tmp, "captures")
        cls.up = gw_upstream.Upstream()
        cls.srv = holo.Server(config=CONFIG % {"up": cls.up.url, "dir": cls.dir}, limit_s=100)
        deadline = time.time() + 30
        cls.gw_port = None
        while time.time() < deadline and cls.gw_port is None:
            m = re.search(r"gateway listening.*?port=(\d+)", cls.srv.logs())
            if m:
                cls.gw_port = int(m.group(1))
            else:
                time.sleep(0.05)
        if cls.gw_port is None:
            raise RuntimeError("gateway did not start:\n" + cls.srv.logs())
        cls.prompt = "I am %s, card %s, phone %s, key %s, from %s, ssn %s, order %s" % tuple(PII)
        cls.bodies = []
        for stream in (False, True):
            body = {"model": "test-model", "stream": stream,
                    "messages": [{"role": "user", "content": cls.prompt}]}
            data = json.dumps(body).encode()
            cls.bodies.append(data)
            c = http.client.HTTPConnection("127.0.0.1", cls.gw_port, timeout=20)
            c.request("POST", "/v1/chat/completions", body=data,
                      headers={"Content-Type": "application/json",
                               "X-Request-Id": "cap-%d" % stream})
            r = c.getresponse()
            r.read()
            c.close()
            assert r.status == 200, r.status
        cls.records = cls.wait_records(2)

    @classmethod
    def wait_records(cls, n, timeout=20):
        deadline = time.time() + timeout
        data = []
        while time.time() < deadline:
            st, _, body = cls.srv.get("/api/v1/captures?model=test-model")
            if st == 200:
                data = json.loads(body)["data"]
                if len(data) >= n:
                    return data
            time.sleep(0.1)
        raise RuntimeError("captures did not appear (%d): %s" % (len(data), cls.srv.logs()[-3000:]))

    @classmethod
    def tearDownClass(cls):
        code = cls.srv.stop()
        logs = cls.srv.logs()
        cls.srv.close()
        cls.up.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if code != 0:
            raise RuntimeError("holoscope exited %r:\n%s" % (code, logs[-4000:]))

    def test_upstream_received_the_request_bytes_unchanged(self):
        got = [r["body"] for r in self.up.recorded()]
        for want in self.bodies:
            req = json.loads(want)
            self.assertTrue(any(self.prompt in g and json.loads(g)["stream"] == req["stream"]
                                for g in got), got)

    def test_no_planted_pii_on_disk_or_in_the_api(self):
        files = glob.glob(os.path.join(self.dir, "**", "*.jsonl*"), recursive=True) + \
            glob.glob(os.path.join(self.dir, "**", ".*.part"), recursive=True)
        self.assertTrue(files)
        blobs = []
        for p in files:
            with open(p, "rb") as f:
                raw = f.read()
            blobs.append(raw)
            for line in raw.splitlines():
                rec = json.loads(line)  # every line is valid JSON
                for part in rec["captureData"].values():
                    if part["encoding"] == "BASE64":
                        blobs.append(base64.b64decode(part["data"]))
        api = json.dumps(self.records).encode()
        for pii in PII:
            for b in blobs + [api]:
                self.assertNotIn(pii.encode(), b)
        self.assertIn(b"[REDACTED:EMAIL]", api)
        self.assertIn(b"[REDACTED:ORDER]", api)

    def test_records_carry_their_measurements(self):
        by_id = {r["inferenceId"]: r for r in self.records}
        self.assertIn("cap-0", by_id)
        self.assertIn("cap-1", by_id)
        ns, st = by_id["cap-0"]["holoscope"], by_id["cap-1"]["holoscope"]
        self.assertEqual(ns["outcome"], "ok")
        self.assertEqual(ns["http_status"], 200)
        self.assertFalse(ns["stream"])
        self.assertTrue(st["stream"])
        self.assertGreater(st["e2e_s"], 0)
        self.assertIn("ttft_s", st)
        self.assertIn("redactions", ns)
        # capture.stream_output defaults to assembled: one chat.completion
        self.assertEqual(st["stream_output"], "assembled")
        self.assertEqual(by_id["cap-1"]["output"]["contentType"], "application/json")
        answer = json.loads(by_id["cap-1"]["output"]["data"])
        self.assertEqual(answer["object"], "chat.completion")
        self.assertTrue(answer["choices"][0]["message"]["content"])

    def test_capture_counters_on_metrics(self):
        st, _, body = self.srv.get("/metrics")
        text = body.decode()
        m = re.search(r"^holoscope_capture_records_total (\d+)", text, re.M)
        self.assertIsNotNone(m)
        self.assertGreaterEqual(int(m.group(1)), 2)
        m = re.search(r'^holoscope_capture_redactions_total\{type="EMAIL"\} (\d+)', text, re.M)
        self.assertGreaterEqual(int(m.group(1)), 2)


if __name__ == "__main__":
    unittest.main()
