/*
 * lib.js - shared pieces of the dashboard: URL state, the API client (with
 * slow-query and error reporting), number formatting, alert periods, and
 * the chart panel built on uPlot (synchronised crosshair, alert bands,
 * threshold lines, right axis, area and stacked-bar styles).
 */
'use strict';
const HS = (window.HS = {});

/* ---- URL state: everything lives in the hash as query parameters ---------- */
HS.state = function () {
  return new URLSearchParams(location.hash.replace(/^#/, ''));
};
HS.link = function (changes, base) {
  const p = base ? new URLSearchParams(base) : HS.state();
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === '') p.delete(k);
    else p.set(k, v);
  }
  return '#' + p.toString();
};
HS.go = function (changes) {
  location.hash = HS.link(changes);
};

const UNITS = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
HS.parseDur = function (s) {
  const m = /^(\d+)([smhdw])$/.exec(s || '');
  return m ? Number(m[1]) * UNITS[m[2]] : null;
};
/* The window shown: [start, end] in seconds and the step giving ~240 points. */
HS.window = function () {
  const st = HS.state();
  let end = Number(st.get('to')) || 0;
  let start = Number(st.get('from')) || 0;
  if (!(end > 0 && start > 0 && start < end)) {
    end = Math.floor(Date.now() / 1000);
    start = end - (HS.parseDur(st.get('range') || '1h') || 3600);
  }
  const step = Math.max(15, Math.ceil((end - start) / 240 / 15) * 15);
  /* The last step falls on the end, so live views show the newest values. */
  start = end - Math.ceil((end - start) / step) * step;
  return { start, end, step, span: end - start };
};

/* ---- API client ------------------------------------------------------------ */
HS.slowMs = 2000;
HS.inflight = new Set();
class ApiError extends Error {
  constructor(msg, status) {
    super(msg);
    this.status = status;
  }
}
HS.ApiError = ApiError;
/* GET path?params; resolves with the JSON 'data' member.  onSlow() fires when
 * the answer takes more than HS.slowMs.  Errors carry the API's message. */
HS.api = async function (path, params, onSlow) {
  const url = path + (params ? '?' + new URLSearchParams(params).toString() : '');
  const ctl = new AbortController();
  HS.inflight.add(ctl);
  const slow = onSlow ? setTimeout(onSlow, HS.slowMs) : null;
  const kill = setTimeout(() => ctl.abort(), 60000);
  try {
    let res;
    try {
      res = await fetch(url, { signal: ctl.signal, headers: { Accept: 'application/json' } });
    } catch (e) {
      throw new ApiError(ctl.signal.aborted ? 'request cancelled or timed out: ' + path
                                            : 'network error: ' + e.message, 0);
    }
    const text = await res.text();
    let body = null;
    try {
      body = JSON.parse(text);
    } catch (e) {
      body = null;
    }
    if (!res.ok || !body || body.status === 'error') {
      const msg = body && body.error ? body.error : text.trim().slice(0, 300) || res.statusText;
      throw new ApiError(res.status + ' ' + (body && body.errorType ? body.errorType + ': ' : '') + msg,
                         res.status);
    }
    return body.data;
  } finally {
    clearTimeout(slow);
    clearTimeout(kill);
    HS.inflight.delete(ctl);
  }
};
HS.cancelAll = function () {
  for (const c of HS.inflight) c.abort();
  HS.inflight.clear();
};
HS.range = function (query, w, onSlow) {
  return HS.api('/api/v1/query_range', { query, start: w.start, end: w.end, step: w.step }, onSlow);
};
HS.instant = function (query, time, onSlow) {
  return HS.api('/api/v1/query', time ? { query, time } : { query }, onSlow);
};

