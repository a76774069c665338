"""End-to-end: the official `openai` npm client (pinned in the root
package.json, installed by scripts/deps.sh with `npm ci`) talking to the
holoscope gateway, which forwards to the test upstream (gw_upstream.py).

Non-streaming and streaming chat completions must parse in the client as
they would against the upstream itself; a stream that did not ask for usage
must not show the usage chunk the gateway injected and stripped, and one
that asked must show it.  Skipped only when node or the package is absent.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import gw_upstream  # noqa: E402
import holo  # noqa: E402

ROOT = os.environ.get("HS_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
HAS_CLIENT = shutil.which("node") is not None and os.path.isdir(
    os.path.join(ROOT, "node_modules", "openai"))

SCRIPT = r"""
const { OpenAI } = require('openai');
(async () => {
  const client = new OpenAI({ baseURL: process.env.GW_URL + '/v1', apiKey: 'sk-test-key',
                              maxRetries: 0, timeout: 20000 });
  const out = {};
  const r = await client.chat.completions.create({ model: 'test-model',
    messages: [{ role: 'user', content: 'hi' }] });
  out.plain = { content: r.choices[0].message.content, usage: r.usage,
                finish: r.choices[0].finish_reason };
  for (const usage of [false, true]) {
    const req = { model: 'test-model', stream: true, messages: [{ role: 'user', content: 'hi' }] };
    if (usage) req.stream_options = { include_usage: true };
    const s = await client.chat.completions.create(req);
    let text = '', chunks = 0, usageChunks = 0, finish = null;
    for await (const c of s) {
      chunks++;
      if (c.choices.length === 0 && c.usage) usageChunks++;
      for (const ch of c.choices) {
        if (ch.delta && ch.delta.content) text += ch.delta.content;
        if (ch.finish_reason) finish = ch.finish_reason;
      }
    }
    out[usage ? 'stream_usage' : 'stream'] = { text, chunks, usageChunks, finish };
  }
  const models = await client.models.list();
  out.models = models.data.map((m) => m.id);
  let notFound = null;
  try {
    await client.chat.completions.create({ model: 'nope', messages: [] });
  } catch (e) {
    notFound = { status: e.status, code: e.code, type: e.type };
  }
  out.notFound = notFound;
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"""

CONFIG = """
collectors: {host: false, gpu: false}
rules: {default_pack: false}
gateway:
  listen: 127.0.0.1:0
  routes:
    - model: test-model
      upstreams: [%s]
"""


@unittest.skipUnless(HAS_CLIENT, "node or node_modules/openai missing (scripts/deps.sh)")
class OpenAIClientThroughGateway(unittest.TestCase):
    def setUp(self):
        self.up = gw_upstream.Upstream()
        self.srv = holo.Server(config=CONFIG % self.up.url, limit_s=100)
        deadline = time.time() + 30
        self.port = None
        while time.time() < deadline and self.port is None:
            m = re.search(r"gateway listening.*?port=(\d+)", self.srv.logs())
            if m:
                self.port = int(m.group(1))
            else:
                time.sleep(0.05)
        self.assertIsNotNone(self.port, self.srv.logs())

    def tearDown(self):
        code = self.srv.stop()
        logs = self.srv.logs()
        self.srv.close()
        self.up.close()
        self.assertEqual(code, 0, logs[-3000:])

    def test_openai_client_streams_and_parses_through_the_gateway(self):
        env = dict(os.environ)
        env["NODE_PATH"] = os.path.join(ROOT, "node_modules")
        env["GW_URL"] = "http://127.0.0.1:%d" % self.port
        p = subprocess.run(["node", "-e", SCRIPT],
                           capture_output=True, timeout=60, env=env, cwd=ROOT)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        out = json.loads(p.stdout)
        self.assertEqual(out["plain"]["content"], "Paris.")
        self.assertEqual(out["plain"]["usage"]["total_tokens"], 17)
        self.assertEqual(out["stream"]["text"], "Hello! How can I help you today?")
        self.assertEqual(out["stream"]["finish"], "stop")
        self.assertEqual(out["stream"]["usageChunks"], 0)  # injected, then stripped
        self.assertEqual(out["stream_usage"]["usageChunks"], 1)
        self.assertEqual(out["stream_usage"]["chunks"], out["stream"]["chunks"] + 1)
        self.assertEqual(out["models"], ["test-model"])
        self.assertEqual(out["notFound"]["status"], 404)
        self.assertEqual(out["notFound"]["code"], "model_not_found")
        # The API key reached the upstream untouched.
        auth = [v for r in self.up.recorded() for k, v in r["headers"].items()
                if k.lower() == "authorization"]
        self.assertIn("Bearer sk-test-key", auth)


if __name__ == "__main__":
    unittest.main()
