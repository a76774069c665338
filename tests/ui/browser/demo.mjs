/*
 * demo.mjs - drives the dashboard in headless Chromium over a running
 * `holoscope demo`.  Run by test_dashboard_demo.py with:
 *   node demo.mjs BASE_URL SUMMARY_JSON OUT_DIR
 * SUMMARY_JSON is {models: [llama, qwen], alert: {name, model}}: the two
 * served models and the alert of the first scheduled fault, already
 * pending or firing when this runs.  Checks the fleet table, the drill-down
 * fleet -> model -> instance -> GPU, the alert in the alerts view and as a
 * band on the model's charts, a chart click into captured requests, and
 * every other view; prints the model view's draw time ("measure ..."
 * lines) and writes a screenshot of each view into OUT_DIR.  Exits non-zero
 * on the first failed check.
 */
import { bind, check, launch, run, tableRows } from './lib.mjs';

const [base, summaryJson, outDir] = process.argv.slice(2);
const sum = JSON.parse(summaryJson);
const [llama, qwen] = sum.models;
const alert = sum.alert;
const range = 'range=5m';

const { browser, page, pageErrors } = await launch();
await run(browser, async () => {
  const { rendered, gen, shot, open } = bind(page, outDir);

  /* 1. Fleet: one row per model with numbers. */
  let last = await open('v=fleet&' + range, base);
  check(!last.error, 'fleet view loads without an error', last.error);
  const rows = await tableRows(page, '#fleet-table');
  const byModel = new Map(rows.map((r) => [r[0], r]));
  check(rows.length === 2 && byModel.has(llama) && byModel.has(qwen), 'fleet lists both demo models', rows.map((r) => r[0]));
  const num = /\d/;
  for (const m of [llama, qwen]) {
    const r = byModel.get(m);
    /* Columns: 1 Req/s, 2 TTFT p50, 5 Tokens/s, 10 GPU util. */
    check(num.test(r[1]) && /s$/.test(r[2]) && num.test(r[5]) && /%$/.test(r[10]),
          'fleet row of ' + m + ' shows request rate, TTFT, tokens/s and GPU util', r);
  }
  check(/pending|firing/.test(byModel.get(qwen)[14]), 'fleet row of ' + qwen + ' shows its ' + alert.name + ' alert', byModel.get(qwen)[14]);
  await shot('fleet');

  /* 2. Fleet -> model (the faulty one): 12 panels drawn, the alert as a band. */
  last = await open(() => page.click('#fleet-table a:text("' + alert.model + '")'));
  console.log('measure model_view_ms=' + last.ms.toFixed(0) + ' panels=' + last.panels + ' series=' + last.series +
              ' points=' + last.points + ' (' + alert.model + ', 5m of live demo data, 12 panels, fully drawn)');
  check(last.view === 'model' && last.panels === 12 && !last.error, 'model view has 12 panels', last);
  const panels = await page.$$eval('.panel', (ps) => ps.map((p) => ({
    title: p.querySelector('h3 span').textContent, state: p.dataset.state, bands: Number(p.dataset.alertBands || 0),
    alerts: (p.querySelector('h3 .state .pill') || { title: '' }).title })));
  const drawn = panels.filter((p) => p.state === 'ok');
  check(drawn.length >= 11, 'model view panels draw series', panels.map((p) => p.title + ': ' + p.state));
  check(drawn.every((p) => p.bands >= 1 && p.alerts.includes(alert.name)),
        'the ' + alert.name + ' alert is drawn as a band on every drawn chart of ' + alert.model, drawn);
  check(/Fleet.*Model /.test(await page.textContent('#crumbs')), 'breadcrumbs show fleet > model');
  await shot('model');

  /* Draw time of the 12-panel view again, over the model with two replicas. */
  last = await open('v=model&model=' + encodeURIComponent(llama) + '&' + range, base);
  console.log('measure model_view_ms=' + last.ms.toFixed(0) + ' panels=' + last.panels + ' series=' + last.series +
              ' points=' + last.points + ' (' + llama + ', 2 replicas, 5m of live demo data)');
  check(last.panels === 12 && last.series >= 20, 'model view of the two-replica model draws a series per replica and GPU', last);
  await shot('model-2-replicas');

  /* 3. A click on the TTFT chart opens that minute's captured requests. */
  last = await open('v=model&model=' + encodeURIComponent(alert.model) + '&' + range, base);
  const box = await (await page.locator('.panel.clickable').first().locator('.u-over').elementHandle()).boundingBox();
  last = await open(async () => {
    await page.mouse.move(box.x + box.width * 0.9, box.y + box.height * 0.5);
    await page.mouse.click(box.x + box.width * 0.9, box.y + box.height * 0.5);
  });
  const u = new URL(page.url().replace('#', '?'));
  const from = Number(u.searchParams.get('from')), to = Number(u.searchParams.get('to'));
  check(last.view === 'captures' && to - from === 60 && u.searchParams.get('model') === alert.model,
        'a chart click opens the captures of that minute', page.url());
  const caps = await tableRows(page, '#captures-table');
  check(caps.length >= 1 && caps.every((c) => c[1] === alert.model) && caps.some((c) => /s$/.test(c[3]) && c[9].length > 0),
        'captures view lists that minute\'s requests of ' + alert.model + ' with TTFT and prompt', caps.map((c) => c.slice(0, 4)));
  await shot('captures');

  /* 4. Model -> instance -> GPU. */
  last = await open('v=model&model=' + encodeURIComponent(alert.model) + '&' + range, base);
  last = await open(() => page.click('main a.pill[href*="v=instance"]'));
  check(last.view === 'instance' && last.series >= 12, 'instance view draws series', last);
  await shot('instance');
  last = await open(() => page.click('main a.pill[href*="gpu=GPU-"]'));
  check(last.view === 'gpu' && last.panels === 5 && last.series >= 5, 'GPU view draws its strips', last);
  const gpuStates = await page.$$eval('.panel', (ps) => ps.map((p) => p.dataset.state));
  check(gpuStates.every((s) => s === 'ok'), 'every GPU strip has data', gpuStates);
  check(/Fleet.*Model .*Instance .*GPU GPU-/.test(await page.textContent('#crumbs')), 'breadcrumbs show fleet > model > instance > GPU');
  await shot('gpu');
  last = await open('v=gpu&model=' + encodeURIComponent(llama) + '&' + range, base);
  check(last.panels === 10 && (await page.$$('.strip')).length === 2, 'GPU strips show both GPUs of ' + llama, last);
  await shot('gpu-strips');

  /* 5. The alert in the alerts view. */
  last = await open('v=alerts&' + range, base);
  const alerts = await tableRows(page, '#alerts-table');
  const row = alerts.find((r) => r[0] === alert.name && r[3].includes(alert.model));
  check(row && /pending|firing/.test(row[1]) && /\d/.test(row[2]) && row[5].length > 0,
        'alerts view shows ' + alert.name + ' on ' + alert.model + ' with its state, since and expression', alerts);
  await shot('alerts');

  /* 6. Targets, captures of all models, explore, compare. */
  last = await open('v=targets&' + range, base);
  const targets = await tableRows(page, '#targets-table');
  check(targets.length >= 5 && targets.every((t) => t[2] === 'up') &&
        ['vllm', 'sglang', 'dcgm'].every((e) => targets.some((t) => t[3] === e)),
        'targets view shows every simulated endpoint up with its engine', targets.map((t) => t.slice(0, 4)));
  await shot('targets');
  last = await open('v=captures&' + range, base);
  const all = await tableRows(page, '#captures-table');
  check(all.length >= 2 && [llama, qwen].every((m) => all.some((c) => c[1] === m)), 'captures view lists requests of both models',
        all.map((c) => c[1]));
  await shot('captures-all');
  last = await open('v=explore&q=' + encodeURIComponent('sum by (model) (rate(gen_ai_server_request_duration_seconds_count[1m]))') + '&' + range, base);
  check(last.series === 2 && (await tableRows(page, '#explore-table')).length === 2, 'explore draws the gateway request rate per model', last);
  await shot('explore');
  last = await open('v=compare&mode=models&a=' + encodeURIComponent(llama) + '&b=' + encodeURIComponent(qwen) + '&' + range, base);
  check(last.panels === 6 && last.series >= 10, 'compare overlays the two models', last);
  await shot('compare');
  check(pageErrors.length === 0, 'no uncaught page errors', pageErrors);
});
