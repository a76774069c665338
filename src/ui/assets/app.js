/*
 * app.js - boots the dashboard: reads the URL state, wires the time-range
 * picker, auto-refresh, theme and keyboard shortcuts, draws breadcrumbs
 * (fleet → model → instance → GPU) and renders the current view.  Every
 * render is numbered; a newer one cancels the older one's requests, so a
 * slow answer never overwrites a newer view.
 */
'use strict';
(function () {
const main = document.getElementById('main');
const banner = document.getElementById('banner');
const rangeSel = document.getElementById('range');
const refreshSel = document.getElementById('refresh');
const custom = document.getElementById('custom');
let generation = 0;
let timer = null;

/* Results of the last render, read by the browser tests. */
window.hsLast = { view: null, done: false, ms: 0, series: 0, points: 0, error: null };

function crumbs(st) {
  const v = st.get('v') || 'fleet';
  const parts = [['Fleet', HS.link({ v: 'fleet', model: null, instance: null, gpu: null })]];
  if (['model', 'instance', 'gpu', 'captures'].includes(v) && st.get('model'))
    parts.push(['Model ' + st.get('model'), HS.link({ v: 'model', instance: null, gpu: null })]);
  if (['instance', 'gpu'].includes(v) && st.get('instance'))
    parts.push(['Instance ' + st.get('instance'), HS.link({ v: 'instance', gpu: null })]);
  if (v === 'gpu') parts.push([st.get('gpu') ? 'GPU ' + st.get('gpu') : 'GPUs', HS.link({ v: 'gpu' })]);
  if (!['fleet', 'model', 'instance', 'gpu'].includes(v)) parts.push([v[0].toUpperCase() + v.slice(1), HS.link({})]);
  document.getElementById('crumbs').innerHTML = parts.map(([t, h], i) => (i === parts.length - 1
    ? '<span aria-current="page">' + HS.esc(t) + '</span>' : '<a href="' + h + '">' + HS.esc(t) + '</a><span class="sep">›</span>')).join('');
}

function syncControls(st) {
  const from = st.get('from'), to = st.get('to');
  const isCustom = from && to;
  rangeSel.value = isCustom ? 'custom' : st.get('range') || '1h';
  custom.hidden = !isCustom && rangeSel.value !== 'custom';
  const local = (t) => new Date(t * 1000 - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  if (isCustom) {
    document.getElementById('from').value = local(Number(from));
    document.getElementById('to').value = local(Number(to));
  }
  refreshSel.value = st.get('refresh') || '0';
  document.documentElement.dataset.theme = st.get('theme') || document.documentElement.dataset.theme || 'light';
  const v = st.get('v') || 'fleet';
  document.querySelectorAll('.tabs a').forEach((a) => {
    a.classList.toggle('active', a.dataset.view === v);
    a.href = HS.link({ v: a.dataset.view });
  });
  document.querySelector('.brand').href = HS.link({ v: 'fleet' });
}

async function render() {
  const gen = ++generation;
  HS.cancelAll();
  HS.destroyCharts();
  const st = HS.state();
  const v = st.get('v') || 'fleet';
  syncControls(st);
  crumbs(st);
  banner.hidden = true;
  main.innerHTML = '';
  main.dataset.view = v;
  const t0 = performance.now();
  window.hsLast = { view: v, done: false, ms: 0, series: 0, points: 0, error: null, generation: gen };
  const env = { w: HS.window(), alerts: [], stats: [] };
  const view = HS.views[v];
  try {
    if (!view) throw new Error('unknown view "' + v + '"');
    if (['model', 'instance', 'gpu', 'compare'].includes(v))
      env.alerts = await HS.alertPeriods(env.w).catch(() => []);
    if (gen !== generation) return;
    await view(main, env);
  } catch (e) {
    if (gen !== generation) return;
    banner.textContent = 'Error: ' + e.message;
    banner.hidden = false;
    window.hsLast.error = e.message;
    if (!main.childElementCount) HS.msg(main, 'This view could not be loaded: ' + e.message, true);
  }
  if (gen !== generation) return;
  const errs = main.querySelectorAll('.panel[data-state="error"] .msg');
  if (errs.length && banner.hidden) {
    banner.textContent = errs.length + ' panel(s) failed: ' + errs[0].textContent;
    banner.hidden = false;
  }
  window.hsLast = { view: v, done: true, ms: performance.now() - t0, generation: gen,
                    series: env.stats.reduce((a, s) => a + (s ? s.series : 0), 0),
                    points: env.stats.reduce((a, s) => a + (s ? s.points : 0), 0),
                    panels: env.stats.length, error: window.hsLast.error };
  document.body.dataset.rendered = String(gen);
  schedule(st);
}

function schedule(st) {
  clearTimeout(timer);
  const sec = Number(st.get('refresh') || 0);
  if (sec > 0 && !(st.get('from') && st.get('to'))) timer = setTimeout(render, sec * 1000);
}

rangeSel.addEventListener('change', () => {
  if (rangeSel.value === 'custom') {
    custom.hidden = false;
    const w = HS.window();
    const local = (t) => new Date(t * 1000 - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 16);
    document.getElementById('from').value = local(w.start);
    document.getElementById('to').value = local(w.end);
    return;
  }
  HS.go({ range: rangeSel.value, from: null, to: null });
});
document.getElementById('apply-custom').addEventListener('click', () => {
  const from = Date.parse(document.getElementById('from').value) / 1000;
  const to = Date.parse(document.getElementById('to').value) / 1000;
  if (!(from < to)) {
    banner.textContent = 'Custom range: "from" must be before "to".';
    banner.hidden = false;
    return;
  }
  HS.go({ from: Math.floor(from), to: Math.floor(to), range: null });
});
refreshSel.addEventListener('change', () => HS.go({ refresh: refreshSel.value === '0' ? null : refreshSel.value }));
document.getElementById('reload').addEventListener('click', render);
const toggleTheme = () => HS.go({ theme: document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark' });
document.getElementById('theme').addEventListener('click', toggleTheme);
document.addEventListener('keydown', (e) => {
  if (e.target.closest('input, textarea, select') || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === 'r') render();
  else if (e.key === 't') toggleTheme();
  else if (e.key === 'f') HS.go({ v: 'fleet' });
  else if (e.key === 'a') HS.go({ v: 'alerts' });
  else if (e.key === 'e') HS.go({ v: 'explore' });
});
let resizeTimer = null;
let lastWidth = window.innerWidth;
window.addEventListener('resize', () => {
  if (window.innerWidth === lastWidth) return; /* charts depend on the width only */
  lastWidth = window.innerWidth;
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(render, 300);
});
window.addEventListener('hashchange', render);
render();
})();
