/*
 * lib.mjs - helpers shared by the dashboard's browser drivers
 * (dashboard.mjs over a backfilled dataset, demo.mjs over `holoscope demo`):
 * launching headless Chromium, numbered checks, waiting for a render of the
 * dashboard to finish, and screenshots.
 */
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

/* Throws "FAILED: what (detail)" unless cond; prints "ok - what" otherwise. */
export function check(cond, what, detail) {
  if (!cond) throw new Error('FAILED: ' + what + (detail !== undefined ? ' (' + JSON.stringify(detail) + ')' : ''));
  console.log('ok - ' + what);
}

/* Chromium (HS_CHROMIUM, else /usr/bin/chromium) with one 1366x768 page.
 * Uncaught page errors are collected in 'pageErrors'. */
export async function launch() {
  const exe = process.env.HS_CHROMIUM || '/usr/bin/chromium';
  const browser = await chromium.launch({ executablePath: exe, args: ['--no-sandbox', '--disable-gpu'] });
  const ctx = await browser.newContext({ viewport: { width: 1366, height: 768 } });
  const page = await ctx.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  return { browser, page, pageErrors };
}

/*
 * Helpers bound to one page: gen() is the number of the last render
 * started, rendered(prev) waits until a render other than 'prev' is done and
 * returns its results (window.hsLast: view, ms, panels, series, points,
 * error), shot(name) writes OUT_DIR/name.png of the whole page.
 */
export function bind(page, outDir) {
  fs.mkdirSync(outDir, { recursive: true });
  const rendered = async (prev, timeout) => {
    await page.waitForFunction((p) => window.hsLast && window.hsLast.done && window.hsLast.generation !== p, prev ?? -1,
                               { timeout: timeout || 30000 });
    return page.evaluate(() => window.hsLast);
  };
  const gen = () => page.evaluate(() => (window.hsLast ? window.hsLast.generation : -1));
  const shot = (name) => page.screenshot({ path: path.join(outDir, name + '.png'), fullPage: true });
  /* Navigates to base + '/#' + hash (or runs 'action') and waits for its render. */
  const open = async (hashOrAction, base) => {
    const g = await gen().catch(() => -1);
    if (typeof hashOrAction === 'function') await hashOrAction();
    else await page.goto(base + '/#' + hashOrAction);
    return rendered(g);
  };
  return { rendered, gen, shot, open };
}

/* The cells of every row of a table's body, as trimmed text. */
export function tableRows(page, selector) {
  return page.$$eval(selector + ' tbody tr', (trs) => trs.map((tr) => Array.from(tr.cells).map((c) => c.textContent.trim())));
}

/* Runs 'body' and exits 0, or prints its error and exits 1; closes the browser either way. */
export async function run(browser, body) {
  let failed = false;
  try {
    await body();
  } catch (e) {
    failed = true;
    console.error(e.message);
  }
  await browser.close();
  process.exit(failed ? 1 : 0);
}
