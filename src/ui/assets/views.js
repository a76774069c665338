/*
 * views.js - the dashboard's views.  Each view renders into 'main' from the
 * URL state and returns when every panel it started has been drawn (or has
 * shown its "no data" / error message).  PromQL reads the unified series
 * (llm_server_*, hw_gpu_*, hw_*), the gateway's gen_ai_* histograms and
 * finish-reason counter, the quality series (holoscope_quality_score_mean,
 * _bucket, holoscope_quality_drift_psi), ALERTS and the recording rules of
 * rules/default.yml.  GPUs are tied to engines through llm_server_gpu_info
 * (gpu_uuid); the engine of a scrape target is the 'backend' label of the
 * series derived from it.
 */
'use strict';
(function () {
const V = (HS.views = {});
const W = '[5m]';
const sel = (labels) => '{' + Object.entries(labels).filter(([, v]) => v).map(([k, v]) => k + '=' + HS.q(v)).join(',') + '}';
const hq = (q, metric, by, f) => 'histogram_quantile(' + q + ', sum by (le' + (by ? ', ' + by : '') + ') (rate(' + metric + '_bucket' + f + W + ')))';

/* Share of the requests the gateway saw end with finish_reason "length".
 * Engines that do not label their finished counter by reason (SGLang) have
 * no engine-side ratio; the gateway's counter has every reason it saw, and
 * a model with requests but no "length" yet is at 0, not unknown. */
function gwTrunc(by, f) {
  const inner = (f || '').replace(/^\{|\}$/g, '');
  const sum = (m) => 'sum' + (by ? ' by (' + by + ')' : '') + ' (rate(holoscope_gateway_finish_reason_total' + (m ? '{' + m + '}' : '') + W + '))';
  const all = sum(inner);
  return '(' + sum(inner + (inner ? ',' : '') + 'finish_reason="length"') + ' or 0 * ' + all + ') / ' + all;
}

/* Queries of one model-level or instance-level "quality" row. */
function qualityPanels(f, ctx, modelName, instance) {
  /* The gateway's series of the selection: by model, and by upstream (the
   * engine's URL) for an instance. */
  const reEsc = (x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const gw = sel({ model: modelName }).replace(/\}$/, instance ? (modelName ? ',' : '') + 'upstream=~' + HS.q('https?://' + reEsc(instance) + '/?') + '}' : '}');
  const open = (t) => HS.go({ v: 'captures', model: modelName, from: Math.floor(t / 60) * 60,
                              to: Math.floor(t / 60) * 60 + 60, range: null });
  return [
    { title: 'TTFT (left) and output tokens/s (right)', unit: 's', unit2: '', ctx, onClick: open,
      series: [{ q: hq(0.5, 'llm_server_time_to_first_token_seconds', '', f), legend: 'TTFT p50' },
               { q: hq(0.95, 'llm_server_time_to_first_token_seconds', '', f), legend: 'TTFT p95' },
               /* As the user got it; finer buckets than some engines' (SGLang's start at 100 ms). */
               { q: hq(0.95, 'gen_ai_server_time_to_first_token_seconds', '', gw), legend: 'gateway p95', dash: true },
               { q: 'sum(rate(llm_server_generation_tokens_total' + f + W + '))', legend: 'tokens/s', axis: 2, dash: true }] },
    { title: 'Inter-token latency (TPOT) percentiles', unit: 's', ctx, onClick: open,
      series: [0.5, 0.95, 0.99].map((q) => ({ q: hq(q, 'llm_server_inter_token_latency_seconds', '', f), legend: 'p' + q * 100 })) },
    { title: 'End-to-end latency (engine and gateway)', unit: 's', ctx, onClick: open,
      series: [{ q: hq(0.5, 'llm_server_request_duration_seconds', '', f), legend: 'engine p50' },
               { q: hq(0.95, 'llm_server_request_duration_seconds', '', f), legend: 'engine p95' },
               { q: hq(0.95, 'gen_ai_server_request_duration_seconds', '', gw), legend: 'gateway p95', dash: true }] },
    { title: 'Truncation rate (finish_reason=length)', unit: '%', ctx, threshold: { value: 0.05, label: '5 %' },
      series: [{ q: 'sum(rate(llm_server_requests_finished_total' + f.replace('}', ',finish_reason="length"}') + W +
                    ')) / sum(rate(llm_server_requests_finished_total' + f + W + '))', legend: 'engine' },
               { q: gwTrunc('', gw), legend: 'gateway', dash: true }] },
    { title: 'Errors by kind (requests/s)', unit: '', ctx,
      series: [{ q: 'sum by (error_type) (rate(llm_server_requests_failed_total' + f + W + '))', legend: '{{error_type}}' }] },
    { title: 'Quality score (left) and drift PSI (right)', unit: '', unit2: '', ctx,
      series: [{ q: 'avg(holoscope_quality_score_mean' + sel({ model: modelName }) + ')', legend: 'score (mean)' },
               /* The low tail: a few bad answers barely move the mean. */
               { q: hq(0.1, 'holoscope_quality_score', '', sel({ model: modelName })), legend: 'score p10' },
               { q: 'max by (signal) (holoscope_quality_drift_psi' + sel({ model: modelName }) + ')', legend: 'drift {{signal}}', axis: 2, dash: true }] },
  ];
}

/* GPU series of a model or instance, joined through llm_server_gpu_info on
 * gpu_uuid.  The result carries the GPU's index and the instance of the
 * engine it serves (from the info series), not the instance of the exporter
 * that reported it (a dcgm-exporter serves every GPU of a node). */
function gpuJoin(metric, info) {
  return 'max by (gpu_uuid, gpu) (' + metric + ') * on (gpu_uuid) group_left (instance) max by (gpu_uuid, instance) (llm_server_gpu_info' + info + ')';
}
/* CPU busy of the hosts whose node metrics carry the instance of an engine
 * of the selection; when no host does (node metrics from another exporter
 * or from holoscope's own collector), every host that reports them. */
function hostCpu(info) {
  const busy = '(1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}' + W + ')))';
  const mine = '(' + busy + ' and on (instance) max by (instance) (llm_server_gpu_info' + info + '))';
  return mine + ' or (' + busy + ' unless on () ' + mine + ')';
}
function resourcePanels(f, ctx) {
  const info = f;
  const gl = '{{instance}} gpu{{gpu}}';
  return [
    { title: 'GPU utilisation', unit: '%', kind: 'area', ctx,
      series: [{ q: gpuJoin('hw_gpu_utilization_ratio{hw_gpu_task="general"}', info), legend: gl }] },
    { title: 'GPU memory used', unit: 'B', kind: 'area', ctx,
      series: [{ q: gpuJoin('hw_gpu_memory_usage_bytes', info), legend: gl }] },
    { title: 'KV-cache usage', unit: '%', ctx,
      series: [{ q: 'max by (instance) (llm_server_kv_cache_usage_ratio' + f + ')', legend: '{{instance}}' }] },
    { title: 'Running / waiting requests and replicas', unit: '', unit2: '', kind: 'bars', stacked: true, ctx,
      series: [{ q: 'sum(llm_server_requests_running' + f + ')', legend: 'running' },
               { q: 'sum(llm_server_requests_waiting' + f + ')', legend: 'waiting' },
               { q: 'count(count by (instance) (llm_server_requests_running' + f + '))', legend: 'replicas', axis: 2 }] },
    { title: 'GPU power (left) and temperature (right)', unit: 'W', unit2: 'C', ctx,
      series: [{ q: 'sum(' + gpuJoin('hw_power_watts{hw_type="gpu"}', info) + ')', legend: 'power' },
               { q: 'max(' + gpuJoin('hw_temperature_celsius{hw_type="gpu",sensor!="memory"}', info) + ')', legend: 'max temp', axis: 2, dash: true }] },
    { title: 'Host CPU busy', unit: '%', ctx, series: [{ q: hostCpu(info), legend: '{{instance}}' }] },
  ];
}

async function panels(main, env, title, list) {
  const h = document.createElement('h2');
  h.textContent = title;
  main.appendChild(h);
  const grid = document.createElement('div');
  grid.className = 'grid';
  main.appendChild(grid);
  return Promise.all(list.map((p) => HS.chart(grid, p, env)));
}

/* ---- fleet ---------------------------------------------------------------- */
const FLEET = [
  ['rate', 'sum by (model) (rate(llm_server_requests_finished_total' + W + '))'],
  ['ttft50', hq(0.5, 'llm_server_time_to_first_token_seconds', 'model', '')],
  ['ttft95', hq(0.95, 'llm_server_time_to_first_token_seconds', 'model', '')],
  ['tpot', hq(0.5, 'llm_server_inter_token_latency_seconds', 'model', '')],
  ['tps', 'sum by (model) (rate(llm_server_generation_tokens_total' + W + '))'],
  ['trunc', 'sum by (model) (rate(llm_server_requests_finished_total{finish_reason="length"}' + W + ')) / sum by (model) (rate(llm_server_requests_finished_total' + W + ')) or ' + gwTrunc('model', '')],
  ['err', 'sum by (model) (rate(llm_server_requests_failed_total' + W + ')) / (sum by (model) (rate(llm_server_requests_finished_total' + W + ')) + sum by (model) (rate(llm_server_requests_failed_total' + W + ')))'],
  ['quality', 'avg by (model) (holoscope_quality_score_mean)'],
  ['gpu', 'avg by (model) (max by (gpu_uuid) (hw_gpu_utilization_ratio{hw_gpu_task="general"}) * on (gpu_uuid) group_right () max by (gpu_uuid, model) (llm_server_gpu_info))'],
  ['kv', 'max by (model) (llm_server_kv_cache_usage_ratio)'],
  ['replicas', 'count by (model) (count by (model, instance) (llm_server_requests_running))'],
  ['cost', 'model:llm_cost_per_million_output_tokens:dollars'],
  ['alerts', 'count by (model) (ALERTS{alertstate="firing"})'],
  ['pending', 'count by (model) (ALERTS{alertstate="pending"})'],
];
V.fleet = async function (main, env) {
  const w = env.w;
  const [vals, spark] = await Promise.all([
    Promise.all(FLEET.map(([, q]) => HS.instant(q, w.end).then((d) => d.result, (e) => e))),
    HS.range('sum by (model) (rate(llm_server_generation_tokens_total' + W + '))', w).then((d) => d.result, (e) => e),
  ]);
  const errs = vals.filter((v) => v instanceof Error);
  if (errs.length === vals.length) throw errs[0];
  const rows = new Map();
  vals.forEach((res, i) => {
    if (res instanceof Error) return;
    for (const s of res) {
      const m = s.metric.model;
      if (!m) continue;
      if (!rows.has(m)) rows.set(m, { model: m });
      rows.get(m)[FLEET[i][0]] = Number(s.value[1]);
    }
  });
  const sparks = new Map();
  if (!(spark instanceof Error)) for (const s of spark) sparks.set(s.metric.model, s.values);
  for (const r of rows.values()) {
    r.spark = r.tps;
    if (r.alerts > 0) r._cls = 'firing';
  }
  const h = document.createElement('h2');
  h.innerHTML = 'Fleet <span class="sub">one row per model, at ' + HS.esc(HS.time(w.end)) + '; click a column to sort</span>';
  main.appendChild(h);
  if (errs.length) HS.msg(main, 'Some columns failed: ' + errs[0].message, true);
  const f = (u) => (v) => HS.fmt(v, u);
  HS.table(main, [
    { key: 'model', label: 'Model', fmt: (v) => '<a href="' + HS.link({ v: 'model', model: v }) + '">' + HS.esc(v) + '</a>' },
    { key: 'rate', label: 'Req/s', num: 1, fmt: f('') },
    { key: 'ttft50', label: 'TTFT p50', num: 1, fmt: f('s') },
    { key: 'ttft95', label: 'TTFT p95', num: 1, fmt: f('s') },
    { key: 'tpot', label: 'TPOT', num: 1, fmt: f('s') },
    { key: 'tps', label: 'Tokens/s', num: 1, fmt: f('') },
    { key: 'spark', label: 'Trend', fmt: (v, r) => HS.spark(sparks.get(r.model)) },
    { key: 'trunc', label: 'Trunc.', num: 1, fmt: (v) => '<span class="' + (v > 0.05 ? 'bad' : '') + '">' + HS.fmt(v, '%') + '</span>' },
    { key: 'err', label: 'Errors', num: 1, fmt: f('%') },
    { key: 'quality', label: 'Quality', num: 1, fmt: f('') },
    { key: 'gpu', label: 'GPU util', num: 1, fmt: f('%') },
    { key: 'kv', label: 'KV cache', num: 1, fmt: f('%') },
    { key: 'replicas', label: 'Replicas', num: 1, fmt: f('') },
    { key: 'cost', label: '$/1M tok', num: 1, fmt: f('$') },
    { key: 'alerts', label: 'Alerts', num: 1, fmt: (v, r) => (v ? '<span class="pill firing">' + v + ' firing</span>' : '') +
        (r.pending ? '<span class="pill pending">' + r.pending + ' pending</span>' : '') || '–' },
  ], Array.from(rows.values()), { id: 'fleet-table', sort: 'model', empty: 'no models reported in this time range' });
};

/* ---- model / instance / GPU ----------------------------------------------- */
V.model = async function (main, env) {
  const model = HS.state().get('model');
  if (!model) return HS.msg(main, 'No model selected: pick one in the fleet view.', true);
  const f = sel({ model });
  const inst = await HS.instant('max by (instance, backend) (llm_server_requests_running' + f + ')', env.w.end).catch(() => null);
  if (inst && inst.result.length) {
    const p = document.createElement('p');
    p.innerHTML = 'Instances: ' + inst.result.map((s) => '<a class="pill" href="' + HS.link({ v: 'instance', instance: s.metric.instance }) + '">' +
      HS.esc(s.metric.instance) + (s.metric.backend ? ' · ' + HS.esc(s.metric.backend) : '') + '</a>').join(' ') +
      ' <a class="pill" href="' + HS.link({ v: 'gpu', instance: null, gpu: null }) + '">GPU strips</a>';
    main.appendChild(p);
  }
  const ctx = { model };
  env.stats.push(...(await Promise.all([
    panels(main, env, 'Generation quality', qualityPanels(f, ctx, model)),
    panels(main, env, 'Resources', resourcePanels(f, ctx)),
  ])).flat());
};

/* The GPUs serving the engines matched by 'labels' (llm_server_gpu_info), as
 * [{uuid, gpu, instance}], at most 16.  The GPU's index comes from the info
 * series when it has one, else from the GPU's own series (the recorded
 * info of the default rules carries model, instance and gpu_uuid only). */
async function gpuList(labels, t) {
  const [info, idx] = await Promise.all([
    HS.instant('max by (gpu_uuid, gpu, instance) (llm_server_gpu_info' + sel(labels) + ')', t),
    HS.instant('max by (gpu_uuid, gpu) (hw_gpu_memory_limit_bytes)', t).catch(() => ({ result: [] })),
  ]);
  const index = new Map(idx.result.map((s) => [s.metric.gpu_uuid, s.metric.gpu]));
  const seen = new Map();
  for (const s of info.result) {
    const uuid = s.metric.gpu_uuid;
    if (!uuid || seen.has(uuid)) continue;
    seen.set(uuid, { uuid, gpu: s.metric.gpu || index.get(uuid) || '?', instance: s.metric.instance || '' });
  }
  return Array.from(seen.values()).sort((a, b) => (a.instance + a.gpu).localeCompare(b.instance + b.gpu)).slice(0, 16);
}

V.instance = async function (main, env) {
  const st = HS.state();
  const instance = st.get('instance');
  if (!instance) return HS.msg(main, 'No instance selected.', true);
  const f = sel({ model: st.get('model'), instance });
  const gpus = await gpuList({ instance }, env.w.end).catch(() => []);
  if (gpus.length) {
    const p = document.createElement('p');
    p.innerHTML = '<a class="pill" href="' + HS.link({ v: 'gpu', gpu: null }) + '">all GPU strips</a> GPUs: ' + gpus.map((g) => '<a class="pill" href="' + HS.link({ v: 'gpu', gpu: g.uuid }) + '">GPU ' +
      HS.esc(g.gpu) + ' · ' + HS.esc(g.uuid) + '</a>').join(' ');
    main.appendChild(p);
  }
  /* Alerts of the instance's model concern it too (unless they name another instance). */
  const ctx = st.get('model') ? { instance, model: st.get('model') } : { instance };
  env.stats.push(...(await Promise.all([
    panels(main, env, 'Generation quality', qualityPanels(f, ctx, st.get('model'), instance)),
    panels(main, env, 'Resources', resourcePanels(sel({ instance }), ctx)),
  ])).flat());
};

/* Per-GPU strips: utilisation, memory, temperature, throttling and power,
 * one row per GPU.  The GPU of the URL, or every GPU of the instance or
 * model in the URL (at most 16). */
function gpuStrip(uuid) {
  const g = sel({ gpu_uuid: uuid });
  const ctx = { gpu_uuid: uuid };
  return [
    { title: 'Utilisation', unit: '%', kind: 'area', ctx, height: 130, series: [{ q: 'max(hw_gpu_utilization_ratio' + g.replace('}', ',hw_gpu_task="general"}') + ')', legend: 'util' }] },
    { title: 'Memory used / limit', unit: 'B', kind: 'area', ctx, height: 130,
      series: [{ q: 'max(hw_gpu_memory_usage_bytes' + g + ')', legend: 'used' }, { q: 'max(hw_gpu_memory_limit_bytes' + g + ')', legend: 'limit', dash: true }] },
    { title: 'Temperature', unit: 'C', ctx, height: 130, series: [{ q: 'max by (sensor) (hw_temperature_celsius' + g + ')', legend: 'temp {{sensor}}' }] },
    { title: 'Throttling: SM clock vs its 1h max', unit: '%', ctx, height: 130, threshold: { value: 0.85, label: '85 %' },
      series: [{ q: 'max(gpu_sm_clock_hertz' + g + ') / max(max_over_time(gpu_sm_clock_hertz' + g + '[1h]))', legend: 'clock ratio' }] },
    { title: 'Power', unit: 'W', ctx, height: 130, series: [{ q: 'max(hw_power_watts' + g + ')', legend: 'power' }] },
  ];
}
V.gpu = async function (main, env) {
  const st = HS.state();
  let gpus = st.get('gpu') ? [{ uuid: st.get('gpu'), name: st.get('gpu') }] : [];
  if (!gpus.length && (st.get('instance') || st.get('model'))) {
    gpus = (await gpuList({ instance: st.get('instance'), model: st.get('model') }, env.w.end))
      .map((g) => ({ uuid: g.uuid, name: (g.instance ? g.instance + ' ' : '') + 'GPU ' + g.gpu + ' · ' + g.uuid }));
  }
  if (!gpus.length) return HS.msg(main, 'No GPU selected, and none is reported for this instance or model (llm_server_gpu_info).', true);
  const strips = await Promise.all(gpus.map((g) => {
    const strip = document.createElement('div');
    strip.className = 'strip';
    main.appendChild(strip);
    return panels(strip, env, 'GPU ' + g.name, gpuStrip(g.uuid));
  }));
  env.stats.push(...strips.flat());
};

/* ---- alerts, targets, captures --------------------------------------------- */
V.alerts = async function (main) {
  const [alerts, rules] = await Promise.all([HS.api('/api/v1/alerts'), HS.api('/api/v1/rules', { type: 'alert' }).catch(() => null)]);
  const exprs = new Map();
  if (rules) for (const g of rules.groups || []) for (const r of g.rules || []) exprs.set(r.name, r.query);
  const rows = (alerts.alerts || []).map((a) => ({
    name: a.labels.alertname, state: a.state, since: a.activeAt ? Date.parse(a.activeAt) / 1000 : null,
    labels: HS.labelStr(a.labels, ['alertname']), ann: a.annotations || {}, expr: exprs.get(a.labels.alertname) || '', value: a.value,
    _cls: a.state === 'firing' ? 'firing' : '',
  }));
  const h = document.createElement('h2');
  h.innerHTML = 'Alerts <span class="sub">' + rows.filter((r) => r.state === 'firing').length + ' firing, ' +
                rows.filter((r) => r.state === 'pending').length + ' pending</span>';
  main.appendChild(h);
  HS.table(main, [
    { key: 'name', label: 'Alert' },
    { key: 'state', label: 'State', fmt: (v) => '<span class="pill ' + HS.esc(v) + '">' + HS.esc(v) + '</span>' },
    { key: 'since', label: 'Since', fmt: (v) => (v ? HS.esc(HS.time(v)) : '–') },
    { key: 'labels', label: 'Labels', fmt: (v) => '<code>' + HS.esc(v) + '</code>' },
    { key: 'ann', label: 'Annotations', fmt: (v) => Object.entries(v).map(([k, x]) => '<div><b>' + HS.esc(k) + '</b>: ' + HS.esc(x) + '</div>').join('') },
    { key: 'expr', label: 'Expression', fmt: (v) => '<pre class="text">' + HS.esc(v) + '</pre>' },
  ], rows, { id: 'alerts-table', sort: 'state', empty: 'no alerts firing or pending' });
};

/* The engine detected on a target: the 'backend' label the scrape's
 * normalisation puts on the unified series it derived from that target. */
const ENGINE_Q = 'group by (job, instance, backend) ({__name__=~"llm_server_requests_running|hw_gpu_memory_limit_bytes"})';
V.targets = async function (main) {
  const [d, eng] = await Promise.all([HS.api('/api/v1/targets'), HS.instant(ENGINE_Q).catch(() => ({ result: [] }))]);
  const engines = new Map(eng.result.map((s) => [s.metric.job + '\n' + s.metric.instance, s.metric.backend]));
  const rows = (d.activeTargets || []).map((t) => ({
    job: t.labels.job || t.scrapePool, url: t.scrapeUrl, health: t.health,
    engine: t.labels.backend || engines.get((t.labels.job || t.scrapePool) + '\n' + t.labels.instance) || '–',
    last: t.lastScrape ? Date.parse(t.lastScrape) / 1000 : null, dur: t.lastScrapeDuration, err: t.lastError || '',
  }));
  const h = document.createElement('h2');
  h.textContent = 'Scrape targets';
  main.appendChild(h);
  HS.table(main, [
    { key: 'job', label: 'Job' }, { key: 'url', label: 'URL' },
    { key: 'health', label: 'Health', fmt: (v) => '<span class="pill ' + HS.esc(v) + '">' + HS.esc(v) + '</span>' },
    { key: 'engine', label: 'Engine detected' },
    { key: 'last', label: 'Last scrape', fmt: (v) => (v ? HS.esc(HS.time(v)) : '–') },
    { key: 'dur', label: 'Duration', num: 1, fmt: (v) => HS.fmt(v, 's') },
    { key: 'err', label: 'Last error', fmt: (v) => (v ? '<span class="bad">' + HS.esc(v) + '</span>' : '') },
  ], rows, { id: 'targets-table', sort: 'job', empty: 'no scrape targets configured' });
};

/* The readable text of a captured payload: the last user message of a
 * request, the first choice's content of an answer (JSON or SSE stream),
 * else the payload itself; base64 payloads are left as they are.  At most
 * 2000 characters. */
function payloadText(p, dir) {
  if (!p || typeof p !== 'object' || p.data === undefined) return undefined;
  const raw = String(p.data);
  if (p.encoding === 'BASE64') return '(binary, ' + raw.length + ' base64 characters)';
  let text = null;
  try {
    if (/^\s*data:/m.test(raw) && dir === 'out') {
      text = raw.split('\n').filter((l) => l.startsWith('data:') && !l.includes('[DONE]')).map((l) => {
        try {
          const c = JSON.parse(l.slice(5)).choices || [];
          return c.length ? (c[0].delta && c[0].delta.content) || c[0].text || '' : '';
        } catch (e) {
          return '';
        }
      }).join('');
    } else {
      const j = JSON.parse(raw);
      if (dir === 'in') {
        const msgs = j.messages || j.input;
        const m = Array.isArray(msgs) ? msgs[msgs.length - 1] : null;
        text = m ? (typeof m.content === 'string' ? m.content : JSON.stringify(m.content)) : j.prompt ?? null;
      } else {
        const c = (j.choices || [])[0];
        text = c ? (c.message ? c.message.content : c.text) : j.generated_text ?? j.content ?? null;
        if (text === null && j.error) text = 'error: ' + (typeof j.error === 'object' ? j.error.message || JSON.stringify(j.error) : String(j.error));
      }
    }
  } catch (e) {
    text = null;
  }
  if (text === null || text === undefined) text = raw;
  return text.length > 2000 ? text.slice(0, 2000) + '…' : text;
}
/* The capture's "quality" object: {score, failed: [...], checks: {name: score}}. */
function fmtQuality(v) {
  if (!v || typeof v !== 'object') return HS.esc(v ?? '–');
  const out = [];
  if (typeof v.score === 'number') out.push('<b>' + HS.fmt(v.score) + '</b>');
  if (Array.isArray(v.failed) && v.failed.length) out.push('<span class="bad">failed: ' + HS.esc(v.failed.join(', ')) + '</span>');
  let checks = v.checks && typeof v.checks === 'object' ? v.checks : {};
  const names = Object.keys(checks);
  if (names.length && names.every((k) => checks[k] === 1) && !(Array.isArray(v.failed) && v.failed.length)) {
    out.push('<span class="muted" title="' + HS.esc(names.join(', ')) + '">all ' + names.length + ' checks pass</span>');
    checks = {};
  }
  const rest = Object.entries(v).filter(([k]) => !['score', 'failed', 'checks'].includes(k));
  for (const [k, x] of Object.entries(checks).concat(rest))
    out.push('<span class="muted">' + HS.esc(k) + ' ' + HS.esc(typeof x === 'number' ? HS.fmt(x) : JSON.stringify(x)) + '</span>');
  return out.join('<br>') || '–';
}
const num = (...xs) => { for (const x of xs) if (x !== undefined && x !== null && x !== '') return Number(x); return null; };
V.captures = async function (main, env) {
  const st = HS.state();
  const w = env.w;
  const model = st.get('model') || '';
  const h = document.createElement('h2');
  h.innerHTML = 'Captured requests <span class="sub">' + HS.esc(model || 'all models') + ', ' + HS.esc(HS.time(w.start)) + ' – ' + HS.esc(HS.time(w.end)) + '</span>';
  main.appendChild(h);
  let d;
  try {
    /* The API's end is inclusive: stop just before it, so a minute is [t, t+60). */
    d = await HS.api('/api/v1/captures', { model, start: w.start, end: (w.end - 0.001).toFixed(3), limit: 200 });
  } catch (e) {
    if (e.status === 404) return HS.msg(main, 'Captures are not available: request capture is not configured on this server (' + e.message + ').', true);
    throw e;
  }
  const recs = Array.isArray(d) ? d : d.captures || d.records || [];
  const rows = recs.map((r) => {
    const h = r.holoscope || {};
    const when = r.inferenceTime || r.t_recv_wall || h.t_recv_wall;
    return {
      id: h.request_id || r.inferenceId || r.request_id || r.eventId || r.id || '',
      model: h.model || r.model || r.model_requested || '',
      t: typeof when === 'string' ? Date.parse(when) / 1000 : num(r.time, r.t),
      ttft: num(h.ttft_s, r.ttft_s, r.ttft), e2e: num(h.e2e_s, r.e2e_s, r.e2e),
      tokens: num(h.output_tokens, r.output_tokens, r.tokens), input: num(h.input_tokens, r.input_tokens),
      finish: (h.finish_reasons || r.finish_reasons || [])[0] || r.finish_reason || '',
      /* A failed request has no finish reason: its HTTP status or outcome says why. */
      failed: Number(h.http_status) >= 400 ? 'HTTP ' + h.http_status : h.outcome && h.outcome !== 'ok' ? h.outcome : '',
      quality: h.quality || h.quality_scores || r.quality || {},
      prompt: payloadText(r.input, 'in') ?? r.prompt ?? '', answer: payloadText(r.output, 'out') ?? r.answer ?? '',
    };
  });
  HS.table(main, [
    { key: 't', label: 'Time', fmt: (v) => (v ? HS.esc(HS.time(v)) : '–') },
    { key: 'model', label: 'Model' }, { key: 'id', label: 'Request' },
    { key: 'ttft', label: 'TTFT', num: 1, fmt: (v) => HS.fmt(v, 's') }, { key: 'e2e', label: 'E2E', num: 1, fmt: (v) => HS.fmt(v, 's') },
    { key: 'input', label: 'In tok', num: 1, fmt: (v) => HS.fmt(v) }, { key: 'tokens', label: 'Out tok', num: 1, fmt: (v) => HS.fmt(v) },
    { key: 'finish', label: 'Finish', fmt: (v, r) => (r.failed && !v ? '<span class="pill firing">' + HS.esc(r.failed) + '</span>'
        : '<span class="pill' + (v === 'length' ? ' pending' : '') + '">' + HS.esc(v || '–') + '</span>') },
    { key: 'quality', label: 'Quality', fmt: fmtQuality },
    { key: 'prompt', label: 'Prompt (redacted)', fmt: (v) => '<pre class="text">' + HS.esc(typeof v === 'string' ? v : JSON.stringify(v)) + '</pre>' },
    { key: 'answer', label: 'Answer (redacted)', fmt: (v) => '<pre class="text">' + HS.esc(typeof v === 'string' ? v : JSON.stringify(v)) + '</pre>' },
  ], rows, { id: 'captures-table', sort: 't', empty: 'no captured requests in this time window' });
};

/* ---- explore ------------------------------------------------------------------ */
V.explore = async function (main, env) {
  const st = HS.state();
  const q = st.get('q') || '';
  const box = document.createElement('form');
  box.className = 'toolbar';
  box.innerHTML = '<textarea class="q" id="explore-q" name="q" aria-label="PromQL expression" list="hs-names" spellcheck="false" placeholder="PromQL, e.g. rate(llm_server_generation_tokens_total[5m]) — Ctrl+Enter runs"></textarea>' +
    '<input id="explore-complete" list="hs-names" aria-label="Metric or label name completion" placeholder="complete a name…">' +
    '<datalist id="hs-names"></datalist><button type="submit">Run</button><span class="muted" id="explore-hint"></span>';
  main.appendChild(box);
  const ta = box.querySelector('textarea');
  ta.value = q;
  const run = () => HS.go({ q: ta.value.trim() });
  box.addEventListener('submit', (e) => { e.preventDefault(); run(); });
  ta.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); } });
  const comp = box.querySelector('#explore-complete');
  comp.addEventListener('change', () => {
    const pos = ta.selectionStart ?? ta.value.length;
    ta.value = ta.value.slice(0, pos) + comp.value + ta.value.slice(pos);
    comp.value = '';
    ta.focus();
  });
  Promise.all([HS.api('/api/v1/label/__name__/values').catch(() => []), HS.api('/api/v1/labels').catch(() => [])]).then(([names, labels]) => {
    const dl = box.querySelector('datalist');
    dl.innerHTML = names.concat(labels).slice(0, 5000).map((n) => '<option value="' + HS.esc(n) + '">').join('');
    box.querySelector('#explore-hint').textContent = names.length + ' metrics, ' + labels.length + ' label names';
  });
  if (!q) return HS.msg(main, 'Type a PromQL expression and press Run.');
  const grid = document.createElement('div');
  grid.className = 'grid wide';
  main.appendChild(grid);
  env.stats.push(await HS.chart(grid, { title: q, unit: '', series: [{ q }], height: 260 }, env));
  try {
    const d = await HS.instant(q, env.w.end);
    const rows = d.resultType === 'scalar' || d.resultType === 'string' ? [{ labels: '', value: d.result[1] }]
      : d.result.map((s) => ({ labels: HS.labelStr(s.metric), value: s.value ? s.value[1] : s.values[s.values.length - 1][1] }));
    const h = document.createElement('h2');
    h.textContent = 'Table (' + rows.length + ' series)';
    main.appendChild(h);
    HS.table(main, [{ key: 'labels', label: 'Series', fmt: (v) => '<code>' + HS.esc(v) + '</code>' }, { key: 'value', label: 'Value', num: 1 }],
             rows, { id: 'explore-table', sort: 'labels' });
  } catch (e) {
    HS.msg(main, e.message, true);
  }
};