/* ---- formatting -------------------------------------------------------------- */
HS.esc = function (s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
};
HS.fmt = function (v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  const a = Math.abs(v);
  switch (unit) {
    case 's':
      if (a === 0) return '0';
      if (a < 1e-3) return (v * 1e6).toFixed(0) + ' µs';
      if (a < 1) return (v * 1e3).toPrecision(3) + ' ms';
      return v.toPrecision(3) + ' s';
    case '%':
      return (v * 100).toFixed(a < 0.1 ? 2 : 1) + ' %';
    case 'B': {
      const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
      let i = 0, x = v;
      while (Math.abs(x) >= 1024 && i < u.length - 1) { x /= 1024; i++; }
      return x.toPrecision(3) + ' ' + u[i];
    }
    case '$':
      return '$' + v.toFixed(a < 10 ? 2 : 0);
    case 'W': return v.toFixed(0) + ' W';
    case 'C': return v.toFixed(0) + ' °C';
    case 'Hz': return (v / 1e6).toFixed(0) + ' MHz';
    default:
      if (a >= 1e9) return (v / 1e9).toPrecision(3) + 'G';
      if (a >= 1e6) return (v / 1e6).toPrecision(3) + 'M';
      if (a >= 1e4) return (v / 1e3).toPrecision(3) + 'k';
      if (a === 0) return '0';
      return a < 0.01 ? v.toExponential(1) : String(Number(v.toPrecision(3)));
  }
};
HS.labelStr = function (m, skip) {
  return Object.entries(m || {})
    .filter(([k]) => !(skip || []).includes(k))
    .map(([k, v]) => k + '="' + v + '"').join(', ');
};
HS.time = function (t) {
  const d = new Date(t * 1000);
  return d.toLocaleString(undefined, { hour12: false });
};
HS.q = function (s) {
  return '"' + String(s).replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
};

/* ---- alert periods ------------------------------------------------------------ */
/* Pending and firing periods of ALERTS over the window: [{labels, state,
 * from, to}], fetched once per render and shared by every chart.  Pending
 * periods matter: most alerts wait minutes ('for') before they fire, and the
 * chart should show when the condition began. */
HS.alertPeriods = async function (w) {
  /* The range query sees ALERTS at the window's steps only; the instant
   * query at the end adds an alert active now that no step saw (one that
   * just became pending, often the one the user came to see). */
  const [data, now] = await Promise.all([HS.range('ALERTS', w), HS.instant('ALERTS', w.end).catch(() => ({ result: [] }))]);
  const key = (m) => Object.keys(m).sort().map((k) => k + '=' + m[k]).join(',');
  const out = [];
  const open = new Map();
  for (const s of data.result || []) {
    const state = s.metric.alertstate === 'firing' ? 'firing' : 'pending';
    let from = null, prev = null;
    /* A value at t says the alert was active at the evaluation before t
     * at the latest: a run of values from t0 to t1 is drawn over
     * [t0 - step, t1], never empty, ending at the newest value. */
    const push = () => {
      const p = { labels: s.metric, state, from: Math.max(w.start, from - w.step), to: prev };
      out.push(p);
      if (prev + w.step > w.end) open.set(key(s.metric), p);
    };
    for (const [t] of s.values) {
      if (from === null) from = t;
      else if (t - prev > w.step * 1.5) {
        push();
        from = t;
      }
      prev = t;
    }
    if (from !== null) push();
  }
  for (const s of now.result || []) {
    if (open.has(key(s.metric))) continue;
    out.push({ labels: s.metric, state: s.metric.alertstate === 'firing' ? 'firing' : 'pending',
               from: Math.max(w.start, w.end - w.step), to: w.end });
  }
  /* Firing drawn last, over pending. */
  return out.sort((a, b) => (a.state === b.state ? 0 : a.state === 'firing' ? 1 : -1));
};

/* An alert concerns a chart when every label of the chart's context that the
 * alert carries is equal (and at least one is carried). */
HS.alertConcerns = function (labels, ctx) {
  let hit = 0;
  for (const [k, v] of Object.entries(ctx || {})) {
    if (labels[k] === undefined) continue;
    if (labels[k] !== v) return false;
    hit++;
  }
  return hit > 0;
};

/* ---- charts -------------------------------------------------------------------- */
const PALETTE = ['#2563eb', '#e8590c', '#2f9e44', '#ae3ec9', '#f59f00', '#0c8599', '#c2255c', '#5c7cfa',
                 '#74b816', '#862e9c'];
HS.charts = new Set();
HS.ctxSync = () => uPlot.sync('hs');

