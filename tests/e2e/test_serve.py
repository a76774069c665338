"""End-to-end: `holoscope serve` over real sockets.

Starts the real binary on 127.0.0.1 with a free port, requests every
endpoint, checks /metrics with promtool, sends bad requests and checks the
server answers 4xx and keeps serving, and stops it with SIGTERM.
"""
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402


class ServeEndToEnd(unittest.TestCase):
    def setUp(self):
        self.srv = holo.Server()

    def tearDown(self):
        self.srv.close()

    def test_health_and_readiness_endpoints_answer_200(self):
        for path in ("/-/healthy", "/-/ready"):
            status, headers, body = self.srv.get(path)
            self.assertEqual(status, 200, path)
            self.assertIn("X-Request-Id", headers)
        status, _, body = self.srv.get("/-/healthy", method="HEAD")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")

    def test_metrics_pass_promtool_and_count_requests_by_handler_and_code(self):
        self.srv.get("/-/healthy")
        self.srv.get("/no/such/page")
        status, headers, body = self.srv.get("/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        text = body.decode()
        self.assertIn('holoscope_http_requests_total{code="200",handler="/-/healthy"} 1', text)
        self.assertIn('holoscope_http_requests_total{code="404",handler="other"} 1', text)
        self.assertIn("holoscope_build_info{", text)
        self.assertIn("process_resident_memory_bytes ", text)
        self.assertRegex(text, r"\nholoscope_tsdb_samples_appended_total \d+\n")
        self.assertRegex(text, r"\nholoscope_tsdb_head_series \d+\n")
        self.assertIn('holoscope_collector_up{collector="host"} 1', text)
        self.assertIn('holoscope_http_request_duration_seconds_bucket{handler="/-/healthy",le="10"}',
                      text)
        self.assertIn('holoscope_http_request_duration_seconds_bucket{handler="/-/healthy",le="+Inf"} 1',
                      text)
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool (Debian package prometheus) is needed")
        p = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True,
                           timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout.decode() + p.stderr.decode())

    def test_metrics_are_gzipped_only_when_the_client_accepts_gzip(self):
        status, headers, body = self.srv.get("/metrics", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("Content-Encoding"), "gzip")
        self.assertIn(b"holoscope_build_info", gzip.decompress(body))
        status, headers, body = self.srv.get("/metrics")
        self.assertNotIn("Content-Encoding", headers)

    def test_prometheus_query_api_answers_and_reports_bad_queries_as_bad_data(self):
        status, _, body = self.srv.get("/api/v1/query?query=vector(1)%2B1&time=100")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), {"status": "success", "data": {
            "resultType": "vector", "result": [{"metric": {}, "value": [100, "2"]}]}})
        status, _, body = self.srv.get("/api/v1/query_range?query=time()&start=0&end=60&step=30")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["data"]["result"][0]["values"],
                         [[0, "0"], [30, "30"], [60, "60"]])
        status, _, body = self.srv.get("/api/v1/query?query=sum(")
        self.assertEqual(status, 400)
        doc = json.loads(body)
        self.assertEqual(doc["errorType"], "bad_data")
        self.assertIn("parse error", doc["error"])
        status, _, body = self.srv.get(
            "/api/v1/format_query?query=" + holo.urllib.parse.quote('sum(rate(x{a="b"}[5m]))by(job)/2'))
        self.assertEqual(json.loads(body), {"status": "success",
                                            "data": 'sum by (job) (rate(x{a="b"}[5m])) / 2'})
        status, _, body = self.srv.get("/api/v1/format_query?query=sum(")
        self.assertEqual(status, 400)
        self.assertEqual(json.loads(body)["error"],
                         'invalid parameter "query": 1:5: parse error: unclosed left parenthesis')
        # Label names exist once the collectors' first round is stored (it
        # runs when the store opens; on a loaded machine that takes a while).
        deadline = time.time() + 20
        while True:
            status, _, body = self.srv.get("/api/v1/labels")
            self.assertEqual(status, 200, body)
            if "__name__" in json.loads(body)["data"] or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertIn("__name__", json.loads(body)["data"])
        status, _, body = self.srv.get("/api/v1/status/buildinfo")
        self.assertEqual(status, 200)
        self.assertIn("holoscopeVersion", json.loads(body)["data"])
        status, _, body = self.srv.get("/api/v1/status/config")
        self.assertIn("retention:", json.loads(body)["data"]["yaml"])
        status, _, body = self.srv.get("/api/v1/admin/tsdb/delete_series?match[]=up", method="POST",
                                       data=b"")
        self.assertEqual(status, 503)
        self.assertEqual(json.loads(body)["error"], "admin APIs disabled")

    def test_host_collector_samples_are_stored_and_queryable(self):
        # The collector's first round runs when the store opens.
        deadline = time.time() + 20
        result = []
        while time.time() < deadline and not result:
            status, _, body = self.srv.get(
                "/api/v1/query?query=count%20by%20(mode)%20(node_cpu_seconds_total)")
            self.assertEqual(status, 200, body)
            result = json.loads(body)["data"]["result"]
            time.sleep(0.1)
        modes = {r["metric"]["mode"] for r in result}
        self.assertTrue({"user", "system", "idle"} <= modes, modes)
        status, _, body = self.srv.get('/api/v1/series?match[]=node_load1')
        series = json.loads(body)["data"]
        self.assertEqual(len(series), 1)
        self.assertEqual(series[0]["job"], "node")

    def test_unknown_path_and_wrong_method_get_prometheus_style_json_errors(self):
        status, headers, body = self.srv.get("/nope")
        self.assertEqual(status, 404)
        doc = json.loads(body)
        self.assertEqual(doc["status"], "error")
        self.assertEqual(doc["errorType"], "not_found")
        status, headers, body = self.srv.get("/metrics", method="DELETE")
        self.assertEqual(status, 405)
        self.assertIn("GET", headers.get("Allow", ""))

    def test_oversized_header_gets_431_and_the_server_keeps_serving(self):
        big = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"
        reply = self.srv.raw(big)
        self.assertEqual(holo.status_line(reply), 431, reply[:200])
        self.assertEqual(self.srv.get("/-/healthy")[0], 200)

    def test_malformed_request_line_gets_400_and_the_server_keeps_serving(self):
        reply = self.srv.raw(b"THIS IS NOT HTTP\r\n\r\n")
        self.assertEqual(holo.status_line(reply), 400, reply[:200])
        reply = self.srv.raw(b"GET /-/healthy HTTP/9.9\r\nHost: x\r\n\r\n")
        self.assertIn(holo.status_line(reply), (400, 505), reply[:200])
        self.assertEqual(self.srv.get("/-/healthy")[0], 200)

    def test_huge_body_gets_413_before_it_is_sent(self):
        req = (b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n")
        reply = self.srv.raw(req)
        self.assertEqual(holo.status_line(reply), 413, reply[:200])
        self.assertEqual(self.srv.get("/-/healthy")[0], 200)

    def test_two_requests_share_one_keep_alive_connection(self):
        reqs = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\nGET /-/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        reply = self.srv.raw(reqs)
        self.assertEqual(reply.count(b"HTTP/1.1 200"), 2, reply)

    def test_reload_by_post_and_by_sighup_keeps_the_server_running(self):
        status, _, _ = self.srv.get("/-/reload", method="POST", data=b"")
        self.assertEqual(status, 200)
        self.srv.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while self.srv.logs().count("configuration reloaded") < 2 and time.time() < deadline:
            time.sleep(0.05)
        self.assertGreaterEqual(self.srv.logs().count("configuration reloaded"), 2)
        self.assertEqual(self.srv.get("/-/healthy")[0], 200)

    def test_sigterm_stops_the_server_cleanly(self):
        self.assertEqual(self.srv.get("/-/healthy")[0], 200)
        self.assertEqual(self.srv.stop(signal.SIGTERM), 0)
        logs = self.srv.logs()
        self.assertIn("msg=\"shutting down\"", logs)
        self.assertIn("msg=\"holoscope stopped\"", logs)
        self.assertIn("msg=\"store closed\"", logs)
        self.assertNotIn("ERROR: AddressSanitizer", logs)
        self.assertNotIn("runtime error", logs)


class CommandLine(unittest.TestCase):
    def test_version_flag_and_command_print_the_version(self):
        for args in (["--version"], ["version"]):
            code, out, err = holo.run(args)
            self.assertEqual(code, 0)
            self.assertTrue(out.startswith("holoscope, version "), out)

    def test_every_command_has_man_style_help(self):
        code, out, _ = holo.run(["--help"])
        self.assertEqual(code, 0)
        self.assertIn("SYNOPSIS", out)
        for cmd in ("serve", "check", "promql-test", "version", "help"):
            code, out, _ = holo.run([cmd, "--help"])
            self.assertEqual(code, 0, cmd)
            for section in ("NAME", "SYNOPSIS", "EXIT STATUS"):
                self.assertIn(section, out, cmd)

    def test_unknown_command_is_a_usage_error(self):
        code, _, err = holo.run(["frobnicate"])
        self.assertEqual(code, 2)
        self.assertIn('unknown command "frobnicate"', err)

    def test_check_config_names_file_line_and_column_of_an_unknown_key(self):
        d = holo.tempfile.mkdtemp()
        try:
            path = os.path.join(d, "bad.yml")
            with open(path, "w") as f:
                f.write("listen: 127.0.0.1:9190\nhttp:\n  max_conections: 10\n")
            code, out, err = holo.run(["check", "config", path])
            self.assertEqual(code, 2)
            self.assertIn(path + ':3:3: unknown key "http.max_conections"', err)
            with open(path, "w") as f:
                f.write("storage:\n  retention: forever\n")
            code, out, err = holo.run(["check", "config", path])
            self.assertEqual(code, 2)
            self.assertIn(path + ":2:14: storage.retention: expected a duration", err)
            with open(path, "w") as f:
                f.write("listen: 127.0.0.1:9300\nlog:\n  format: json\nstorage:\n  retention: 30d\n")
            code, out, err = holo.run(["check", "config", path])
            self.assertEqual(code, 0, err)
            self.assertIn("valid", out)
            code, out, err = holo.run(["check", "config", os.path.join(d, "missing.yml")])
            self.assertEqual(code, 1)
        finally:
            shutil.rmtree(d)

    def test_check_metrics_accepts_every_engine_fixture_and_rejects_broken_input(self):
        shared = os.environ.get("HS_SHARED_DIR") or os.path.join(
            os.path.dirname(__file__), "..", "..", "..", "shared")
        fixtures = os.path.join(shared, "fixtures", "exposition")
        names = sorted(n for n in os.listdir(fixtures) if n.endswith(".prom"))
        self.assertGreater(len(names), 5)
        for name in names:
            with open(os.path.join(fixtures, name), "rb") as f:
                code, out, err = holo.run(["check", "metrics"], input_bytes=f.read())
            self.assertEqual(code, 0, name + ": " + err[-500:])
        code, _, err = holo.run(["check", "metrics"], input_bytes=b'a{b="c" 1\n')
        self.assertEqual(code, 1)
        self.assertIn("line 1:", err)
        code, _, err = holo.run(["check", "metrics", "--openmetrics"],
                                input_bytes=b"# TYPE a counter\na_total 1\n")
        self.assertEqual(code, 1)
        self.assertIn('missing "# EOF"', err)
        code, _, err = holo.run(["check", "metrics"],
                                input_bytes=b"# TYPE foo counter\nfoo 1\n")
        self.assertEqual(code, 0)
        self.assertIn('foo counter metrics should have "_total" suffix', err)
        code, _, err = holo.run(["check", "metrics", "extra"])
        self.assertEqual(code, 2)

    def test_serve_rejects_bad_flags_and_non_loopback_listen_with_exit_code_2(self):
        code, _, err = holo.run(["serve", "--no-such-flag"])
        self.assertEqual(code, 2)
        self.assertIn("--no-such-flag", err)
        code, _, err = holo.run(["serve", "--http.read_timeout", "soon"])
        self.assertEqual(code, 2)
        self.assertIn("--http.read_timeout: expected a duration", err)
        code, _, err = holo.run(["serve", "--listen", "0.0.0.0:9190"])
        self.assertEqual(code, 2)
        self.assertIn("allow_remote", err)

    def test_environment_overrides_the_file_and_flags_override_the_environment(self):
        srv = holo.Server(config="log:\n  format: logfmt\n  level: info\n",
                          env={"HOLOSCOPE_LOG_FORMAT": "json"})
        try:
            self.assertIn('"msg":"listening"', srv.logs())
        finally:
            srv.close()
        srv = holo.Server(args=["--log.format", "logfmt"], env={"HOLOSCOPE_LOG_FORMAT": "json"})
        try:
            self.assertIn("msg=listening", srv.logs())
        finally:
            srv.close()

    def test_a_data_directory_in_use_by_another_process_is_a_runtime_failure(self):
        srv = holo.Server()
        try:
            code, _, err = holo.run(["serve", "--listen", "127.0.0.1:0", "--data", srv.data],
                                    timeout=30)
            self.assertEqual(code, 1)
            self.assertIn("cannot open the store", err)
            self.assertEqual(srv.get("/-/healthy")[0], 200)
        finally:
            srv.close()

    def test_address_in_use_is_a_runtime_failure(self):
        srv = holo.Server()
        try:
            code, _, err = holo.run(["serve", "--listen", "127.0.0.1:%d" % srv.port, "--data",
                                     srv.data + "2"], timeout=30)
            self.assertEqual(code, 1)
            self.assertIn("cannot start the HTTP server", err)
        finally:
            srv.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
