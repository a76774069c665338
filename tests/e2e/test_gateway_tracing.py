"""End-to-end: gateway spans (spec/gateway.md §6.1, §7) reach an OTLP/HTTP
receiver.  A request with a valid traceparent gives a SERVER span in the
caller's trace, parented to the caller's span, and a CLIENT span under it
whose id is the parent id the upstream received in its traceparent, with
the GenAI attributes of the request.  The spans are flushed when serve
stops, so the test needs no timing.
"""
import http.client
import http.server
import json
import os
import re
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import gw_upstream  # noqa: E402
import holo  # noqa: E402

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


class Collector(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        self.server.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def spans_of(bodies):
    out = []
    for b in bodies:
        for rs in json.loads(b).get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                out.extend(ss.get("spans", []))
    return out


def attrs(span):
    res = {}
    for a in span.get("attributes", []):
        v = a["value"]
        res[a["key"]] = next(iter(v.values())) if v else None
    return res


class GatewayTracing(unittest.TestCase):
    def test_spans_join_the_callers_trace_with_genai_attributes(self):
        col = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
        col.bodies = []
        threading.Thread(target=col.serve_forever, daemon=True).start()
        up = gw_upstream.Upstream()
        up_url = up.url
        cfg = """
collectors: {host: false, gpu: false}
rules: {default_pack: false}
gateway:
  listen: 127.0.0.1:0
  tracing: {endpoint: "http://127.0.0.1:%d/v1/traces"}
  routes:
    - model: test-model
      provider: vllm
      upstreams: [%s]
""" % (col.server_address[1], up.url)
        srv = holo.Server(config=cfg, limit_s=60)
        try:
            port = None
            deadline = time.time() + 30
            while port is None and time.time() < deadline:
                m = re.search(r"gateway listening.*?port=(\d+)", srv.logs())
                port = int(m.group(1)) if m else None
                time.sleep(0.05)
            self.assertIsNotNone(port, srv.logs())
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            body = json.dumps({"model": "test-model", "stream": True,
                               "stream_options": {"include_usage": True}, "messages": [],
                               "max_tokens": 64, "temperature": 0.5, "top_p": 0.9, "seed": 7,
                               "stop": ["\n\n", "END"]})
            c.request("POST", "/v1/chat/completions", body=body,
                      headers={"Content-Type": "application/json",
                               "traceparent": "00-%s-%s-01" % (TRACE, PARENT)})
            r = c.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            c.close()
            self.assertEqual(srv.stop(), 0, srv.logs()[-3000:])
        finally:
            srv.close()
            up_tp = [h["headers"].get("traceparent") for h in up.recorded()]
            up.close()
            col.shutdown()
            col.server_close()
        spans = spans_of(col.bodies)
        self.assertEqual(len(spans), 2, spans)
        server = next(s for s in spans if s["kind"] == 2)
        client = next(s for s in spans if s["kind"] == 3)
        self.assertEqual(server["traceId"], TRACE)
        self.assertEqual(client["traceId"], TRACE)
        self.assertEqual(server["parentSpanId"], PARENT)
        self.assertEqual(client["parentSpanId"], server["spanId"])
        self.assertEqual(up_tp, ["00-%s-%s-01" % (TRACE, client["spanId"])])
        self.assertEqual(client["name"], "chat test-model")
        a = attrs(client)
        self.assertEqual(a["gen_ai.operation.name"], "chat")
        self.assertEqual(a["gen_ai.provider.name"], "vllm")
        self.assertEqual(a["gen_ai.request.model"], "test-model")
        self.assertEqual(a["gen_ai.request.stream"], True)
        self.assertEqual(str(a["gen_ai.usage.output_tokens"]), "9")
        self.assertEqual(str(a["gen_ai.usage.input_tokens"]), "19")
        self.assertEqual(a["holoscope.outcome"], "ok")
        self.assertEqual(a["holoscope.finish_reasons"], "stop")
        self.assertEqual(a["gen_ai.response.model"], "gpt-4o-mini-2024-07-18")
        self.assertEqual(str(attrs(server)["http.response.status_code"]), "200")
        # request parameters, the upstream's address, the response id and raw finish reasons
        self.assertEqual(str(a["gen_ai.request.max_tokens"]), "64")
        self.assertEqual(a["gen_ai.request.temperature"], 0.5)
        self.assertEqual(a["gen_ai.request.top_p"], 0.9)
        self.assertEqual(str(a["gen_ai.request.seed"]), "7")
        self.assertEqual([v["stringValue"] for v in a["gen_ai.request.stop_sequences"]["values"]],
                         ["\n\n", "END"])
        self.assertEqual(a["server.address"], "127.0.0.1")
        self.assertEqual(str(a["server.port"]), up_url.rsplit(":", 1)[1])
        self.assertTrue(a["gen_ai.response.id"].startswith("chatcmpl-"), a["gen_ai.response.id"])
        self.assertEqual([v["stringValue"] for v in a["gen_ai.response.finish_reasons"]["values"]],
                         ["stop"])


if __name__ == "__main__":
    unittest.main()
