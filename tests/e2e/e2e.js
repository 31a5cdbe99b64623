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

// Candidate lines, typed at the start of a new last line. What the model suggests is the model's business:
// a line where it suggests nothing (the extension logs shown=null) is skipped; at least MIN_ACCEPTED must give
// ghost text. `autoClosed` is what VS Code's bracket/quote auto-closing leaves after the cursor (the suffix).
const INLINE = [
  { name: 'call', typed: 'files = list_python_', autoClosed: '' },
  { name: 'nested-call', typed: 'print(len(', autoClosed: '))' },
  { name: 'for-loop', typed: 'for path in ', autoClosed: '' },
  { name: 'attribute', typed: 'name = os.path.', autoClosed: '' },
  { name: 'sorted-call', typed: 'paths = sorted(', autoClosed: ')' },
  { name: 'main-guard', typed: 'if __name__ == ', autoClosed: '' },
  { name: 'import', typed: 'import ', autoClosed: '' },
  { name: 'string-arg', typed: 'print("', autoClosed: '")' },
  { name: 'raise', typed: 'raise ValueError(', autoClosed: ')' },
  { name: 'with-open', typed: 'with open(', autoClosed: ')' },
  { name: 'return', typed: 'return ', autoClosed: '' },
];
// the list is asked for on the provider's trigger characters (quick suggestions are off in this test)
const LIST = [{ typed: 'y = os.', autoClosed: '' }, { typed: 'z = sys.', autoClosed: '' }, ...INLINE]
  .filter((c) => '.([, '.includes(c.typed.slice(-1)));
const WANT_ACCEPTED = 3;
const MIN_ACCEPTED = 2;

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

const logLines = () => {
  const log = findOutputLog();
  return log ? fs.readFileSync(log, 'utf8').split('\n').filter((l) => l !== '') : [];
};

/** The last line of the extension's log after line `from` matching `re` (polled: the output channel reaches
 *  its file with a delay). */
async function logLine(re, timeoutMs = 10000, from = 0) {
  for (let waited = 0; waited <= timeoutMs; waited += 100) {
    const m = logLines().slice(from).map((l) => l.match(re)).filter(Boolean).pop();
    if (m) return m;
    await sleep(100);
  }
  return null;
}

async function askServer(prompt, suffix) {
  const res = await fetch(`${API}/autocomplete`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ prompt, suffix, max_suggestions: 3 }),
  });
  return res.json();
}

/** The log's length once it has stopped growing for 500 ms (output reaches the file with a delay), so
 *  that lines logged before this point are never taken for answers to what is typed next. */
async function settledLogLength() {
  let n = logLines().length;
  for (let still = 0, i = 0; still < 5 && i < 50; i++) {
    await sleep(100);
    const m = logLines().length;
    still = m === n ? still + 1 : 0;
    n = m;
  }
  return n;
}

/** Ctrl+S, then read the file until it is `expected` (VS Code writes it a moment later); returns the last read. */
async function saveAndCheck(page, expected) {
  await page.keyboard.press('Control+S');
  let disk = '';
  for (let i = 0; i < 50; i++) {
    await sleep(100);
    disk = fs.readFileSync(FILE, 'utf8');
    if (disk === expected) break;
  }
  return disk;
}

/** Remove the typed line again (autoIndent is off: the line starts at column 1). */
async function clearLine(page) {
  await page.keyboard.press('Escape');
  await page.keyboard.press('Shift+Home');
  await page.keyboard.press('Backspace');
  await page.keyboard.press('Shift+End');
  await page.keyboard.press('Delete');
}

