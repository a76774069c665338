"""End-to-end: `holoscope capture analyze` over capture files.

Runs the real binary on the shared SageMaker Data Capture fixture (JSON and
BASE64 text/event-stream outputs, an embeddings record, a truncated
answer) and on a generated capture tree laid out like the gateway writes
it, where one model degrades half-way (refusals and loops, longer answers)
while another stays steady: the degraded model must show drift and the
steady one must not.  Also checks help, usage errors and a malformed line
reported as FILE:LINE while the summary is still printed.
"""
import base64
import json
import os
import random
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402

SHARED = os.environ.get("HS_SHARED_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared")
FIXTURE = os.path.join(SHARED, "fixtures", "capture", "sagemaker-datacapture.jsonl")

WORDS = ("latency model server tokens request cache memory batch queue answer grows "
         "signal measures careful users data system replica node power fleet shows "
         "value result simple steady first next useful metric").split()


def chat_record(model, prompt, text, finish="stop", tokens=None, stream=False, n=0):
    """One capture line; streamed answers are stored raw (BASE64 SSE)."""
    req = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    if stream:
        req["stream"] = True
        events = []
        for piece in [text[i:i + 7] for i in range(0, len(text), 7)]:
            events.append({"choices": [{"index": 0, "delta": {"content": piece},
                                        "finish_reason": None}]})
        events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if tokens is not None:
            events.append({"choices": [], "usage": {"completion_tokens": tokens}})
        body = "".join("data: %s\n\n" % json.dumps(e) for e in events) + "data: [DONE]\n\n"
        out = {"observedContentType": "text/event-stream", "mode": "OUTPUT",
               "data": base64.b64encode(body.encode()).decode(), "encoding": "BASE64"}
    else:
        resp = {"object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish}]}
        if tokens is not None:
            resp["usage"] = {"completion_tokens": tokens}
        out = {"observedContentType": "application/json", "mode": "OUTPUT",
               "data": json.dumps(resp), "encoding": "JSON"}
    return json.dumps({
        "captureData": {
            "endpointInput": {"observedContentType": "application/json", "mode": "INPUT",
                              "data": json.dumps(req), "encoding": "JSON"},
            "endpointOutput": out},
        "eventMetadata": {"eventId": "00000000-0000-4000-8000-%012d" % n,
                          "inferenceTime": "2026-01-01T00:00:%02dZ" % (n % 60)},
        "eventVersion": "0"}, separators=(",", ":"))


def good_answer(rng, tokens):
    return " ".join(rng.choice(WORDS) for _ in range(tokens)) + "."


class CaptureAnalyze(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hs-capture-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def analyze(self, *args):
        code, out, err = holo.run(["capture", "analyze"] + list(args), timeout=60)
        return code, out, err

    def test_fixture_is_scored_record_by_record(self):
        code, out, err = self.analyze("--json", "--records", FIXTURE)
        self.assertEqual(code, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["files"], 1)
        self.assertEqual(doc["records"], 4)
        self.assertEqual(doc["unscored"], 1)  # the embeddings record
        self.assertEqual(doc["errors"], 0)
        models = {m["model"]: m for m in doc["models"]}
        self.assertEqual(list(models), ["llama-3.1-8b-instruct"])
        llama = models["llama-3.1-8b-instruct"]
        self.assertEqual(llama["records"], 3)
        self.assertEqual(llama["checks"]["truncation"], {"pass": 2, "fail": 1})
        self.assertEqual(llama["checks"]["empty"], {"pass": 3, "fail": 0})
        self.assertIsNone(llama["drift"]["score"]["psi"])  # far too few records
        recs = {r["line"]: r for r in doc["record_scores"]}
        self.assertEqual(recs[1]["quality"]["score"], 1)
        # Record 2 is a raw SSE stream: its deltas join to "Hi!".
        self.assertEqual(recs[2]["quality"]["failed"], [])
        self.assertEqual(recs[2]["quality"]["checks"]["empty"], 1)
        self.assertIsNone(recs[3]["quality"])
        self.assertEqual(recs[4]["quality"]["failed"], ["truncation"])
        self.assertLess(recs[4]["quality"]["score"], 0.6)

        code, out, err = self.analyze(FIXTURE)
        self.assertEqual(code, 0, err)
        self.assertIn("MODEL", out)
        row = [l for l in out.splitlines() if l.startswith("llama-3.1-8b-instruct")]
        self.assertEqual(len(row), 1)
        self.assertIn("1 file(s), 4 record(s), 1 unscored", out)

    def test_degrading_model_shows_drift_and_steady_model_does_not(self):
        rng = random.Random(42)
        # The capture layout: <root>/<endpoint>/<variant>/YYYY/MM/DD/HH/<file>.jsonl
        n = 0
        for model in ("steady", "degrading"):
            for hour in range(3):
                d = os.path.join(self.tmp, model, "vllm-a", "2026", "01", "01", "%02d" % hour)
                os.makedirs(d)
                with open(os.path.join(d, "00-00-000-x.jsonl"), "w") as f:
                    for i in range(150):
                        n += 1
                        bad = model == "degrading" and hour == 2
                        if bad and i % 2 == 0:
                            text, tokens = "I'm sorry, but I can't help with that.", 10
                        elif bad:
                            text, tokens = " ".join(["the answer is"] * 200), 600
                        else:
                            tokens = max(5, int(rng.gauss(120, 25)))
                            text = good_answer(rng, tokens)
                        f.write(chat_record(model, "Explain the metric in plain words.", text,
                                            tokens=tokens, stream=(i % 3 == 0), n=n) + "\n")
        code, out, err = self.analyze("--json", "--reference", "200", "--recent", "100",
                                      "--min-recent", "50", self.tmp)
        self.assertEqual(code, 0, err)
        doc = json.loads(out)
        self.assertEqual(doc["files"], 6)
        self.assertEqual(doc["records"], 900)
        models = {m["model"]: m for m in doc["models"]}
        steady, bad = models["steady"], models["degrading"]
        self.assertEqual(steady["records"], 450)
        for sig in ("score", "output_tokens"):
            self.assertIsNotNone(steady["drift"][sig]["psi"])
            self.assertLess(steady["drift"][sig]["psi"], 0.1, sig)
            self.assertLess(steady["drift"][sig]["ks"], 0.2, sig)
            self.assertGreater(bad["drift"][sig]["psi"], 0.25, sig)
            # Half the bad answers are shorter, half longer: D is 0.5 for lengths.
            self.assertGreater(bad["drift"][sig]["ks"], 0.45, sig)
        self.assertEqual(bad["checks"]["refusal"]["fail"], 75)
        self.assertEqual(bad["checks"]["repetition"]["fail"], 75)
        self.assertEqual(steady["checks"]["refusal"]["fail"], 0)
        self.assertEqual(steady["checks"]["repetition"]["fail"], 0)
        self.assertGreater(steady["score_mean"], 0.95)
        self.assertLess(bad["score_p10"], 0.2)

    def test_malformed_line_is_reported_and_the_rest_scored(self):
        path = os.path.join(self.tmp, "mixed.jsonl")
        with open(path, "w") as f:
            f.write(chat_record("m", "What is the capital of France?", "Paris.", n=1) + "\n")
            f.write('{"captureData": {"endpointInput": \n')
            f.write('{"captureData":{"endpointOutput":{"data":"@@@","encoding":"BASE64"}}}\n')
            f.write(chat_record("m", "Write JSON", "", finish="length", n=4))  # no final \n
        code, out, err = self.analyze(path)
        self.assertEqual(code, 1)
        self.assertIn(path + ":2:", err)
        self.assertIn(path + ":3: captureData.endpointOutput.data: invalid base64", err)
        self.assertIn("2 record(s)", out)
        self.assertIn("2 error(s)", out)

    def test_records_longer_than_the_ceiling_are_skipped(self):
        path = os.path.join(self.tmp, "big.jsonl")
        with open(path, "w") as f:
            f.write(chat_record("m", "Say something long", "word " * 2000, n=1) + "\n")
            f.write(chat_record("m", "What is the capital of France?", "Paris.", n=2) + "\n")
        code, out, err = self.analyze("--json", "--max-line-bytes", "4KiB", path)
        self.assertEqual(code, 1)
        self.assertIn(path + ":1: record longer than 4096 bytes, skipped", err)
        doc = json.loads(out)
        self.assertEqual((doc["records"], doc["errors"]), (1, 1))

    def test_help_and_usage_errors(self):
        self.assertEqual(holo.run(["help", "capture"])[0], 0)
        code, out, _ = holo.run(["capture", "--help"])
        self.assertEqual(code, 0)
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS"):
            self.assertIn(section, out)
        self.assertEqual(holo.run(["capture"])[0], 2)
        self.assertEqual(holo.run(["capture", "frobnicate"])[0], 2)
        self.assertEqual(self.analyze()[0], 2)
        self.assertEqual(self.analyze("--bogus", FIXTURE)[0], 2)
        code, _, err = self.analyze("--weights", "tone=1", FIXTURE)
        self.assertEqual(code, 2)
        self.assertIn("unknown check \"tone\"", err)
        self.assertEqual(self.analyze("--recent", "0", FIXTURE)[0], 2)
        code, _, err = self.analyze(os.path.join(self.tmp, "missing.jsonl"))
        self.assertEqual(code, 1)
        self.assertIn("missing.jsonl", err)


if __name__ == "__main__":
    unittest.main()