/* Merges query results into uPlot's aligned columns. */
function align(results) {
  const xs = new Set();
  for (const r of results) for (const s of r.series) for (const [t] of s.values) xs.add(t);
  const x = Array.from(xs).sort((a, b) => a - b);
  const idx = new Map(x.map((t, i) => [t, i]));
  const cols = [x];
  const meta = [];
  for (const r of results) {
    for (const s of r.series) {
      const col = new Array(x.length).fill(null);
      /* NaN (a quantile or ratio over no requests) and ±Inf are gaps: one
       * of them in a column would break the chart's scale. */
      for (const [t, v] of s.values) {
        const n = Number(v);
        col[idx.get(t)] = Number.isFinite(n) ? n : null;
      }
      cols.push(col);
      meta.push({ def: r.def, metric: s.metric });
    }
  }
  return { cols, meta };
}

function lastOf(col) {
  for (let j = col.length - 1; j >= 0; j--) if (col[j] !== null && col[j] !== undefined) return col[j];
  return null;
}

function legendOf(def, metric) {
  if (typeof def.legend === 'function') return def.legend(metric);
  if (def.legend && def.legend.includes('{{'))
    return def.legend.replace(/\{\{(\w+)\}\}/g, (_, k) => metric[k] || '');
  const rest = HS.labelStr(metric, ['__name__']);
  return def.legend ? def.legend + (def.byLabels && rest ? ' ' + rest : '') : rest || metric.__name__ || 'value';
}

/*
 * A chart panel: opts = {title, unit, unit2, series: [{q, legend, axis: 2?,
 * dash?}], kind: 'line'|'area'|'bars', stacked, threshold: {value, label},
 * ctx: labels alert bands must match, onClick(t)}.  Renders into a new
 * .panel appended to 'parent'; returns a promise of stats {series, points}.
 */
