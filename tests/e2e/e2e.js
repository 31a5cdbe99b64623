// Browser half of the e2e test (run by run.sh): drive code-server in headless chromium, type Python, wait for
// ghost text from the real server, accept it with Tab, save, and check the file on disk.
// Env: CS_PORT (code-server), API (completion server URL), WS (workspace with main.py), UD (VS Code user data,
// for the extension's output-channel log), CHROME (browser profile dir), SHOTS (screenshots/report dir),
// SERVER_PID (optional: the test stops that server at the end to check the quiet offline behaviour).
const { chromium } = require('playwright-core');
const fs = require('fs');
const path = require('path');

const { CS_PORT, API, WS, UD, CHROME, SHOTS } = process.env;
const FILE = path.join(WS, 'main.py');
const CONTEXT_LINES = 20; // the extension's default pythonAutocomplete.contextLines
const GHOST = '.editor-instance .ghost-text-decoration, .editor-instance .ghost-text-decoration-preview, .editor-instance .ghost-text';

// Each scenario types `typed` at the start of a new last line; `autoClosed` is what VS Code's bracket/quote
// auto-closing leaves after the cursor (the extension then sees it as the suffix).
const SCENARIOS = [
  { name: 'call', typed: 'files = list_python_', autoClosed: '' },
  { name: 'nested-call', typed: 'print(len(', autoClosed: '))' },
  { name: 'for-loop', typed: 'for path in ', autoClosed: '' },
];

const t0 = Date.now();
const lap = (m) => console.log(`  [e2e.js ${((Date.now() - t0) / 1000).toFixed(1)}s] ${m}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function findOutputLog() {
  const hits = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('Python Autocomplete.log')) hits.push(p);
    }
  };
  if (fs.existsSync(path.join(UD, 'logs'))) walk(path.join(UD, 'logs'));
  return hits[0];
}

/** The extension's log line for the ghost text it returned at (line, col), both 1-based. */
async function shownAt(line, col) {
  const re = new RegExp(`inline at ${line}:${col} shown=(".*") replace=(\\d+)$`);
  for (let i = 0; i < 100; i++) {
    const log = findOutputLog();
    const lines = log ? fs.readFileSync(log, 'utf8').split('\n') : [];
    const hits = lines.map((l) => l.match(re)).filter(Boolean);
    if (hits.length) {
      const m = hits[hits.length - 1];
      return { text: JSON.parse(m[1]), replace: Number(m[2]) };
    }
    await sleep(100);
  }
  throw new Error(`no 'inline at ${line}:${col}' line in the extension's output log (${findOutputLog()})`);
}

async function askServer(prompt, suffix) {
  const res = await fetch(`${API}/autocomplete`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt, suffix, max_suggestions: 3 }),
  });
  return res.json();
}

async function saveAndRead(page, notEqual) {
  await page.keyboard.press('Control+S');
  let disk = '';
  for (let i = 0; i < 100; i++) {
    await sleep(100);
    disk = fs.readFileSync(FILE, 'utf8');
    if (disk !== notEqual) break;
  }
  return disk;
}

