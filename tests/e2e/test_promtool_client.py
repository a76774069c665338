"""End-to-end: Prometheus's own command-line client, promtool, against holoscope.

Backfills a small OpenMetrics file into a fresh data directory with
`holoscope tsdb create-blocks-from openmetrics`, serves it on a free port of
127.0.0.1 and runs `promtool query instant|range|series|labels` against it,
checking the exit status and that the output names the series and values
of the file.  Also checks that a bad query makes promtool fail with
holoscope's error message.  Skipped when promtool is not installed.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
H2 = 7200
STEP = 30


def write_file(path, start, npoints):
    with open(path, "w") as f:
        f.write("# TYPE pt_requests counter\n")
        for inst in ("a", "b"):
            for i in range(npoints):
                f.write('pt_requests_total{instance="%s",model="m-1"} %d %d\n'
                        % (inst, i * (2 if inst == "a" else 3), start + i * STEP))
        f.write("# TYPE pt_temp gauge\n")
        for i in range(npoints):
            f.write('pt_temp{gpu="0",instance="a"} %r %d\n' % (40.0 + i % 5 / 4.0, start + i * STEP))
        f.write("# EOF\n")


@unittest.skipUnless(os.access(PROMTOOL, os.X_OK), "promtool is not installed")
class PromtoolClient(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="hs-promtool-")
        now = int(time.time())
        cls.start = (now // H2) * H2 - 4 * H2
        cls.npoints = 3600 // STEP + 1
        cls.end = cls.start + (cls.npoints - 1) * STEP
        om = os.path.join(cls.tmp, "data.om")
        write_file(om, cls.start, cls.npoints)
        ddir = os.path.join(cls.tmp, "data")
        code, out, err = holo.run(["tsdb", "create-blocks-from", "openmetrics", om, ddir])
        if code != 0:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise RuntimeError("backfill failed: " + out + err)
        cls.srv = holo.Server(data=ddir)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def promtool(self, *args):
        p = subprocess.run([PROMTOOL, "query"] + list(args), capture_output=True, timeout=30)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def test_query_instant_prints_each_series_with_its_value(self):
        t = self.start + 600 + 5
        code, out, err = self.promtool("instant", "--time=%d" % t, self.srv.base,
                                       "pt_requests_total")
        self.assertEqual(code, 0, out + err)
        lines = sorted(l for l in out.splitlines() if l.strip())
        self.assertEqual(len(lines), 2, out)
        # sample 20 (t = start + 600): a = 40, b = 60
        self.assertIn('instance="a"', lines[0])
        self.assertIn("=> 40 @[%d]" % t, lines[0])
        self.assertIn('instance="b"', lines[1])
        self.assertIn("=> 60 @[%d]" % t, lines[1])

    def test_query_instant_of_an_aggregation_and_a_scalar(self):
        t = self.start + 900
        code, out, err = self.promtool("instant", "--time=%d" % t, self.srv.base,
                                       "sum(rate(pt_requests_total[5m]))")
        self.assertEqual(code, 0, out + err)
        # a grows 2 per 30 s, b 3 per 30 s: 5/30 per second together
        value = float(out.split("=>")[1].split("@")[0])
        self.assertAlmostEqual(value, 5.0 / 30.0, places=9)
        code, out, err = self.promtool("instant", "--time=%d" % t, self.srv.base, "1 + 2")
        self.assertEqual(code, 0, out + err)
        self.assertEqual(out.strip(), "scalar: 3 @[%d]" % t)

    def test_query_range_prints_every_step(self):
        s, e = self.start + 300, self.start + 900
        code, out, err = self.promtool("range", "--start=%d" % s, "--end=%d" % e,
                                       "--step=1m", self.srv.base,
                                       'pt_temp{instance="a"}')
        self.assertEqual(code, 0, out + err)
        self.assertIn('pt_temp{gpu="0", instance="a"}', out)
        stamps = [l for l in out.splitlines() if " @[" in l]
        self.assertEqual(len(stamps), 11, out)
        # sample i = (t - start) / 30, value 40 + (i % 5) / 4
        for line in stamps:
            v, t = line.split(" @[")
            i = (int(float(t.rstrip("]"))) - self.start) // STEP
            self.assertEqual(float(v), 40.0 + i % 5 / 4.0, line)

    def test_query_series_lists_the_matching_series(self):
        code, out, err = self.promtool("series", "--match=pt_requests_total",
                                       "--match=pt_temp",
                                       "--start=%d" % self.start, "--end=%d" % self.end,
                                       self.srv.base)
        self.assertEqual(code, 0, out + err)
        lines = sorted(l for l in out.splitlines() if l.strip())
        self.assertEqual(lines, sorted([
            '{__name__="pt_requests_total", instance="a", model="m-1"}',
            '{__name__="pt_requests_total", instance="b", model="m-1"}',
            '{__name__="pt_temp", gpu="0", instance="a"}']), out)

    def test_query_labels_lists_the_values_of_a_label(self):
        code, out, err = self.promtool("labels", "--start=%d" % self.start,
                                       "--end=%d" % self.end, self.srv.base, "instance")
        self.assertEqual(code, 0, out + err)
        self.assertEqual(sorted(l for l in out.splitlines() if l.strip()), ["a", "b"])
        code, out, err = self.promtool("labels", "--start=%d" % self.start,
                                       "--end=%d" % self.end, self.srv.base, "__name__")
        self.assertEqual(code, 0, out + err)
        self.assertEqual(sorted(l for l in out.splitlines() if l.strip()),
                         ["pt_requests_total", "pt_temp"])

    def test_a_bad_query_makes_promtool_fail_with_the_server_s_message(self):
        code, out, err = self.promtool("instant", "--time=%d" % self.end, self.srv.base,
                                       "sum(")
        self.assertNotEqual(code, 0, out + err)
        self.assertIn("parse error", out + err)


if __name__ == "__main__":
    unittest.main()