HS.chart = async function (parent, opts, env) {
  const el = document.createElement('section');
  el.className = 'panel' + (opts.onClick ? ' clickable' : '');
  el.setAttribute('aria-label', opts.title);
  el.innerHTML = '<h3><span>' + HS.esc(opts.title) + '</span><span class="state">loading…</span></h3>' +
                 '<div class="body"></div>';
  parent.appendChild(el);
  const state = el.querySelector('.state');
  const body = el.querySelector('.body');
  const w = env.w;
  let results;
  try {
    results = await Promise.all(opts.series.map(async (def) => {
      const data = await HS.range(def.q, w, () => { state.textContent = 'slow query…'; el.dataset.slow = '1'; });
      return { def, series: (data.result || []).slice(0, 40) };
    }));
  } catch (e) {
    if (!el.isConnected) return { series: 0, points: 0 };
    state.textContent = 'error';
    el.dataset.state = 'error';
    body.innerHTML = '<div class="msg err">' + HS.esc(e.message) + '</div>';
    return { series: 0, points: 0 };
  }
  if (!el.isConnected) return { series: 0, points: 0 };
  const { cols, meta } = align(results);
  const empty = meta.length === 0 || cols.slice(1).every((c) => c.every((v) => v === null));
  if (empty) {
    state.textContent = '';
    el.dataset.state = 'nodata';
    body.innerHTML = '<div class="msg">' + (meta.length ? 'no finite values (no requests?) in this time range'
                                                        : 'no data in this time range') + '</div>';
    return { series: 0, points: 0 };
  }
  state.textContent = '';
  el.dataset.state = 'ok';
  el.dataset.series = String(meta.length);
  /* Stacked charts stack the left-axis series (each drawn as the running
   * total, the tallest first so that the smaller ones stay visible); the
   * right-axis series stay lines.  Legends always show the raw values. */
  let order = meta.map((m, i) => i);
  const plotCols = [cols[0]];
  const shown = cols.slice(1);
  if (opts.stacked) {
    const acc = new Array(cols[0].length).fill(0);
    meta.forEach((m, i) => {
      if (m.def.axis !== 2) shown[i] = cols[i + 1].map((v, j) => (acc[j] += v || 0));
    });
    const stackedIdx = order.filter((i) => meta[i].def.axis !== 2).reverse();
    order = stackedIdx.concat(order.filter((i) => meta[i].def.axis === 2));
  }
  const css = getComputedStyle(document.documentElement);
  const fg = css.getPropertyValue('--muted').trim();
  const grid = css.getPropertyValue('--grid').trim();
  const bandColor = { firing: css.getPropertyValue('--band').trim(), pending: css.getPropertyValue('--band-pending').trim() };
  const hasRight = meta.some((m) => m.def.axis === 2);
  /* Away from the cursor the legend shows each series' latest value. */
  const series = [{ value: (u, v) => (v === null || v === undefined ? 'latest' : HS.time(v)) }];
  for (const i of order) {
    const m = meta[i];
    plotCols.push(shown[i]);
    const color = PALETTE[i % PALETTE.length];
    const unit = m.def.axis === 2 ? opts.unit2 : opts.unit;
    const s = {
      label: legendOf(m.def, m.metric),
      stroke: color,
      width: 1.5,
      scale: m.def.axis === 2 ? 'y2' : 'y',
      value: (u, v, si, idx) => HS.fmt(idx === null || idx === undefined ? lastOf(cols[i + 1]) : cols[i + 1][idx], unit),
      spanGaps: false,
      /* A series of a few values (a fresh server, a sparse gauge) shows its
       * points: a lone value draws no line. */
      points: { show: opts.kind !== 'bars' && shown[i].filter((v) => v !== null && v !== undefined).length < 8, size: 5 },
    };
    if (m.def.dash) s.dash = [5, 4];
    if (opts.kind === 'area') s.fill = color + '33';
    if (opts.kind === 'bars' && m.def.axis !== 2) {
      s.fill = color + 'cc';
      s.paths = uPlot.paths.bars({ size: [0.8, 40] });
    }
    series.push(s);
  }
  const bands = (env.alerts || []).filter((a) => HS.alertConcerns(a.labels, opts.ctx) && a.to > w.start && a.from < w.end);
  el.dataset.alertBands = String(bands.length);
  el.dataset.alertFiring = String(bands.filter((b) => b.state === 'firing').length);
  el.dataset.alertPending = String(bands.filter((b) => b.state === 'pending').length);
  if (bands.length) {
    const names = Array.from(new Set(bands.map((b) => b.labels.alertname + ' (' + b.state + ')')));
    const firing = bands.some((b) => b.state === 'firing');
    const alertnames = Array.from(new Set(bands.map((b) => b.labels.alertname)));
    state.innerHTML = '<span class="pill ' + (firing ? 'firing' : 'pending') + '" title="' + HS.esc(names.join(', ')) + '">' +
                      HS.esc(alertnames.length === 1 ? alertnames[0] : alertnames.length + ' alerts') + '</span>';
  }
  const axes = [
    { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid } },
    { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid }, size: 72,
      values: (u, vals) => vals.map((v) => HS.fmt(v, opts.unit)) },
  ];
  if (hasRight)
    axes.push({ scale: 'y2', side: 1, stroke: fg, grid: { show: false }, size: 72,
                values: (u, vals) => vals.map((v) => HS.fmt(v, opts.unit2)) });
  const width = Math.max(280, body.clientWidth || el.clientWidth - 16);
  const cfg = {
    width,
    height: opts.height || 190,
    cursor: { sync: { key: 'hs', setSeries: true }, drag: { x: true, y: false } },
    scales: { x: { time: true, min: w.start, max: w.end },
              y: opts.unit === '%' && !opts.stacked ? { range: (u, mn, mx) => [0, Math.max(mx, opts.threshold ? opts.threshold.value * 1.5 : 0.01)] }
                                                     : { range: (u, mn, mx) => [Math.min(0, mn), mx > 0 ? mx * 1.1 : 1] } },
    series,
    axes,
    legend: { live: true },
    hooks: {
      drawClear: [(u) => {
        const ctx = u.ctx;
        ctx.save();
        for (const b of bands) {
          ctx.fillStyle = bandColor[b.state];
          const x0 = u.valToPos(Math.max(b.from, w.start), 'x', true);
          const x1 = u.valToPos(Math.min(b.to, w.end), 'x', true);
          if (x1 > x0) ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
        }
        ctx.restore();
      }],
      draw: [(u) => {
        if (!opts.threshold) return;
        const ctx = u.ctx;
        const y = u.valToPos(opts.threshold.value, 'y', true);
        ctx.save();
        ctx.strokeStyle = '#c62828';
        ctx.setLineDash([6, 4]);
        ctx.beginPath();
        ctx.moveTo(u.bbox.left, y);
        ctx.lineTo(u.bbox.left + u.bbox.width, y);
        ctx.stroke();
        ctx.fillStyle = '#c62828';
        const label = opts.threshold.label || '';
        ctx.fillText(label, u.bbox.left + u.bbox.width - ctx.measureText(label).width - 4, y - 4);
        ctx.restore();
      }],
      setSelect: [(u) => {
        if (u.select.width < 5) return;
        const from = Math.floor(u.posToVal(u.select.left, 'x'));
        const to = Math.ceil(u.posToVal(u.select.left + u.select.width, 'x'));
        HS.go({ from, to, range: null });
      }],
    },
  };
  body.innerHTML = '';
  const plot = new uPlot(cfg, plotCols, body);
  HS.charts.add(plot);
  if (opts.onClick) {
    plot.over.addEventListener('click', () => {
      const i = plot.cursor.idx;
      if (i !== null && i !== undefined && plot.select.width < 5) opts.onClick(plot.data[0][i]);
    });
  }
  let points = 0;
  for (let i = 1; i < cols.length; i++) points += cols[i].length;
  return { series: meta.length, points };
};
HS.destroyCharts = function () {
  for (const c of HS.charts) c.destroy();
  HS.charts.clear();
};