(async () => {
  const ctx = await chromium.launchPersistentContext(CHROME, {
    executablePath: '/usr/bin/chromium', headless: true, viewport: { width: 1400, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const failures = [];
  const latencies = [];
  const page = ctx.pages()[0] || (await ctx.newPage());
  try {
    await page.goto(`http://127.0.0.1:${CS_PORT}/?folder=${WS}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 90000 });
    await page.waitForSelector('.explorer-folders-view .monaco-list-row[aria-label*="main.py"]', { timeout: 90000 });
    lap('workbench loaded');
    await page.keyboard.press('Control+P');
    await page.waitForSelector('.quick-input-widget input', { state: 'visible', timeout: 20000 });
    await page.keyboard.type('main.py');
    await page.waitForSelector('.quick-input-list .monaco-list-row', { timeout: 20000 });
    await page.keyboard.press('Enter');
    const editor = page.locator('.editor-instance .monaco-editor .view-lines').first();
    await editor.waitFor({ timeout: 20000 });
    await editor.click();
    // the extension activates on the python file; its status bar item appears when it has checked /health
    await page.waitForFunction(() => /PyAC/.test(document.querySelector('.statusbar')?.textContent || ''), null, { timeout: 30000 });
    lap('main.py open, extension active: ' + (await page.evaluate(() => [...document.querySelectorAll('.statusbar-item')].map((e) => e.textContent).find((t) => /PyAC/.test(t)))));
    await page.screenshot({ path: `${SHOTS}/01_opened.png` });

    // latency probe, in the page's own clock: last keydown -> first ghost text in the DOM after it
    await page.evaluate((sel) => {
      window.__probe = { lastKey: 0, ghostAt: 0 };
      document.addEventListener('keydown', () => { window.__probe.lastKey = performance.now(); window.__probe.ghostAt = 0; }, true);
      const visible = () => [...document.querySelectorAll(sel)].some((e) => e.textContent.replace(/\u00a0/g, ' ').trim() !== '');
      new MutationObserver(() => {
        if (window.__probe.lastKey && !window.__probe.ghostAt && visible()) window.__probe.ghostAt = performance.now();
      }).observe(document.body, { childList: true, subtree: true, characterData: true });
    }, GHOST);

    let step = 2;
    for (const sc of SCENARIOS) {
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+End');
      const before = await saveAndRead(page, null); // the document on disk before this scenario
      if (!before.endsWith('\n')) throw new Error('expected the file to end with a newline');
      await page.keyboard.type(sc.typed, { delay: 60 });
      const docText = before + sc.typed;
      const lines = docText.split('\n');
      const [line, col] = [lines.length, lines[lines.length - 1].length + 1];
      let ghostDom = '';
      try {
        await page.waitForFunction(() => window.__probe.ghostAt > 0, null, { timeout: 30000 });
        ghostDom = await page.evaluate((sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent.replace(/\u00a0/g, ' ')).join('|'), GHOST);
      } catch (e) {
        await page.screenshot({ path: `${SHOTS}/${String(step).padStart(2, '0')}_${sc.name}_no_ghost.png` });
        failures.push(`${sc.name}: no ghost text within 30 s after typing ${JSON.stringify(sc.typed)}`);
        break;
      }
      const ms = await page.evaluate(() => window.__probe.ghostAt - window.__probe.lastKey);
      latencies.push(ms);
      await page.screenshot({ path: `${SHOTS}/${String(step++).padStart(2, '0')}_${sc.name}_ghost.png` });
      const shown = await shownAt(line, col);
      lap(`${sc.name}: typed ${JSON.stringify(sc.typed)} -> ghost ${JSON.stringify(shown.text)} (replaces ${shown.replace} char(s) after the cursor) after ${ms.toFixed(0)} ms; DOM: ${JSON.stringify(ghostDom)}`);

      // the same request straight to the server: its best non-empty answer (trailing whitespace trimmed) is what was shown
      const prompt = lines.slice(Math.max(0, lines.length - 1 - CONTEXT_LINES)).join('\n');
      const direct = await askServer(prompt, sc.autoClosed);
      const best = (direct.prediction || []).map((p) => p.replace(/\s+$/u, '')).find((p) => p.length > 0);
      if (best !== shown.text) failures.push(`${sc.name}: the server answers ${JSON.stringify(direct.prediction)} but the extension showed ${JSON.stringify(shown.text)}`);

      await page.keyboard.press('Tab');
      await sleep(300);
      await page.keyboard.press('Escape');
      const after = await saveAndRead(page, before);
      await page.screenshot({ path: `${SHOTS}/${String(step++).padStart(2, '0')}_${sc.name}_accepted.png` });
      const expected = docText + shown.text + sc.autoClosed.slice(shown.replace);
      if (after !== expected) {
        failures.push(`${sc.name}: file on disk ends with ${JSON.stringify(after.slice(before.length))}, expected ${JSON.stringify(expected.slice(before.length))}`);
      } else {
        lap(`${sc.name}: saved line is ${JSON.stringify(after.slice(before.length))}`);
      }
      // next scenario on a fresh line (autoIndent is off, so it starts at column 1)
      await page.keyboard.press('End');
      await page.keyboard.press('Enter');
    }
    const statusText = () => page.evaluate(() => [...document.querySelectorAll('.statusbar-item')].map((e) => e.textContent).find((t) => /PyAC/.test(t)) || '');
    const status = await statusText();
    lap(`status bar: ${JSON.stringify(status)}`);
    if (!/PyAC \d+ ms/.test(status)) failures.push(`status bar does not show a latency: ${JSON.stringify(status)}`);
    await page.screenshot({ path: `${SHOTS}/${String(step++).padStart(2, '0')}_final.png` });
    const toasts = () => page.evaluate(() => [...document.querySelectorAll('.notification-toast')].filter((e) => /Python Autocomplete/.test(e.textContent)).length);
    if ((await toasts()) !== 0) failures.push('a notification appeared while the server was up');

    // toggle: clicking the status bar item runs pythonAutocomplete.toggle (off, then on again)
    const item = page.locator('.statusbar-item', { hasText: 'PyAC' }).first();
    await item.click();
    await page.waitForFunction(() => [...document.querySelectorAll('.statusbar-item')].some((e) => /PyAC off/.test(e.textContent)), null, { timeout: 10000 })
      .then(() => lap('toggle: status bar says off'), () => failures.push('toggle did not turn completions off'));
    await item.click();
    await page.waitForFunction(() => [...document.querySelectorAll('.statusbar-item')].some((e) => /PyAC/.test(e.textContent) && !/off/.test(e.textContent)), null, { timeout: 10000 })
      .then(() => lap('toggle: back on'), () => failures.push('toggle did not turn completions back on'));

    // a server that goes away: one non-modal notice, the status bar says offline, no more notices while typing
    if (process.env.SERVER_PID) {
      process.kill(Number(process.env.SERVER_PID), 'SIGTERM');
      for (let i = 0; i < 50; i++) { try { await fetch(`${API}/health`); await sleep(100); } catch { break; } }
      await editor.click();
      await page.keyboard.press('Control+End');
      await page.keyboard.type('x = len(', { delay: 60 });
      await page.waitForFunction(() => [...document.querySelectorAll('.statusbar-item')].some((e) => /PyAC offline/.test(e.textContent)), null, { timeout: 20000 })
        .then(() => lap('server stopped: status bar says offline'), () => failures.push('status bar did not say offline after the server stopped'));
      await page.keyboard.type('paths) + 1', { delay: 60 });
      await sleep(1500);
      const n = await toasts();
      lap(`server stopped: ${n} notification(s): ${JSON.stringify(await page.evaluate(() => [...document.querySelectorAll('.notification-toast')].map((e) => e.textContent.slice(0, 160))))}`);
      if (n !== 1) failures.push(`expected exactly one notice about the server being down, saw ${n}`);
      await page.screenshot({ path: `${SHOTS}/${String(step++).padStart(2, '0')}_server_down.png` });
    }
  } catch (e) {
    failures.push(`error: ${e.stack || e}`);
    await page.screenshot({ path: `${SHOTS}/99_error.png` }).catch(() => undefined);
  } finally {
    await ctx.close();
  }
  if (latencies.length) {
    const sorted = [...latencies].sort((a, b) => a - b);
    console.log(`keystroke -> ghost text latency (ms, debounce 150 ms included): ${latencies.map((x) => x.toFixed(0)).join(', ')}; median ${sorted[Math.floor(sorted.length / 2)].toFixed(0)}`);
    fs.writeFileSync(`${SHOTS}/latency.json`, JSON.stringify({ latencies_ms: latencies, scenarios: SCENARIOS.map((s) => s.name) }, null, 1));
  }
  fs.writeFileSync(`${SHOTS}/final_main.py`, fs.readFileSync(FILE, 'utf8'));
  for (const f of failures) console.log('  FAIL ' + f);
  console.log(failures.length ? 'RESULT: FAIL' : 'RESULT: PASS');
  process.exit(failures.length ? 1 : 0);
})().catch((e) => { console.error('FATAL', e); process.exit(2); });
