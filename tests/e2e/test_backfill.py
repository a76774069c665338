"""End-to-end: `holoscope tsdb create-blocks-from openmetrics`, then serve.

Writes an OpenMetrics file with known contents (counters and gauges over
two block windows, some series out of order, escaped label values,
fractional-second timestamps), backfills it into a fresh directory, starts
`holoscope serve --data DIR` on a free port and checks that /api/v1/query
sees exactly the series and values of the file.  Also checks the command
line: help, usage errors, and input errors that name their line.
"""
import json
import os
import shutil
import sys
import tempfile
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402

H2 = 7200
STEP = 30
NSERIES = 40


def series_value(kind, k, i):
    """Value of sample i of series k: counters grow, gauges wander."""
    if kind == "counter":
        return float(k * 10 + i * (k % 7 + 1))
    return float((k * 37 + i * 11) % 101) / 4.0


def write_history(path, start, npoints):
    """Writes the OpenMetrics history; returns {(name, instance): [(t_s, v), ...]}."""
    data = {}
    with open(path, "w") as f:
        for kind, name, sample in (("counter", "bf_requests", "bf_requests_total"),
                                   ("gauge", "bf_temp_celsius", "bf_temp_celsius")):
            f.write("# TYPE %s %s\n" % (name, kind))
            f.write("# HELP %s backfill test data\n" % name)
            for k in range(NSERIES):
                inst = "node-%02d" % k
                pts = [(start + i * STEP, series_value(kind, k, i)) for i in range(npoints)]
                data[(sample, inst)] = pts
                order = list(pts)
                if k % 5 == 3:
                    order.reverse()  # out of order: sorted by the builder
                for t, v in order:
                    f.write('%s{instance="%s",path="/v1/\\"chat\\""} %r %d\n'
                            % (sample, inst, v, t))
        # one series with fractional-second timestamps (truncated to ms)
        pts = []
        for i in range(10):
            t = start + i * 60 + 0.25
            f.write('bf_frac{instance="x"} %d %.3f\n' % (i, t))
            pts.append((t, float(i)))
        data[("bf_frac", "x")] = pts
        f.write("# EOF\n")
    return data


