"""Helpers for end-to-end tests: start the real holoscope binary on a free
port on 127.0.0.1, talk to it over real sockets, stop it.

Every server started here is bounded in time (a watchdog kills it after
`limit_s`) and is stopped by the test that started it.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

BIN = os.environ.get("HOLOSCOPE_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "test", "holoscope")


def run(args, env=None, input_bytes=None, timeout=60):
    """Runs `holoscope ARGS` to completion; returns (code, stdout, stderr)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    p = subprocess.run([BIN] + list(args), input=input_bytes, capture_output=True,
                       env=full_env, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


class Server:
    """`holoscope serve` on 127.0.0.1 with a free port and a temporary data dir."""

    def __init__(self, args=(), env=None, limit_s=120, config=None, data=None, wait_ready=True):
        self.tmp = tempfile.mkdtemp(prefix="hs-e2e-")
        self.data = data or os.path.join(self.tmp, "data")
        argv = [BIN, "serve", "--listen", "127.0.0.1:0", "--data", self.data]
        if config is not None:
            path = os.path.join(self.tmp, "holoscope.yml")
            with open(path, "w") as f:
                f.write(config)
            argv += ["--config", path]
        argv += list(args)
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.log_path = os.path.join(self.tmp, "stderr.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=self.log, env=full_env)
        self.watchdog = threading.Timer(limit_s, self.proc.kill)
        self.watchdog.daemon = True
        self.watchdog.start()
        self.port = self._wait_port()
        self.base = "http://127.0.0.1:%d" % self.port
        if wait_ready:
            self._wait_ready()

    def _wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.get("/-/ready")[0] == 200:
                return
            if self.proc.poll() is not None:
                raise RuntimeError("holoscope exited (%d):\n%s" % (self.proc.returncode, self.logs()))
            time.sleep(0.02)
        raise RuntimeError("holoscope did not become ready:\n" + self.logs())

    def _wait_port(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            text = self.logs()
            m = re.search(r'msg=listening .*port=(\d+)|"msg":"listening".*"port":(\d+)', text)
            if m:
                return int(m.group(1) or m.group(2))
            if self.proc.poll() is not None:
                raise RuntimeError("holoscope exited early (%d):\n%s" % (self.proc.returncode, text))
            time.sleep(0.02)
        raise RuntimeError("holoscope did not report its port:\n" + self.logs())

    def logs(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def get(self, path, headers=None, method="GET", data=None, timeout=10):
        """Returns (status, headers dict, body bytes) without raising on 4xx/5xx."""
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def raw(self, data, timeout=10, read_all=True):
        """Sends raw bytes on a new connection; returns what comes back until close."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        try:
            s.sendall(data)
            chunks = []
            while True:
                try:
                    b = s.recv(65536)
                except (ConnectionResetError, socket.timeout):
                    break
                if not b:
                    break
                chunks.append(b)
                if not read_all:
                    break
            return b"".join(chunks)
        finally:
            s.close()

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Sends `sig` and waits; returns the exit code (None if it had to be killed)."""
        return stop_process(self.proc, sig, timeout)

    def close(self):
        self.stop(signal.SIGKILL)
        self.watchdog.cancel()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def stop_process(proc, sig=signal.SIGTERM, timeout=20):
    """Sends `sig` to a running process and waits; returns its exit code
    (None if it had to be killed)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
    return proc.returncode


def status_line(reply):
    """The status code of a raw HTTP reply (0 when there is none)."""
    m = re.match(rb"HTTP/1\.[01] (\d{3})", reply)
    return int(m.group(1)) if m else 0