/* A tiny inline-SVG sparkline of one series' values. */
HS.spark = function (values) {
  if (!values || values.length < 2) return '<span class="muted">–</span>';
  const ys = values.map(([, v]) => Number(v)).filter(Number.isFinite);
  const t0 = values[0][0], t1 = values[values.length - 1][0];
  const mn = Math.min(...ys), mx = Math.max(...ys);
  const pts = values.map(([t, v]) => ((t - t0) / (t1 - t0 || 1) * 118 + 1).toFixed(1) + ',' +
                                     (23 - ((Number(v) - mn) / (mx - mn || 1)) * 22).toFixed(1)).join(' ');
  return '<svg class="spark" viewBox="0 0 120 24" role="img" aria-label="trend"><polyline points="' + pts + '"/></svg>';
};

/* A sortable table: cols = [{key, label, num?, fmt?(v,row)->html}]. */
HS.table = function (parent, cols, rows, opts) {
  opts = opts || {};
  const wrap = document.createElement('div');
  parent.appendChild(wrap);
  let sortKey = opts.sort || null, dir = opts.dir || 1;
  const draw = () => {
    const sorted = rows.slice();
    if (sortKey) {
      sorted.sort((a, b) => {
        const x = a[sortKey], y = b[sortKey];
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * dir;
      });
    }
    wrap.innerHTML = '<table' + (opts.id ? ' id="' + opts.id + '"' : '') + '><thead><tr>' +
      cols.map((c) => '<th class="' + (c.num ? 'num' : '') + '" aria-sort="' +
        (c.key === sortKey ? (dir > 0 ? 'ascending' : 'descending') : 'none') + '"><button type="button" data-k="' +
        c.key + '">' + HS.esc(c.label) + (c.key === sortKey ? (dir > 0 ? ' ▲' : ' ▼') : '') + '</button></th>').join('') +
      '</tr></thead><tbody>' +
      (sorted.length ? sorted.map((r) => '<tr' + (r._cls ? ' class="' + r._cls + '"' : '') + '>' + cols.map((c) =>
        '<td class="' + (c.num ? 'num' : '') + '">' + (c.fmt ? c.fmt(r[c.key], r) : HS.esc(r[c.key] ?? '–')) + '</td>').join('') + '</tr>').join('')
        : '<tr><td colspan="' + cols.length + '" class="muted">' + HS.esc(opts.empty || 'no data') + '</td></tr>') +
      '</tbody></table>';
    wrap.querySelectorAll('th button').forEach((b) => b.addEventListener('click', () => {
      const k = b.dataset.k;
      dir = k === sortKey ? -dir : 1;
      sortKey = k;
      draw();
      wrap.querySelector('th button[data-k="' + k + '"]').focus();
    }));
  };
  draw();
  return wrap;
};

HS.msg = function (parent, text, isErr) {
  const d = document.createElement('div');
  d.className = 'panel msg' + (isErr ? ' err' : '');
  d.style.minHeight = 'auto';
  d.setAttribute('role', isErr ? 'alert' : 'status');
  d.textContent = text;
  parent.appendChild(d);
  return d;
};
