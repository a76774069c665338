"""End-to-end: GET /api/v1/captures of `holoscope serve` over a capture
directory pre-populated in the documented layout (spec/gateway.md §8.3)
with the SageMaker fixture records and records carrying the holoscope
extension block.

Checks: newest first, model / start / end / limit filtering, BASE64 raw
streams decoded to their SSE text, measurements returned, unparseable
lines skipped, 400 on bad parameters, the writer's holoscope_capture_*
families on /metrics.
"""
import json
import os
import sys
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402

SHARED = os.environ.get("HS_SHARED_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared")
FIXTURE = os.path.join(SHARED, "fixtures", "capture", "sagemaker-datacapture.jsonl")


def ext_record(i, model_minute):
    """A capture line with an extension block, at 2026-01-01T01:MM:00Z."""
    data = json.dumps({"model": "m", "messages": [{"role": "user", "content": "q%d" % i}]},
                      separators=(",", ":"))
    rec = {
        "captureData": {
            "endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                              "data": data, "encoding": "JSON"}},
        "eventMetadata": {"eventId": "00000000-0000-4000-8000-%012d" % i,
                          "inferenceId": "ext-%d" % i,
                          "inferenceTime": "2026-01-01T01:%02d:00Z" % model_minute},
        "eventVersion": "0",
        "holoscope": {"v": 1, "ttft_s": 0.25, "e2e_s": 1.5, "output_tokens": 10 + i,
                      "outcome": "ok"},
    }
    return json.dumps(rec, separators=(",", ":"))


class CapturesApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls.tmp = tempfile.mkdtemp(prefix="hs-captures-")
        cls.dir = os.path.join(cls.tmp, "captures")
        hour0 = os.path.join(cls.dir, "llama-3.1-8b-instruct", "vllm-a", "2026", "01", "01", "00")
        os.makedirs(hour0)
        with open(FIXTURE, "rb") as f:
            fixture = f.read()
        with open(os.path.join(hour0, "00-00-000-11111111-2222-4333-8444-555555555555.jsonl"),
                  "wb") as f:
            f.write(fixture)
            f.write(b"this line is not a capture record\n")
        hour1 = os.path.join(cls.dir, "other-model", "sglang-b", "2026", "01", "01", "01")
        os.makedirs(hour1)
        with open(os.path.join(hour1, "00-00-000-aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee.jsonl"),
                  "w") as f:
            for i in range(5):
                f.write(ext_record(i, i) + "\n")
        # an open file of the writer: whole lines are read, a torn tail is not
        with open(os.path.join(hour1, ".05-00-000-ffffffff-bbbb-4ccc-8ddd-eeeeeeeeeeee.jsonl.part"),
                  "w") as f:
            f.write(ext_record(5, 5) + "\n" + ext_record(6, 6)[:40])
        config = ("collectors: {host: false, gpu: false}\n"
                  "rules: {default_pack: false}\n"
                  "capture:\n  dir: %s\n  sampling_percentage: 10\n" % cls.dir)
        cls.srv = holo.Server(config=config, limit_s=100)

    @classmethod
    def tearDownClass(cls):
        import shutil
        code = cls.srv.stop()
        logs = cls.srv.logs()
        cls.srv.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if code != 0:
            raise RuntimeError("holoscope exited %r:\n%s" % (code, logs[-4000:]))

    def captures(self, **params):
        st, _, body = self.srv.get("/api/v1/captures?" + urllib.parse.urlencode(params))
        return st, json.loads(body)

    def test_all_records_come_back_newest_first(self):
        st, doc = self.captures(limit=100)
        self.assertEqual(st, 200)
        self.assertEqual(doc["status"], "success")
        times = [r["inferenceTime"] for r in doc["data"]]
        self.assertEqual(len(times), 4 + 6)
        self.assertEqual(times, sorted(times, reverse=True))
        self.assertEqual(times[0], "2026-01-01T01:05:00Z")  # from the open .part file
        self.assertEqual(times[-1], "2026-01-01T00:00:01Z")

    def test_model_filter_and_limit(self):
        st, doc = self.captures(model="llama-3.1-8b-instruct", limit=2)
        self.assertEqual(st, 200)
        self.assertEqual([r["inferenceTime"] for r in doc["data"]],
                         ["2026-01-01T00:00:04Z", "2026-01-01T00:00:03Z"])
        self.assertTrue(all(r["model"] == "llama-3.1-8b-instruct" for r in doc["data"]))
        self.assertEqual(doc["data"][0]["variant"], "vllm-a")

    def test_time_range_accepts_unix_seconds_and_rfc3339(self):
        st, doc = self.captures(start="2026-01-01T00:00:02Z", end=str(1767225603))
        self.assertEqual(st, 200)
        self.assertEqual([r["inferenceTime"] for r in doc["data"]],
                         ["2026-01-01T00:00:03Z", "2026-01-01T00:00:02Z"])

    def test_raw_streams_are_decoded_and_measurements_returned(self):
        _, doc = self.captures(model="llama-3.1-8b-instruct")
        rec2 = [r for r in doc["data"] if r["inferenceTime"] == "2026-01-01T00:00:02Z"][0]
        self.assertEqual(rec2["output"]["encoding"], "BASE64")
        self.assertEqual(rec2["output"]["contentType"], "text/event-stream")
        self.assertIn('"prompt_tokens":36', rec2["output"]["data"])
        self.assertTrue(rec2["output"]["data"].endswith("data: [DONE]\n\n"))
        self.assertIsNone(rec2["inferenceId"])
        self.assertIsNone(rec2["holoscope"])
        rec1 = [r for r in doc["data"] if r["inferenceId"] == "req-0001"][0]
        self.assertEqual(json.loads(rec1["input"]["data"])["max_tokens"], 64)
        _, doc = self.captures(model="other-model", limit=1)
        self.assertEqual(doc["data"][0]["holoscope"]["output_tokens"], 15)
        self.assertEqual(doc["data"][0]["holoscope"]["ttft_s"], 0.25)

    def test_bad_parameters_are_400(self):
        for params in ({"limit": "-1"}, {"limit": "5000"}, {"start": "yesterday"},
                       {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}):
            st, doc = self.captures(**params)
            self.assertEqual(st, 400, params)
            self.assertEqual(doc["status"], "error")
            self.assertEqual(doc["errorType"], "bad_data")

    def test_writer_metrics_are_exposed(self):
        st, _, body = self.srv.get("/metrics")
        self.assertEqual(st, 200)
        text = body.decode()
        self.assertIn("# TYPE holoscope_capture_records_total counter", text)
        self.assertIn('holoscope_capture_dropped_total{reason="queue_full"} 0', text)
        self.assertIn('holoscope_capture_redactions_total{type="EMAIL"} 0', text)


if __name__ == "__main__":
    unittest.main()