/* ---- compare ------------------------------------------------------------------- */
V.compare = async function (main, env) {
  const st = HS.state();
  const mode = st.get('mode') || 'models';
  const a = st.get('a') || '', b = st.get('b') || '', shift = st.get('shift') || '1d';
  const form = document.createElement('form');
  form.className = 'toolbar';
  form.innerHTML = '<label>Compare <select name="mode"><option value="models">two models</option><option value="instances">two instances</option>' +
    '<option value="shift">now vs earlier</option></select></label>' +
    '<input name="a" placeholder="' + (mode === 'instances' ? 'instance A' : 'model A') + '" aria-label="first">' +
    (mode === 'shift' ? '<select name="shift" aria-label="shift"><option value="1d">a day earlier</option><option value="1w">a week earlier</option></select>'
                      : '<input name="b" placeholder="' + (mode === 'instances' ? 'instance B' : 'model B') + '" aria-label="second">') +
    '<button type="submit">Compare</button>';
  main.appendChild(form);
  form.mode.value = mode;
  form.a.value = a;
  if (form.b) form.b.value = b;
  if (form.shift) form.shift.value = shift;
  form.mode.addEventListener('change', () => HS.go({ mode: form.mode.value }));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    HS.go({ mode: form.mode.value, a: form.a.value, b: form.b ? form.b.value : null, shift: form.shift ? form.shift.value : null });
  });
  if (!a || (mode !== 'shift' && !b)) return HS.msg(main, 'Choose what to compare.');
  const key = mode === 'instances' ? 'instance' : 'model';
  const sides = mode === 'shift' ? [[a, ''], [a, ' offset ' + shift]] : [[a, ''], [b, '']];
  const label = (i) => (mode === 'shift' ? (i ? a + ' ' + shift + ' earlier' : a + ' now') : sides[i][0]);
  const mk = (fn) => sides.map(([v, off], i) => ({ q: fn(sel({ [key]: v }), off), legend: label(i), dash: i === 1 }));
  const defs = [
    { title: 'TTFT p95', unit: 's', series: mk((f, o) => 'histogram_quantile(0.95, sum by (le) (rate(llm_server_time_to_first_token_seconds_bucket' + f + W + o + ')))') },
    { title: 'Inter-token latency p95', unit: 's', series: mk((f, o) => 'histogram_quantile(0.95, sum by (le) (rate(llm_server_inter_token_latency_seconds_bucket' + f + W + o + ')))') },
    { title: 'Output tokens/s', unit: '', series: mk((f, o) => 'sum(rate(llm_server_generation_tokens_total' + f + W + o + '))') },
    { title: 'Error ratio', unit: '%', series: mk((f, o) => 'sum(rate(llm_server_requests_failed_total' + f + W + o + ')) / (sum(rate(llm_server_requests_finished_total' + f + W + o + ')) + sum(rate(llm_server_requests_failed_total' + f + W + o + ')))') },
    { title: 'KV-cache usage', unit: '%', series: mk((f, o) => 'max(llm_server_kv_cache_usage_ratio' + f + o + ')') },
    { title: 'Running requests', unit: '', series: mk((f, o) => 'sum(llm_server_requests_running' + f + o + ')') },
  ];
  env.stats.push(...(await panels(main, env, 'Compare ' + (mode === 'shift' ? a + ': now vs ' + shift + ' earlier' : a + ' vs ' + b), defs)));
};
})();
