"""End-to-end: the Grafana dashboard export.

`holoscope grafana-dashboard` prints the model view as Grafana JSON and a
running server answers the same document at GET /api/v1/grafana-dashboard.
Checks the JSON shape Grafana needs (schemaVersion, a datasource variable of
type datasource for prometheus, model/instance/gpu query variables, rows
then panels on the 24-column grid, right-axis overrides, the 5% truncation
threshold, the fleet table) and runs every panel expression, with the
template variables substituted, through /api/v1/query of the server: each
must answer status "success".
"""
import json
import os
import sys
import tempfile
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
import holo  # noqa: E402

SUBST = {"$model": ".+", "$instance": ".+", "$gpu": ".+"}


def substitute(expr):
    for k, v in SUBST.items():
        expr = expr.replace(k, v)
    return expr


class GrafanaDashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        code, out, err = holo.run(["grafana-dashboard"])
        assert code == 0, err
        cls.text = out
        cls.doc = json.loads(out)
        cls.srv = holo.Server()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def panels(self):
        return [p for p in self.doc["panels"] if p["type"] != "row"]

    def test_dashboard_has_schema_version_and_template_variables(self):
        d = self.doc
        self.assertEqual(d["schemaVersion"], 39)
        self.assertEqual(d["uid"], "holoscope-model")
        variables = {v["name"]: v for v in d["templating"]["list"]}
        self.assertEqual(list(variables), ["datasource", "model", "instance", "gpu"])
        ds = variables["datasource"]
        self.assertEqual((ds["type"], ds["query"]), ("datasource", "prometheus"))
        for name in ("model", "instance", "gpu"):
            v = variables[name]
            self.assertEqual(v["type"], "query")
            self.assertTrue(v["definition"].startswith("label_values("), v["definition"])
            self.assertTrue(v["definition"].endswith(", %s)" % name), v["definition"])
            self.assertEqual(v["datasource"]["uid"], "${datasource}")
            self.assertTrue(v["includeAll"])
        for p in self.panels():
            self.assertEqual(p["datasource"]["uid"], "${datasource}", p["title"])
            for t in p["targets"]:
                self.assertEqual(t["datasource"]["uid"], "${datasource}")

    def test_rows_come_in_order_quality_resources_fleet(self):
        rows = [p["title"] for p in self.doc["panels"] if p["type"] == "row"]
        self.assertEqual(len(rows), 3)
        self.assertTrue(rows[0].startswith("Generation quality"))
        self.assertTrue(rows[1].startswith("Resources"))
        self.assertEqual(rows[2], "Fleet")
        titles = [p["title"] for p in self.panels()]
        for want in ("TTFT (left) and output tokens/s (right)",
                     "Inter-token latency (TPOT) percentiles",
                     "End-to-end latency (engine and gateway)",
                     "Truncation rate (finish_reason=length)", "Errors by kind (requests/s)",
                     "Quality score (left) and drift (right)", "GPU utilisation",
                     "GPU memory used", "KV-cache usage",
                     "Running / waiting requests and replicas",
                     "GPU power (left) and temperature (right)", "Host CPU busy"):
            self.assertIn(want, titles)
        # Panels stay inside the grid and do not overlap.
        cells = set()
        for p in self.doc["panels"]:
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24)
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells, p["title"])
                    cells.add((x, y))

    def test_right_axes_threshold_and_fleet_table(self):
        by_title = {p["title"]: p for p in self.panels()}
        ttft = by_title["TTFT (left) and output tokens/s (right)"]
        right = [o for o in ttft["fieldConfig"]["overrides"]
                 if {"id": "custom.axisPlacement", "value": "right"} in o["properties"]]
        self.assertEqual(len(right), 1)
        ref = right[0]["matcher"]["options"]
        tokens = [t for t in ttft["targets"] if t["refId"] == ref][0]
        self.assertIn("generation_tokens", tokens["expr"])
        trunc = by_title["Truncation rate (finish_reason=length)"]["fieldConfig"]["defaults"]
        self.assertEqual(trunc["thresholds"]["steps"][1]["value"], 0.05)
        self.assertEqual(trunc["custom"]["thresholdsStyle"]["mode"], "line")
        table = [p for p in self.panels() if p["type"] == "table"]
        self.assertEqual(len(table), 1)
        self.assertTrue(all(t["instant"] and t["format"] == "table"
                            for t in table[0]["targets"]))

    def test_every_expression_runs_on_the_query_api(self):
        exprs = [t["expr"] for p in self.panels() for t in p["targets"]]
        self.assertGreater(len(exprs), 30)
        for e in exprs:
            q = substitute(e)
            self.assertNotIn("$", q)
            body = urllib.parse.urlencode({"query": q}).encode()
            status, _, reply = self.srv.get(
                "/api/v1/query", method="POST", data=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"})
            doc = json.loads(reply)
            self.assertEqual((status, doc["status"]), (200, "success"), (q, doc))

    def test_server_answers_the_same_document(self):
        status, headers, body = self.srv.get("/api/v1/grafana-dashboard")
        self.assertEqual(status, 200)
        self.assertTrue(headers.get("Content-Type", "").startswith("application/json"))
        self.assertEqual(json.loads(body), self.doc)

    def test_cli_writes_a_file_and_rejects_unknown_arguments(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "dash.json")
            code, out, err = holo.run(["grafana-dashboard", "--output", path])
            self.assertEqual(code, 0, err)
            self.assertEqual(out, "")
            with open(path) as f:
                self.assertEqual(f.read(), self.text)
        self.assertEqual(holo.run(["grafana-dashboard", "--bogus"])[0], 2)
        code, out, _ = holo.run(["grafana-dashboard", "--help"])
        self.assertEqual(code, 0)
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS"):
            self.assertIn(section, out)


if __name__ == "__main__":
    unittest.main()