class BackfillEndToEnd(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="hs-backfill-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def query(self, srv, q, t):
        path = "/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": "%.3f" % t})
        status, _, body = srv.get(path)
        self.assertEqual(status, 200, body)
        doc = json.loads(body)
        self.assertEqual(doc["status"], "success", doc)
        return doc["data"]["result"]

    def test_backfilled_blocks_are_served_with_the_file_s_series_and_values(self):
        # 3 h of data starting on a 2 h boundary a few days back: two blocks.
        now = int(__import__("time").time())
        start = (now // H2) * H2 - 3 * 24 * 3600
        npoints = 3 * 3600 // STEP + 1
        om = os.path.join(self.tmp, "history.om")
        data = write_history(om, start, npoints)
        ddir = os.path.join(self.tmp, "data")
        code, out, err = holo.run(["tsdb", "create-blocks-from", "openmetrics", om, ddir])
        self.assertEqual(code, 0, err)
        nseries = 2 * NSERIES + 1
        nsamples = 2 * NSERIES * npoints + 10
        self.assertIn("wrote 2 blocks", out)
        self.assertIn("%d series, %d samples" % (nseries, nsamples), out)

        code, out, err = holo.run(["tsdb", "list", ddir])
        self.assertEqual(code, 0, err)
        rows = [l.split() for l in out.splitlines()[1:] if l.strip()]
        self.assertEqual(len(rows), 2, out)
        self.assertEqual(int(rows[0][1]), start * 1000)
        self.assertEqual(sum(int(r[4]) for r in rows), nsamples)

        srv = holo.Server(data=ddir)
        try:
            end = start + (npoints - 1) * STEP
            for t in (end, start + 3600, start + H2, start + H2 - STEP):
                i = (t - start) // STEP
                res = self.query(srv, "count(bf_requests_total)", t)
                self.assertEqual(res[0]["value"][1], str(NSERIES), t)
                res = self.query(srv, "sum(bf_requests_total)", t)
                want = sum(series_value("counter", k, i) for k in range(NSERIES))
                self.assertAlmostEqual(float(res[0]["value"][1]), want, places=6)
                res = self.query(srv, "sum(bf_temp_celsius)", t)
                want = sum(series_value("gauge", k, i) for k in range(NSERIES))
                self.assertAlmostEqual(float(res[0]["value"][1]), want, places=6)
            # every series with its labels, escapes included
            res = self.query(srv, 'bf_temp_celsius{instance="node-03"}', end)
            self.assertEqual(len(res), 1)
            self.assertEqual(res[0]["metric"]["path"], '/v1/"chat"')
            self.assertEqual(float(res[0]["value"][1]), series_value("gauge", 3, npoints - 1))
            # raw samples of one out-of-order series over a range selector
            res = self.query(srv, 'bf_requests_total{instance="node-08"}[10m]', end)
            got = [(float(t), float(v)) for t, v in res[0]["values"]]
            want = [(float(t), v) for t, v in data[("bf_requests_total", "node-08")][-20:]]
            self.assertEqual(got, want)
            # fractional seconds survive as milliseconds
            res = self.query(srv, "bf_frac[1h]", start + 3000)
            self.assertEqual([float(t) for t, _ in res[0]["values"]],
                             [t for t, _ in data[("bf_frac", "x")]])
        finally:
            srv.close()

    def test_input_errors_name_their_line_and_exit_1(self):
        cases = [
            ("# TYPE a gauge\na 1 100\na 2\n# EOF\n", "line 3", "expected timestamp"),
            ("a 1 100\n", "line 2", "EOF"),
            ("a 1 100\na 2 100\n# EOF\n", "line 2", "duplicate sample for timestamp"),
            ("a{b=\"1\" 1 100\n# EOF\n", "line 1", ""),
        ]
        for text, line, what in cases:
            om = os.path.join(self.tmp, "bad.om")
            with open(om, "w") as f:
                f.write(text)
            ddir = os.path.join(self.tmp, "bad-data")
            code, out, err = holo.run(["tsdb", "create-blocks-from", "openmetrics", om, ddir])
            self.assertEqual(code, 1, (text, err))
            self.assertIn(line, err, text)
            self.assertIn(what, err, text)
            self.assertFalse(os.path.exists(ddir), text)
        code, _, err = holo.run(["tsdb", "create-blocks-from", "openmetrics",
                                 os.path.join(self.tmp, "missing.om"), self.tmp])
        self.assertEqual(code, 1)
        self.assertIn("missing.om", err)

    def test_help_and_usage_errors(self):
        code, out, _ = holo.run(["tsdb", "create-blocks-from", "--help"])
        self.assertEqual(code, 0)
        self.assertIn("SYNOPSIS", out)
        self.assertIn("--max-block-duration", out)
        for args in (["tsdb"], ["tsdb", "nope"], ["tsdb", "create-blocks-from", "csv", "x"],
                     ["tsdb", "create-blocks-from", "openmetrics"],
                     ["tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=xx",
                      "f"]):
            code, _, err = holo.run(args)
            self.assertEqual(code, 2, args)
            self.assertTrue(err.strip(), args)

    def test_max_block_duration_widens_blocks_like_promtool(self):
        start = 1700000000 // H2 * H2
        om = os.path.join(self.tmp, "h.om")
        write_history(om, start, 5 * 3600 // STEP)  # 5 h
        ddir = os.path.join(self.tmp, "wide")
        code, out, err = holo.run(["tsdb", "create-blocks-from", "openmetrics",
                                   "--max-block-duration=8h", om, ddir])
        self.assertEqual(code, 0, err)
        # 8h rounds down to 6h windows; 5 h from a 2 h boundary fit in one or two
        code, out, _ = holo.run(["tsdb", "list", ddir])
        rows = [l.split() for l in out.splitlines()[1:] if l.strip()]
        for r in rows:
            self.assertEqual(int(r[1]) // (6 * 3600 * 1000),
                             (int(r[2]) - 1) // (6 * 3600 * 1000))
        self.assertLessEqual(len(rows), 2)


if __name__ == "__main__":
    unittest.main()