(async () => {
  const ctx = await chromium.launchPersistentContext(CHROME, {
    executablePath: '/usr/bin/chromium', headless: true, viewport: { width: 1400, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const failures = [];
  const latencies = [];
  let step = 1;
  const shot = (name) => page.screenshot({ path: `${SHOTS}/${String(step++).padStart(2, '0')}_${name}.png` });
  const page = ctx.pages()[0] || (await ctx.newPage());
  const statusText = () => page.evaluate(() => [...document.querySelectorAll('.statusbar-item')].map((e) => e.textContent).find((t) => /PyAC/.test(t)) || '');
  const statusIs = (re, timeout) => page.waitForFunction((src) => [...document.querySelectorAll('.statusbar-item')].some((e) => new RegExp(src).test(e.textContent)), re.source, { timeout }).then(() => true, () => false);
  const toasts = () => page.evaluate(() => [...document.querySelectorAll('.notification-toast')].filter((e) => /Python Autocomplete/.test(e.textContent)).map((e) => (e.querySelector('.notification-list-item-message') || e).textContent.slice(0, 200)));
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
    // the extension activates on the python file; its status bar item appears and checks /health
    if (!(await statusIs(/PyAC/, 30000))) throw new Error('the extension did not activate (no status bar item)');
    lap(`main.py open, extension active, status bar ${JSON.stringify(await statusText())}`);
    await shot('opened');

    // latency probe, in the page's own clock: last keydown -> first ghost text in the DOM after it
    await page.evaluate((sel) => {
      window.__probe = { lastKey: 0, ghostAt: 0 };
      document.addEventListener('keydown', () => { window.__probe.lastKey = performance.now(); window.__probe.ghostAt = 0; }, true);
      const visible = () => [...document.querySelectorAll(sel)].some((e) => e.textContent.replace(/\u00a0/g, ' ').trim() !== '');
      new MutationObserver(() => {
        if (window.__probe.lastKey && !window.__probe.ghostAt && visible()) window.__probe.ghostAt = performance.now();
      }).observe(document.body, { childList: true, subtree: true, characterData: true });
    }, GHOST);

    // 1) inline: type, ghost text, Tab, save, compare the file with typed + accepted
    let accepted = 0;
    let doc = fs.readFileSync(FILE, 'utf8'); // what the editor holds (saved, ends with an empty line)
    for (const sc of INLINE) {
      if (accepted >= WANT_ACCEPTED) break;
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+End');
      const before = doc; // the document before this line (it ends with an empty last line)
      const logFrom = await settledLogLength(); // only read what this line adds to the log
      await page.keyboard.type(sc.typed, { delay: 60 });
      const docText = before + sc.typed;
      const lines = docText.split('\n');
      const where = `${lines.length}:${lines[lines.length - 1].length + 1}`;
      const answer = await logLine(new RegExp(`inline at ${where} shown=(.*) replace=(\\d+)$`), 30000, logFrom);
      if (!answer) {
        await shot(`${sc.name}_no_answer`);
        failures.push(`${sc.name}: the extension logged no answer at ${where} within 30 s`);
        break;
      }
      const shown = { text: JSON.parse(answer[1]), replace: Number(answer[2]) };
      if (shown.text === null) {
        lap(`${sc.name}: typed ${JSON.stringify(sc.typed)}: the model suggests nothing here, next line`);
        await clearLine(page);
        continue;
      }
      const ok = await page.waitForFunction(() => window.__probe.ghostAt > 0, null, { timeout: 10000 }).then(() => true, () => false);
      if (!ok) {
        await shot(`${sc.name}_no_ghost`);
        failures.push(`${sc.name}: the extension returned ${JSON.stringify(shown.text)} but no ghost text appeared`);
        break;
      }
      const ms = await page.evaluate(() => window.__probe.ghostAt - window.__probe.lastKey);
      // the round trip of the request behind this ghost text (the last response logged before the answer line)
      const fresh = logLines().slice(logFrom);
      const at = fresh.findLastIndex((l) => l.includes(`inline at ${where} `));
      const rt = fresh.slice(0, at < 0 ? fresh.length : at).map((l) => l.match(/ server_ms=([\d.]+) latency_ms=([\d.]+)/)).filter(Boolean).pop();
      latencies.push({ name: sc.name, ghost_ms: ms, request_ms: rt ? Number(rt[2]) : null, server_ms: rt ? Number(rt[1]) : null });
      const ghostDom = await page.evaluate((sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent.replace(/\u00a0/g, ' ')).join('|'), GHOST);
      await shot(`${sc.name}_ghost`);
      lap(`${sc.name}: typed ${JSON.stringify(sc.typed)} -> ghost ${JSON.stringify(shown.text)} (replaces ${shown.replace} char(s) after the cursor) ${ms.toFixed(0)} ms after the last key; DOM: ${JSON.stringify(ghostDom)}`);

      // the same request straight to the server: its best non-empty answer (trailing whitespace trimmed) is what was shown
      const prompt = lines.slice(Math.max(0, lines.length - 1 - CONTEXT_LINES)).join('\n');
      const direct = await askServer(prompt, sc.autoClosed);
      const best = (direct.prediction || []).map((p) => p.replace(/\s+$/u, '')).find((p) => p.length > 0);
      if (best !== shown.text) failures.push(`${sc.name}: the server answers ${JSON.stringify(direct.prediction)} but the extension showed ${JSON.stringify(shown.text)}`);

      await page.keyboard.press('Tab');
      await sleep(300);
      await page.keyboard.press('Escape');
      const expected = docText + shown.text + sc.autoClosed.slice(shown.replace);
      const after = await saveAndCheck(page, expected);
      await shot(`${sc.name}_accepted`);
      if (after !== expected) {
        failures.push(`${sc.name}: file on disk ends with ${JSON.stringify(after.slice(before.length))}, expected ${JSON.stringify(expected.slice(before.length))}`);
        break;
      }
      lap(`${sc.name}: saved line is ${JSON.stringify(after.slice(before.length))}`);
      accepted++;
      await page.keyboard.press('End');
      await page.keyboard.press('Enter'); // next line (autoIndent is off, so it starts at column 1)
      doc = expected + '\n';
    }
    if (accepted < MIN_ACCEPTED && !failures.length) failures.push(`only ${accepted} line(s) got ghost text; need ${MIN_ACCEPTED}`);

    const status = await statusText();
    lap(`status bar: ${JSON.stringify(status)}`);
    if (!/PyAC \d+ ms/.test(status)) failures.push(`status bar does not show a latency: ${JSON.stringify(status)}`);
    await shot('inline_done');
    if ((await toasts()).length) failures.push(`a notification appeared while the server was up: ${await toasts()}`);

    // 2) toggle: clicking the status bar item runs pythonAutocomplete.toggle (off, then on again)
    const item = page.locator('.statusbar-item', { hasText: 'PyAC' }).first();
    await item.click();
    if (await statusIs(/PyAC off/, 10000)) lap('toggle: status bar says off'); else failures.push('toggle did not turn completions off');
    await item.click();
    if (await statusIs(/PyAC(?! off)/, 10000)) lap('toggle: back on'); else failures.push('toggle did not turn completions back on');

    // 3) list mode: switch to "both" with the extension's command (command palette, quick pick), type a
    //    trigger character, accept the first entry of the suggestion list with Enter
    await page.keyboard.press('Control+Shift+P');
    await page.waitForSelector('.quick-input-widget input', { state: 'visible', timeout: 20000 });
    await page.keyboard.type('Python Autocomplete: Choose How');
    await page.waitForSelector('.quick-input-list .monaco-list-row[aria-label*="Choose How"]', { timeout: 20000 });
    await page.keyboard.press('Enter');
    await page.waitForSelector('.quick-input-list .monaco-list-row[aria-label*="both"]', { timeout: 20000 });
    await page.keyboard.type('both');
    await page.keyboard.press('Enter');
    if (!(await logLine(/settings changed: .*"mode":"both"/))) failures.push('choosing mode "both" did not change the setting');
    await editor.click();
    let listDone = false;
    for (const { typed, autoClosed } of LIST) {
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+End');
      const before = doc;
      const logFrom = await settledLogLength();
      await page.keyboard.type(typed, { delay: 60 });
      const lines = (before + typed).split('\n');
      const where = `${lines.length}:${lines[lines.length - 1].length + 1}`;
      const m = await logLine(new RegExp(`list at ${where} items=(\\[.*\\]) replace=(\\d+)$`), 15000, logFrom);
      const texts = m ? JSON.parse(m[1]) : [];
      const replace = m ? Number(m[2]) : 0;
      if (!texts.length) {
        lap(`list: typed ${JSON.stringify(typed)}: ${m ? 'the model suggests nothing here' : 'no list request logged'}, next line`);
        await clearLine(page);
        continue;
      }
      const label = texts[0].split('\n')[0];
      const rows = await page.waitForFunction((l) => {
        const rs = [...document.querySelectorAll('.suggest-widget .monaco-list-row')];
        return rs.some((r) => (r.getAttribute('aria-label') || '').includes(l)) && rs.map((r) => r.getAttribute('aria-label'));
      }, label, { timeout: 15000 }).then((h) => h.jsonValue(), () => null);
      await shot('list');
      lap(`list: typed ${JSON.stringify(typed)} -> extension items ${JSON.stringify(texts)}; suggest widget rows ${JSON.stringify(rows)}`);
      if (!rows) { failures.push(`list: the suggest widget has no row for ${JSON.stringify(label)}`); break; }
      await page.keyboard.press('Enter');
      await sleep(300);
      await page.keyboard.press('Escape');
      const expected = before + typed + texts[0] + autoClosed.slice(replace);
      const after = await saveAndCheck(page, expected);
      if (after !== expected) failures.push(`list: file ends with ${JSON.stringify(after.slice(before.length))}, expected ${JSON.stringify(expected.slice(before.length))}`);
      else lap(`list: saved line is ${JSON.stringify(after.slice(before.length))}`);
      listDone = true;
      await page.keyboard.press('End');
      await page.keyboard.press('Enter');
      doc = expected + '\n';
      break;
    }
    if (!listDone && !failures.some((f) => f.startsWith('list'))) failures.push('list: no candidate line got list entries');

    // 4) the server goes away: one non-modal notice, the status bar says offline, no more notices while typing
    if (process.env.SERVER_PID) {
      process.kill(Number(process.env.SERVER_PID), 'SIGTERM');
      for (let i = 0; i < 50; i++) { try { await fetch(`${API}/health`); await sleep(100); } catch { break; } }
      await editor.click();
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+End');
      await page.keyboard.type('x = len(', { delay: 60 });
      if (await statusIs(/PyAC offline/, 20000)) lap('server stopped: status bar says offline'); else failures.push('status bar did not say offline after the server stopped');
      await page.keyboard.type('paths) + 1', { delay: 60 });
      await sleep(1500);
      const notes = await toasts();
      lap(`server stopped: ${notes.length} notification(s): ${JSON.stringify(notes)}`);
      if (notes.length !== 1) failures.push(`expected exactly one notice about the server being down, saw ${notes.length}`);
      await shot('server_down');
    }
  } catch (e) {
    failures.push(`error: ${e.stack || e}`);
    await shot('error').catch(() => undefined);
  } finally {
    await ctx.close();
  }
  if (latencies.length) {
    const median = (xs) => { const v = xs.filter((x) => x !== null).sort((a, b) => a - b); return v.length ? v[Math.floor(v.length / 2)].toFixed(0) : '-'; };
    console.log('keystroke -> ghost text latency (ms; the ghost time includes the 150 ms debounce):');
    console.log('| line | keystroke -> ghost text | request round trip | server time |');
    console.log('|---|---|---|---|');
    for (const l of latencies) console.log(`| ${l.name} | ${l.ghost_ms.toFixed(0)} | ${l.request_ms ?? 'cache'} | ${l.server_ms ?? '-'} |`);
    console.log(`| median | ${median(latencies.map((l) => l.ghost_ms))} | ${median(latencies.map((l) => l.request_ms))} | ${median(latencies.map((l) => l.server_ms))} |`);
    fs.writeFileSync(`${SHOTS}/latency.json`, JSON.stringify(latencies, null, 1));
  }
  fs.writeFileSync(`${SHOTS}/final_main.py`, fs.readFileSync(FILE, 'utf8'));
  for (const f of failures) console.log('  FAIL ' + f);
  console.log(failures.length ? 'RESULT: FAIL' : 'RESULT: PASS');
  process.exit(failures.length ? 1 : 0);
})().catch((e) => { console.error('FATAL', e); process.exit(2); });
