"""End-to-end: which local GPU serves which model (NVML pid join).

The test process serves the vLLM fixture of shared/fixtures/exposition on a
free port and starts a child process, as an engine starts its workers.
The fake NVML library the build makes (libfake_nvml.so beside the binary)
reports that child as the compute process of GPU 0.  `holoscope serve`
scrapes the fixture and collects the GPU: it must find the pid listening
on the target's port (this process), see that the GPU process descends from
it and write holoscope_gpu_model_info{gpu, UUID, Hostname, model,
instance} 1, and the default rule pack must turn it into
llm_server_gpu_info.  A GPU process of another tree gets no such series.
"""
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402

SHARED = os.environ.get("HS_SHARED_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "shared")
VLLM = os.path.join(SHARED, "fixtures", "exposition", "vllm.prom")
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


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


def fake_nvml():
    binary = os.environ.get("HOLOSCOPE_BIN", "")
    path = os.path.join(os.path.dirname(os.path.abspath(binary)), "libfake_nvml.so")
    return path if os.path.exists(path) else None


@unittest.skipIf(fake_nvml() is None, "needs libfake_nvml.so beside HOLOSCOPE_BIN (the build makes it)")
class GpuModelJoin(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="hs-gpujoin-")
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.target = "127.0.0.1:%d" % self.httpd.server_address[1]
        # a worker of this process, and a process of another tree (the shell that
        # starts it exits, so it is adopted by init)
        self.worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        stray = subprocess.run(["sh", "-c", "sleep 120 >/dev/null 2>&1 & echo $!"],
                               capture_output=True, text=True, timeout=10)
        self.stray = int(stray.stdout.split()[-1])
        data = os.path.join(self.dir, "nvml.txt")
        with open(data, "w") as f:
            f.write("count 2\ndriver 550.54.15\n"
                    "gpu0.name NVIDIA H100 80GB HBM3\ngpu0.uuid GPU-00000000-aaaa\n"
                    "gpu0.mem_total 81559\ngpu0.mem_used 70000\ngpu0.mem_free 11559\n"
                    "gpu0.proc %d 68719476736\n"
                    "gpu1.name NVIDIA H100 80GB HBM3\ngpu1.uuid GPU-11111111-bbbb\n"
                    "gpu1.mem_total 81559\ngpu1.mem_used 1000\ngpu1.mem_free 80559\n"
                    "gpu1.proc %d 1048576\n" % (self.worker.pid, self.stray))
        cfg = """global:
  scrape_interval: 1s
scrape_configs:
  - job_name: vllm
    static_configs:
      - targets: ["%s"]
collectors:
  host: false
  gpu: true
  interval: 1s
  nvml_library: %s
rules:
  evaluation_interval: 1s
""" % (self.target, fake_nvml())
        self.srv = holo.Server(config=cfg, env={"HS_FAKE_NVML_DATA": data})

    def tearDown(self):
        self.srv.close()
        self.worker.kill()
        self.worker.wait()
        try:
            os.kill(self.stray, 9)
        except OSError:
            pass
        self.httpd.shutdown()
        self.httpd.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def query(self, q):
        status, _, body = self.srv.get("/api/v1/query?query=" + urllib.parse.quote(q))
        self.assertEqual(status, 200, body)
        return json.loads(body)["data"]["result"]

    def wait_query(self, q, pred, timeout=30):
        deadline = time.time() + timeout
        res = None
        while time.time() < deadline:
            res = self.query(q)
            if pred(res):
                return res
            time.sleep(0.3)
        self.fail("%s never satisfied the condition; last result %s\n%s" %
                  (q, res, self.srv.logs()[-3000:]))

    def test_the_gpu_of_an_engine_worker_is_labelled_with_the_engine_model(self):
        res = self.wait_query("holoscope_gpu_model_info", lambda r: r)
        self.assertEqual(len(res), 1, res)
        m = res[0]["metric"]
        self.assertEqual(m["gpu"], "0")
        self.assertEqual(m["UUID"], "GPU-00000000-aaaa")
        self.assertEqual(m["model"], MODEL)
        self.assertEqual(m["instance"], self.target)
        self.assertTrue(m["Hostname"])
        # joins with the DCGM-named GPU series on (gpu, Hostname)
        res = self.query("DCGM_FI_DEV_FB_USED * on (gpu, Hostname) group_left (model) "
                         "holoscope_gpu_model_info")
        self.assertEqual([r["metric"]["model"] for r in res], [MODEL])
        # the default rule pack's GPU <-> model link covers this case too
        res = self.wait_query("llm_server_gpu_info", lambda r: r)
        self.assertEqual({(r["metric"]["model"], r["metric"]["gpu_uuid"]) for r in res},
                         {(MODEL, "GPU-00000000-aaaa")})


if __name__ == "__main__":
    unittest.main(verbosity=2)
