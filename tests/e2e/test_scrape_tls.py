"""End-to-end: a job's tls_config is used for its scrapes.

An HTTPS target in the test (Python's ssl module, a certificate made with
`openssl req` for the name metrics.test) serves the vLLM fixture.  Jobs
scrape it with the certificate as ca_file and server_name metrics.test (up),
without tls_config (the system store: up 0, a certificate error), with
insecure_skip_verify (up), and with a ca_file that does not exist (up 0,
the error names tls_config).
"""
import http.server
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402

SHARED = os.environ.get("HS_SHARED_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared")
VLLM = os.path.join(SHARED, "fixtures", "exposition", "vllm.prom")


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(VLLM, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@unittest.skipIf(shutil.which("openssl") is None, "needs the openssl command (scripts/deps.sh)")
class ScrapeTLS(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hs-tls-")
        self.cert = os.path.join(self.dir, "cert.pem")
        key = os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", key, "-out", self.cert, "-days", "2",
                        "-subj", "/CN=metrics.test",
                        "-addext", "subjectAltName=DNS:metrics.test"],
                       check=True, capture_output=True, timeout=60)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, key)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        target = "127.0.0.1:%d" % self.httpd.server_address[1]
        job = """  - job_name: %s
    scheme: https
%s    static_configs:
      - targets: ["%s"]
"""
        jobs = [("verified", "    tls_config: {ca_file: %s, server_name: metrics.test}\n" %
                 self.cert),
                ("system_store", ""),
                ("insecure", "    tls_config: {insecure_skip_verify: true}\n"),
                ("bad_ca", "    tls_config: {ca_file: %s/missing.pem}\n" % self.dir)]
        cfg = "global:\n  scrape_interval: 1s\nscrape_configs:\n"
        cfg += "".join(job % (name, tls, target) for name, tls in jobs)
        cfg += "rules:\n  default_pack: false\ncollectors:\n  host: false\n  gpu: false\n"
        self.srv = holo.Server(config=cfg)

    def tearDown(self):
        self.srv.close()
        self.httpd.shutdown()
        self.httpd.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_each_job_scrapes_with_its_own_tls_settings(self):
        deadline = time.time() + 30
        active = []
        while time.time() < deadline:
            _, _, body = self.srv.get("/api/v1/targets")
            active = json.loads(body)["data"]["activeTargets"]
            if len(active) == 4 and all(t["health"] != "unknown" for t in active):
                break
            time.sleep(0.2)
        by_job = {t["labels"]["job"]: t for t in active}
        self.assertEqual(set(by_job), {"verified", "system_store", "insecure", "bad_ca"})
        self.assertEqual(by_job["verified"]["health"], "up", by_job["verified"])
        self.assertEqual(by_job["insecure"]["health"], "up", by_job["insecure"])
        self.assertEqual(by_job["system_store"]["health"], "down")
        self.assertRegex(by_job["system_store"]["lastError"].lower(), "certif|verif|tls")
        self.assertEqual(by_job["bad_ca"]["health"], "down")
        self.assertIn("tls_config", by_job["bad_ca"]["lastError"])
        self.assertIn("missing.pem", by_job["bad_ca"]["lastError"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
