/*
 * dashboard.mjs - drives the dashboard in headless Chromium with
 * playwright-core.  Run by test_dashboard_browser.py with:
 *   node dashboard.mjs BASE_URL SUMMARY_JSON OUT_DIR
 * BASE_URL is a `holoscope serve` over the deterministic dataset of
 * dataset.py; SUMMARY_JSON describes it; screenshots go to OUT_DIR.
 * Prints one "ok - ..." line per check and "measure ..." lines with figures;
 * exits non-zero on the first failed check.
 */
import { bind, check, launch, run } from './lib.mjs';

const [base, summaryJson, outDir] = process.argv.slice(2);
const sum = JSON.parse(summaryJson);

const { browser, page, pageErrors } = await launch();
await run(browser, async () => {

  /* The capture endpoint: used when the server has it, stubbed when it
   * answers 404 (capture not built into this binary). */
  let capturesStubbed = false;
  await page.route('**/api/v1/captures*', async (route) => {
    const res = await route.fetch();
    if (res.status() !== 404) return route.fulfill({ response: res });
    capturesStubbed = true;
    const u = new URL(route.request().url());
    const start = Number(u.searchParams.get('start')), end = Number(u.searchParams.get('end'));
    const model = u.searchParams.get('model') || 'llama-3-8b';
    const data = [];
    for (let t = start, i = 0; t < end && i < 5; t += Math.max(1, (end - start) / 5), i++)
      data.push({ eventId: 'e' + i, inferenceId: 'req-' + model + '-' + i, inferenceTime: new Date(t * 1000).toISOString(), model,
                  input: { contentType: 'application/json', encoding: 'JSON',
                           data: JSON.stringify({ messages: [{ role: 'user', content: 'Write to [REDACTED:email]' }] }) },
                  output: { contentType: 'application/json', encoding: 'JSON',
                            data: JSON.stringify({ choices: [{ message: { content: 'Done.' }, finish_reason: 'stop' }] }) },
                  holoscope: { request_id: 'req-' + model + '-' + i, ttft_s: 0.2 + i / 10, e2e_s: 6.5 + i, input_tokens: 40,
                               output_tokens: 12, finish_reasons: [i === 4 ? 'length' : 'stop'], quality: { score: 0.9, failed: [], checks: { empty: 1 } } } });
    return route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ status: 'success', data }) });
  });

  const { rendered, gen, shot } = bind(page, outDir);
  const range = 'from=' + sum.start + '&to=' + sum.end;

  /* 1. First load: fleet view, bytes transferred. */
  let bytes = 0;
  const onResp = async (r) => {
    try {
      const s = await r.request().sizes();
      bytes += s.responseBodySize + s.responseHeadersSize;
    } catch (e) { /* a request still in flight at the end */ }
  };
  page.on('response', onResp);
  await page.goto(base + '/#v=fleet&' + range, { waitUntil: 'load' });
  let last = await rendered();
  await page.waitForTimeout(200);
  page.off('response', onResp);
  console.log('measure first_load_bytes=' + bytes + ' (fleet view, assets and API answers)');
  check(bytes <= 300 * 1024, 'first load transfers at most 300 KB', bytes);
  check(!last.error, 'fleet view loads without an error', last.error);
  const rows = await page.$$eval('#fleet-table tbody tr', (trs) => trs.map((tr) => Array.from(tr.cells).map((c) => c.textContent.trim())));
  check(rows.length === sum.models.length, 'fleet has one row per model', rows);
  check(rows[0][0] === 'llama-3-8b' && /\d/.test(rows[0][1]) && /ms|s/.test(rows[0][2]), 'fleet row shows request rate and TTFT', rows[0]);
  check(rows.every((r) => r[12] !== '–' && r[13] !== '–'), 'fleet rows show replicas and cost', rows.map((r) => r.slice(12)));
  check((await page.$$('#fleet-table svg.spark')).length === sum.models.length, 'fleet rows have sparklines');
  await page.click('#fleet-table th button[data-k="ttft95"]');
  await page.click('#fleet-table th button[data-k="ttft95"]');
  const sorted = await page.$$eval('#fleet-table tbody tr td:first-child', (tds) => tds.map((t) => t.textContent));
  check(sorted[0] === 'qwen-7b', 'fleet sorts by TTFT p95 descending on the second click', sorted);
  await shot('fleet');

  /* 2. Drill down fleet -> model: 12 panels drawn, alert band on the fault. */
  let g = await gen();
  await page.click('#fleet-table a:text("llama-3-8b")');
  last = await rendered(g);
  console.log('measure model_view_ms=' + last.ms.toFixed(0) + ' panels=' + last.panels + ' series=' + last.series +
              ' points=' + last.points + ' (6 h, 12 panels, fully drawn)');
  check(last.panels === 12, 'model view has 12 panels', last.panels);
  const states = await page.$$eval('.panel', (ps) => ps.map((p) => p.dataset.state));
  check(states.filter((s) => s === 'ok').length >= 11, 'model view panels draw series', states);
  check((await page.$$('.panel canvas')).length >= 11, 'model view charts are drawn on canvases');
  const bands = await page.$$eval('.panel', (ps) => ps.map((p) => Number(p.dataset.alertBands || 0)));
  check(bands.every((b) => b >= 1), 'the injected TTFT fault is drawn as an alert band on every model chart', bands);
  const crumbs1 = await page.textContent('#crumbs');
  check(/Fleet.*Model llama-3-8b/.test(crumbs1), 'breadcrumbs show fleet > model', crumbs1);
  await shot('model');

  /* 3. Time-range change refetches. */
  const seen = [];
  const onReq = (r) => { if (r.url().includes('/api/v1/query_range')) seen.push(new URL(r.url()).searchParams); };
  page.on('request', onReq);
  g = await gen();
  await page.selectOption('#range', '1h');
  last = await rendered(g);
  page.off('request', onReq);
  const spans = seen.map((p) => Number(p.get('end')) - Number(p.get('start')));
  check(spans.filter((s) => s <= 3600 + 60).length >= 12, 'changing the range to 1h refetches every chart over 1h', spans);
  check(page.url().includes('range=1h') && !page.url().includes('from='), 'the range is kept in the URL', page.url());
  g = await gen();
  await page.goto(base + '/#v=model&model=llama-3-8b&' + range);
  last = await rendered(g);

  /* 4. Clicking a point on a latency chart opens that minute's captures. */
  const ttft = page.locator('.panel.clickable').first();
  const box = await (await ttft.locator('.u-over').elementHandle()).boundingBox();
  g = await gen();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
  await page.mouse.click(box.x + box.width * 0.5, box.y + box.height * 0.5);
  last = await rendered(g);
  const u = new URL(page.url().replace('#', '?'));
  const from = Number(u.searchParams.get('from')), to = Number(u.searchParams.get('to'));
  check(u.searchParams.get('v') === 'captures' && to - from === 60 && from % 60 === 0, 'a chart click opens the captures of that minute', page.url());
  const caps = await page.$$eval('#captures-table tbody tr', (trs) => trs.map((tr) => tr.textContent));
  check(caps.length === (capturesStubbed ? 5 : 1) && caps[0].includes('req-llama-3-8b') && caps[0].includes('Write to [REDACTED:email]') &&
        caps[0].includes('Done') && /ms/.test(caps[0]) && /0\.9|0\.55/.test(caps[0]), 'captures view lists that minute\'s requests with TTFT and redacted prompt and answer', caps);
  console.log('measure captures_endpoint=' + (capturesStubbed ? 'stubbed (server answered 404)' : 'served by holoscope'));
  await shot('captures');

  /* 5. Model -> instance -> GPU. */
  g = await gen();
  await page.goto(base + '/#v=model&model=llama-3-8b&' + range);
  last = await rendered(g);
  g = await gen();
  await page.click('a.pill:text("pod-a:8000")');
  last = await rendered(g);
  check(last.view === 'instance' && last.series > 0, 'instance view draws series', last);
  await shot('instance');
  g = await gen();
  await page.click('a.pill:has-text("GPU-0a0a0a0a")');
  last = await rendered(g);
  check(last.view === 'gpu' && last.panels === 5 && last.series >= 5, 'GPU view draws its strips', last);
  const crumbs2 = await page.textContent('#crumbs');
  check(/Fleet.*Model llama-3-8b.*Instance pod-a:8000.*GPU GPU-0a0a0a0a/.test(crumbs2), 'breadcrumbs show fleet > model > instance > GPU', crumbs2);
  await shot('gpu');
  g = await gen();
  await page.goto(base + '/#v=gpu&model=qwen-7b&' + range);
  last = await rendered(g);
  check(last.panels === 10 && last.series >= 10 && (await page.$$('.strip')).length === 2, 'GPU strips show every GPU of a model', last);
  await shot('gpu-strips');

  /* 6. Alerts, targets, explore, compare. */
  g = await gen();
  await page.goto(base + '/#v=alerts&' + range);
  last = await rendered(g);
  check(!last.error && (await page.$('#alerts-table')), 'alerts view loads', last.error);
  const alertRows = await page.$$eval('#alerts-table tbody tr', (trs) => trs.map((tr) => Array.from(tr.cells).map((c) => c.textContent.trim())));
  const firing = alertRows.find((r) => r[0] === 'UITestQualityLow');
  const pending = alertRows.find((r) => r[0] === 'UITestKVCacheHigh');
  check(firing && firing[1] === 'firing' && /qwen-7b/.test(firing[3]) && /quality of qwen-7b/.test(firing[4]) &&
        /holoscope_quality_score_mean/.test(firing[5]) && /\d/.test(firing[2]),
        'alerts view shows a firing alert with since, labels, annotations and expression', firing);
  check(pending && pending[1] === 'pending', 'alerts view shows a pending alert', pending);
  await shot('alerts');
  g = await gen();
  await page.goto(base + '/#v=targets&' + range);
  last = await rendered(g);
  check(!last.error && (await page.$('#targets-table')), 'targets view loads', last.error);
  const trow = await page.$$eval('#targets-table tbody tr', (trs) => trs.map((tr) => Array.from(tr.cells).map((c) => c.textContent.trim())));
  check(trow.length === 1 && trow[0][0] === 'engine-down' && trow[0][2] === 'down' && trow[0][6].length > 0,
        'targets view shows scrape health and the last error', trow);
  await shot('targets');
  g = await gen();
  await page.goto(base + '/#v=explore&q=' + encodeURIComponent('sum by (model) (rate(llm_server_generation_tokens_total[5m]))') + '&' + range);
  last = await rendered(g);
  const ex = await page.$$eval('#explore-table tbody tr', (trs) => trs.map((tr) => tr.textContent));
  check(last.series === 2 && ex.length === 2 && /\d/.test(ex[0]), 'explore draws a graph and a table', ex);
  await page.waitForFunction(() => document.querySelectorAll('#hs-names option').length > 10);
  const names = await page.$$eval('#hs-names option', (os) => os.map((o) => o.value));
  check(names.includes('llm_server_kv_cache_usage_ratio') && names.includes('model'), 'explore completes metric and label names', names.length);
  await shot('explore');
  g = await gen();
  await page.goto(base + '/#v=compare&mode=models&a=llama-3-8b&b=qwen-7b&' + range);
  last = await rendered(g);
  check(last.panels === 6 && last.series === 12, 'compare overlays two models on the same charts', last);
  await shot('compare');
  g = await gen();
  await page.goto(base + '/#v=compare&mode=shift&a=llama-3-8b&shift=1d&range=3h');
  last = await rendered(g);
  const legends = await page.$$eval('.panel:first-of-type .u-legend .u-series th', (ths) => ths.map((t) => t.textContent));
  check(last.panels === 6 && last.series >= 6 && /now/.test(legends.join(' ')), 'compare draws now against a day earlier', { last, legends });

  /* 7. API errors are shown plainly. */
  g = await gen();
  await page.goto(base + '/#v=explore&q=' + encodeURIComponent('sum(rate(') + '&' + range);
  last = await rendered(g);
  const banner = await page.textContent('#banner');
  check(await page.isVisible('#banner') && /400|parse|bad_data/i.test(banner), 'a PromQL error is displayed in the banner', banner);
  await page.route('**/api/v1/query_range*', (r) => r.fulfill({ status: 503, contentType: 'application/json',
    body: JSON.stringify({ status: 'error', errorType: 'unavailable', error: 'injected outage' }) }));
  g = await gen();
  await page.goto(base + '/#v=model&model=qwen-7b&' + range);
  last = await rendered(g);
  const errText = await page.textContent('#banner');
  check(/injected outage/.test(errText), 'an API outage is displayed, not a blank page', errText);
  await shot('api-error');
  await page.unroute('**/api/v1/query_range*');
  await page.route('**/api/v1/query_range*', async (r) => {
    await new Promise((res) => setTimeout(res, 2600));
    await r.continue();
  });
  g = await gen();
  await page.goto(base + '/#v=gpu&gpu=GPU-0a0a0a0a&' + range);
  await page.waitForSelector('.panel[data-slow="1"] .state:text("slow query…")', { timeout: 10000 });
  check(true, 'a slow query is shown as such while it runs');
  last = await rendered(g);
  check(last.series >= 5, 'the slow view is drawn once its answers arrive', last);
  await page.unroute('**/api/v1/query_range*');

  /* 8. Dark theme at 1366x768, keyboard accessible controls. */
  g = await gen();
  await page.goto(base + '/#v=model&model=qwen-7b&theme=dark&' + range);
  last = await rendered(g);
  check(await page.evaluate(() => document.documentElement.dataset.theme) === 'dark', 'dark theme applies from the URL');
  await shot('model-dark');
  await page.keyboard.press('t');
  await page.waitForFunction(() => document.documentElement.dataset.theme === 'light');
  check(true, 'the t key toggles the theme');
  check(pageErrors.length === 0, 'no uncaught page errors', pageErrors);
});
