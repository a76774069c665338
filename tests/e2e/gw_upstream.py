"""A test upstream for the gateway: an OpenAI-compatible server that replays
the SSE fixtures of shared/fixtures/sse with configurable per-event delays,
plus fault modes.

Behaviour is chosen per request by headers, which the gateway forwards
untouched:

  x-test-fixture: openai-chat-stream.txt   fixture replayed for stream requests
  x-test-delay-ms: 20                      pause before every event after the first
  x-test-first-byte-ms: 100                pause before the response headers
  x-test-mode: normal | stall | garbage | huge | status500 | truncate
      stall      send the first 3 events, then hold the connection silent for 30 s
      garbage    answer 200 text/event-stream with bytes that are not SSE, then EOF
      huge       a non-streamed 200 with x-test-huge-bytes bytes of JSON (default 8 MiB)
      status500  answer 500 with a vLLM-shaped error body
      truncate   send half the fixture, then close the connection without a final chunk
      flood      stream x-test-flood-bytes (default 32 MiB) of 1 KiB chat chunks as fast
                 as the socket takes them, then [DONE]; the time the last write
                 returned is in /_stats as flood_done_at

Non-streamed requests get a chat.completion JSON with usage 14/3.  Every
request is recorded (path, headers, body); GET /_requests returns them and
GET /_stats returns counters, among them `aborted` (writes that failed
because the peer closed: the gateway cancelled the call).  Usable as a
module (Upstream class) or run as a script: `gw_upstream.py PORT`.
"""
import http.server
import json
import os
import socketserver
import sys
import threading
import time

SHARED = os.environ.get("HS_SHARED_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared")
SSE_DIR = os.path.join(SHARED, "fixtures", "sse")

NON_STREAM = {
    "id": "chatcmpl-test1", "object": "chat.completion", "created": 1767225601,
    "model": "test-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."},
                 "logprobs": None, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 14, "completion_tokens": 3, "total_tokens": 17},
}


def fixture_events(name):
    """The fixture's events, each with its trailing blank line."""
    with open(os.path.join(SSE_DIR, name), "rb") as f:
        data = f.read()
    parts = data.split(b"\n\n")
    events = [p + b"\n\n" for p in parts[:-1]]
    if parts[-1]:
        events.append(parts[-1])
    return events


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _record(self, body):
        up = self.server.owner
        with up.lock:
            up.requests.append({"path": self.path, "headers": dict(self.headers.items()),
                                "body": body.decode(errors="replace")})
            up.stats["requests"] += 1

    def do_GET(self):
        up = self.server.owner
        if self.path == "/_requests":
            with up.lock:
                body = json.dumps(up.requests).encode()
        elif self.path == "/_stats":
            with up.lock:
                body = json.dumps(up.stats).encode()
        elif self.path == "/health":
            body = b"ok"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        self._record(body)
        try:
            req = json.loads(body)
        except ValueError:
            req = {}
        first = float(self.headers.get("x-test-first-byte-ms") or 0) / 1000
        if first:
            time.sleep(first)
        mode = self.headers.get("x-test-mode") or "normal"
        try:
            if mode == "status500":
                self._json(500, {"error": {"message": "engine failed", "type": "InternalServerError",
                                           "param": None, "code": 500}})
            elif mode == "huge":
                size = int(self.headers.get("x-test-huge-bytes") or (8 << 20))
                pad = "x" * max(0, size - 64)
                self._json(200, {"object": "chat.completion", "pad": pad, "choices": []})
            elif req.get("stream") or self.path.endswith("/generate_stream"):
                self._stream(mode)
            else:
                self._json(200, NON_STREAM)
        except (BrokenPipeError, ConnectionResetError):
            with self.server.owner.lock:
                self.server.owner.stats["aborted"] += 1
            self.close_connection = True

    def _json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, mode):
        name = self.headers.get("x-test-fixture") or "openai-chat-stream.txt"
        delay = float(self.headers.get("x-test-delay-ms") or 0) / 1000
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        if mode == "flood":
            self._flood(int(self.headers.get("x-test-flood-bytes") or (32 << 20)))
            return
        if mode == "garbage":
            self._chunk(b"\x00\xffthis is not SSE\r\r\n::::\x7f" * 50)
            self._chunk(b"")
            return
        events = fixture_events(name)
        if mode == "truncate":
            events = events[: len(events) // 2]
        for i, ev in enumerate(events):
            if i and delay:
                time.sleep(delay)
            self._chunk(ev)
            if mode == "stall" and i == 2:
                for _ in range(300):  # silent; probe the socket so a cancel is seen
                    time.sleep(0.1)
                    if self.server.owner.closing:
                        break
                self.close_connection = True
                return
        if mode == "truncate":
            self.close_connection = True
            self.wfile.flush()
            return
        self._chunk(b"")


    def _flood(self, total):
        text = "x" * 900
        ev = ("data: " + json.dumps({"object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {"content": text}, "finish_reason": None}]}) + "\n\n").encode()
        sent = 0
        batch = ev * 64
        while sent < total:
            self._chunk(batch)
            sent += len(batch)
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")
        with self.server.owner.lock:
            self.server.owner.stats["flood_done_at"] = time.time()


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # peers that leave mid-answer are part of the tests


class Upstream:
    """The test upstream on 127.0.0.1 and a free port, on a daemon thread."""

    def __init__(self, port=0):
        self.lock = threading.Lock()
        self.requests = []
        self.stats = {"requests": 0, "aborted": 0}
        self.closing = False
        self.httpd = _Server(("127.0.0.1", port), Handler)
        self.httpd.owner = self
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def recorded(self):
        with self.lock:
            return list(self.requests)

    def counters(self):
        with self.lock:
            return dict(self.stats)

    def close(self):
        self.closing = True
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":
    u = Upstream(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(u.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        u.close()
