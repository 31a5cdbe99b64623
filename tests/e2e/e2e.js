// Browser half of the e2e test (run by run.sh): drive code-server in headless chromium, type Python, wait for
// ghost text from the real server, accept it with Tab, save, and check the file on disk.
// Env: CS_PORT (code-server), API (completion server URL), PROXY_PORT (the extension's serverUrl: a recording
// proxy to API started here), WS (workspace with main.py and billing.py), UD (VS Code user data, for the
// extension's output-channel log), CHROME (browser profile dir), SHOTS (screenshots/report dir),
// SERVER_PID (optional: the test stops that server at the end to check the quiet offline behaviour),
// SERVED_MODEL and NEXT_MODEL (optional: the server's --model file, and a model the test renames over it).
const { chromium } = require('playwright-core');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');

const { CS_PORT, API, API_TOKEN, PROXY_PORT, WS, UD, CHROME, SHOTS } = process.env;
const AUTH = { Authorization: `Bearer ${API_TOKEN}` }; // the server takes this person's token (run.sh --tokens-file)
const FILE = path.join(WS, 'main.py');
const BILLING = fs.readFileSync(path.join(WS, 'billing.py'), 'utf8');
const BILLING_EDIT = 'UNSAVED_LIMIT = 3'; // typed into billing.py's tab (1b) and never saved
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
// Project context: billing.py (defines normalise_invoice_total) is in the workspace (1a, read from disk) and then
// open in another tab (1b, its editor's text); typing a prefix of the name in main.py must be completed from it:
// the extension sends billing.py as input_extra, and not generated/schema_pb2.py, which the workspace's .gitignore
// leaves out.
const PROJECT = { name: 'project-context', typed: 'total = normalise_inv', want: 'oice_total', autoClosed: '' };
// Fill in the middle: typed on a new line 2, above `import sys`; `lines` is pythonAutocomplete.suffixLines' default
// (the document is far shorter than its 16K characters: the suffix is the rest of the file).
const FIM = { name: 'fill-in-the-middle', typed: 'import s', lines: 1000 };
// A notebook (run.sh writes both): typed in analysis.ipynb's last, empty, code cell. The prompt is the notebook's
// code cells above as one module (notebook.ts: `# %%` per cell, the markdown cell left out, the IPython line a
// comment); input_extra carries report.ipynb, never opened, as its code cells (not its JSON and plot), where
// summarise_quarterly_refund_ledger is defined: the name must complete (and does not without it). Saved, the
// notebook's last cell holds it. The %%bash cell above it is shell: a comment in the module, and typing in it
// sends no request (notebook.ts pythonBody).
const NOTEBOOK = {
  name: 'notebook', file: 'analysis.ipynb', typed: 'summary = summarise_quarterly_re', want: 'fund_ledger',
  above: '# %%\nimport pandas as pd\nfrom billing import normalise_invoice_total\n\n# %%\nsales = pd.read_csv("sales.csv")\n'
    + '# %matplotlib inline\n\n# %%\n# %%bash\n# ls data\n\n# %%\n',
  report: '# %%\ndef summarise_quarterly_refund_ledger(frame):\n    return frame.groupby("quarter").revenue.sum()\n',
};
// Edit inside a line: the line `head + rest` is typed at the end, the cursor goes back before `rest`, `typed` is
// typed there. No suggestion may run into the rest of the line (the engine's stop rule and repeat trim).
const INSIDE = { name: 'inside-a-line', head: 'with open(path', rest: ') as f:', typed: ', ' };
// Accept the next word (Ctrl+Right, VS Code's editor.action.inlineSuggest.acceptNextWord): typed at the end of
// main.py; the suggestion must be of more than one word. The first word goes in, the rest stays shown (the editor
// asks again and the extension answers from its cache), Tab takes the rest. `python -m evaluate --accept-words`
// measures this typist (docs/extension.md "Word by word").
const NEXT_WORD = { name: 'accept-next-word', typed: 'stem = os.path.', autoClosed: '' };
// VS Code's next word (its acceptNextWord with the default word definition, which Python's configuration keeps):
// a word at the start, else what comes before the next word, never past the first run of blanks.
const WORD = /(-?\d*\.\d\w*)|([^`~!@#$%^&*()\-=+[{\]}\\|;:'",.<>/?\s]+)/;
function nextWordEnd(text) {
  const m = text.match(WORD);
  let end = m ? (m.index === 0 ? m[0].length : m.index) : text.length;
  const blanks = /\s+/.exec(text);
  if (blanks && blanks.index + blanks[0].length < end) end = blanks.index + blanks[0].length;
  return end;
}

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
    method: 'POST', headers: { 'Content-Type': 'application/json', ...AUTH },
    body: JSON.stringify({ prompt, suffix, max_suggestions: 3 }),
  });
  return res.json();
}

// The extension's serverUrl is this proxy: it forwards everything to the real server and records each
// /autocomplete request body and the answer the extension received (a request the extension aborted
// is aborted upstream too, and recorded without an answer).
const exchanges = [];
const events = []; // the bodies of the extension's POST /v1/events (suggestion events: view, select)
function startProxy() {
  const up = new URL(API);
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const body = [];
    req.on('data', (c) => body.push(c));
    req.on('end', () => {
      const buf = Buffer.concat(body);
      const ex = { url: req.url, request: null, response: null, delivered: false, clientId: req.headers['x-client-id'],
        auth: req.headers.authorization };
      if (req.url === '/autocomplete') {
        try { ex.request = JSON.parse(buf.toString('utf8')); } catch { /* recorded as null */ }
        exchanges.push(ex);
      }
      if (req.url === '/v1/events') {
        try { events.push(JSON.parse(buf.toString('utf8'))); } catch { events.push(null); }
      }
      const fwd = http.request({ host: up.hostname, port: up.port, path: req.url, method: req.method, headers: { ...req.headers, host: up.host } }, (pres) => {
        const out = [];
        pres.on('data', (c) => out.push(c));
        pres.on('end', () => {
          const rb = Buffer.concat(out);
          try { ex.response = JSON.parse(rb.toString('utf8')); } catch { /* not JSON */ }
          if (res.destroyed) return;
          const headers = { ...pres.headers };
          delete headers['transfer-encoding'];
          headers['content-length'] = String(rb.length);
          res.writeHead(pres.statusCode, headers);
          res.end(rb);
          ex.delivered = true;
        });
      });
      fwd.on('error', () => res.destroy()); // the server is gone: the connection drops for the extension too
      res.on('close', () => { if (!res.writableFinished) fwd.destroy(); });
      fwd.end(buf);
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  return new Promise((resolve) => server.listen(Number(PROXY_PORT), '127.0.0.1', () => resolve({
    close: () => new Promise((r) => { server.close(() => r()); for (const s of sockets) s.destroy(); }),
  })));
}

/** The exchange behind ghost text shown for `docText` (the text before the cursor) with `suffix`: the last
 *  answered request since exchange `from` whose prompt is `docText` or a start of it on the same line (the
 *  extension serves typed-through text from its cache); with what was typed since and the best remainder. */
function answeredExchange(from, docText, suffix) {
  for (let i = exchanges.length - 1; i >= from; i--) {
    const ex = exchanges[i];
    if (!ex.delivered || !ex.request || ex.response?.success !== true || ex.request.suffix !== suffix) continue;
    const p = ex.request.prompt;
    if (typeof p !== 'string' || !docText.startsWith(p) || docText.slice(p.length).includes('\n')) continue;
    const typed = docText.slice(p.length);
    // the extension's trimTrailingWhitespace: a trailing line break always; trailing blanks only before code
    const trim = (t) => (suffix.split('\n')[0].trim() === '' ? t.replace(/\s*\n\s*$/u, '') : t.replace(/\s+$/u, ''));
    const best = (ex.response.prediction || []).filter((t) => t.length > typed.length && t.startsWith(typed))
      .map((t) => trim(t.slice(typed.length))).find((t) => t.length > 0);
    return { ex, typed, best };
  }
  return null;
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
  const proxy = await startProxy();
  const failures = [];
  const latencies = [];
  let step = 1;
  const shot = (name) => page.screenshot({ path: `${SHOTS}/${String(step++).padStart(2, '0')}_${name}.png` });
  const page = ctx.pages()[0] || (await ctx.newPage());
  const statusText = () => page.evaluate(() => [...document.querySelectorAll('.statusbar-item')].map((e) => e.textContent).find((t) => /PyAC/.test(t)) || '');
  const statusIs = (re, timeout) => page.waitForFunction((src) => [...document.querySelectorAll('.statusbar-item')].some((e) => new RegExp(src).test(e.textContent)), re.source, { timeout }).then(() => true, () => false);
  const toasts = () => page.evaluate(() => [...document.querySelectorAll('.notification-toast')].filter((e) => /Python Autocomplete/.test(e.textContent)).map((e) => (e.querySelector('.notification-list-item-message') || e).textContent.slice(0, 200)));
  // run one of the extension's commands from the command palette, by its title after "Python Autocomplete: "
  const startCommand = async (title) => {
    await page.keyboard.press('Control+Shift+P');
    await page.waitForSelector('.quick-input-widget input', { state: 'visible', timeout: 20000 });
    await page.keyboard.type(`Python Autocomplete: ${title}`);
    await page.waitForSelector(`.quick-input-list .monaco-list-row[aria-label*="${title}"]`, { timeout: 20000 });
    await page.keyboard.press('Enter');
  };
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

    // 0) the API token, as a user of a team's server sets it: the command "Set API Token", a password box; kept in
    //    VS Code's secret storage, never in a settings file (checked at the end)
    await startCommand('Set API Token');
    await page.waitForSelector('.quick-input-widget input[type="password"]', { state: 'visible', timeout: 20000 });
    await page.keyboard.type(API_TOKEN);
    await page.keyboard.press('Enter');
    if (!(await logLine(/api token stored in secret storage/, 10000))) throw new Error('"Set API Token" did not store the token');
    lap('API token set with "Set API Token"');
    await editor.click();

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
      const exFrom = exchanges.length;
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

      // what the extension sent and got: the prompt is the whole text before the cursor (main.py is far below
      // promptMaxChars), the suffix the rest of the line; the server's best non-empty answer is what was shown
      const got = answeredExchange(exFrom, docText, sc.autoClosed);
      if (!got) failures.push(`${sc.name}: no answered request whose prompt is the text before the cursor (${exchanges.length - exFrom} recorded)`);
      else {
        if (!got.ex.request.prompt.startsWith('import os\nimport sys\n')) failures.push(`${sc.name}: the prompt is not the whole text before the cursor: ${JSON.stringify(got.ex.request.prompt.slice(0, 80))}…`);
        if (got.best !== shown.text) failures.push(`${sc.name}: the server answered ${JSON.stringify(got.ex.response.prediction)} (typed since: ${JSON.stringify(got.typed)}) but the extension showed ${JSON.stringify(shown.text)}`);
      }

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
      // the suggestion events: the answer behind the ghost text was reported viewed, and its accept as select
      if (got) {
        const id = got.ex.response.id;
        const reported = (type) => events.some((e) => e?.type === type && e.completion_id === id);
        const until = Date.now() + 5000;
        while (!(reported('view') && reported('select')) && Date.now() < until) await sleep(100);
        if (!reported('view') || !reported('select')) failures.push(`${sc.name}: the extension reported ${JSON.stringify(events.filter((e) => e?.completion_id === id))} for answer ${id}; expected a view and a select`);
      }
      accepted++;
      await page.keyboard.press('End');
      await page.keyboard.press('Enter'); // next line (autoIndent is off, so it starts at column 1)
      doc = expected + '\n';
    }
    if (accepted < MIN_ACCEPTED && !failures.length) failures.push(`only ${accepted} line(s) got ghost text; need ${MIN_ACCEPTED}`);

    // 1a) workspace context: billing.py is in main.py's folder but not open; the extension reads it from disk
    //     (pythonAutocomplete.workspaceContext, on by default) and sends it: the name completes with no tab open.
    //     The line is removed again (its name in the prompt would let 1b's control complete it without input_extra).
    /** Type `typed` at the end of main.py (whose text is `before`); the extension's answer for that position
     *  ({text, replace}, or null when none was logged), the server exchange behind it and its input_extra. */
    const typeAtEnd = async (before, typed, autoClosed) => {
      const logFrom = await settledLogLength();
      const exFrom = exchanges.length;
      await page.keyboard.type(typed, { delay: 60 });
      const docText = before + typed;
      const lines = docText.split('\n');
      const where = `${lines.length}:${lines[lines.length - 1].length + 1}`;
      const answer = await logLine(new RegExp(`inline at ${where} shown=(.*) replace=(\\d+)$`), 30000, logFrom);
      const shown = answer ? { text: JSON.parse(answer[1]), replace: Number(answer[2]) } : null;
      const got = answeredExchange(exFrom, docText, autoClosed);
      return { docText, logFrom, exFrom, shown, got, sent: got ? got.ex.request.input_extra || [] : [] };
    };

    // run one of the extension's commands (startCommand) and pick `item` in its quick pick; returns the quick
    // pick's rows as offered
    const runCommand = async (title, item) => {
      await startCommand(title);
      await page.waitForSelector(`.quick-input-list .monaco-list-row[aria-label*="${item}"]`, { timeout: 20000 });
      const rows = await page.$$eval('.quick-input-list .monaco-list-row', (els) => els.map((e) => e.getAttribute('aria-label')));
      await page.keyboard.type(item);
      await page.keyboard.press('Enter');
      return rows;
    };

    // quick open; Enter only once the focused row is the file (the list of recent files shows first and is
    // re-filtered as the name is typed); tried twice, as a key can land while the list is replaced. `where`: the
    // editors' lines that show `marker` once it is open (a notebook's cells are not in an .editor-instance)
    const openFile = async (name, marker, where = '.editor-instance .view-lines') => {
      for (let attempt = 1; ; attempt++) {
        await page.keyboard.press('Escape');
        await page.keyboard.press('Control+P');
        await page.waitForSelector('.quick-input-widget input', { state: 'visible', timeout: 20000 });
        await page.keyboard.type(name);
        await page.waitForSelector(`.quick-input-list .monaco-list-row.focused[aria-label*="${name}"]`, { timeout: 20000 });
        await page.keyboard.press('Enter');
        const shown = await page.waitForFunction(([sel, m]) => [...document.querySelectorAll(sel)].some((e) => e.textContent.replace(/\u00a0/g, ' ').includes(m)), [where, marker], { timeout: 10000 }).then(() => true, () => false);
        if (shown) return;
        if (attempt === 2) throw new Error(`quick open did not show ${name}`);
      }
    };

    if (!failures.length) {
      const name = 'workspace-context';
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+End');
      const { exFrom, shown: answer, got, sent } = await typeAtEnd(doc, PROJECT.typed, PROJECT.autoClosed);
      const shown = answer?.text;
      const tabs = await page.evaluate(() => [...document.querySelectorAll('.tabs-container .tab')].map((t) => t.getAttribute('aria-label')));
      lap(`${name}: tabs ${JSON.stringify(tabs)}; typed ${JSON.stringify(PROJECT.typed)} -> ghost ${JSON.stringify(shown)}; input_extra ${JSON.stringify(sent.map((c) => `${c.filename} (${c.text.length} chars)`))}`);
      await shot(`${name}_ghost`);
      if (tabs.some((t) => (t || '').includes('billing.py'))) failures.push(`${name}: billing.py is open already: ${JSON.stringify(tabs)}`);
      if (!got) failures.push(`${name}: no answered request for the typed text (${exchanges.length - exFrom} recorded)`);
      else if (!sent.some((c) => c.filename === 'billing.py' && c.text === BILLING)) failures.push(`${name}: input_extra does not carry billing.py from disk: ${JSON.stringify(sent.map((c) => c.filename))}`);
      if (fs.existsSync(path.join(WS, '.git')) && sent.some((c) => c.filename.startsWith('generated/'))) failures.push(`${name}: input_extra carries generated/schema_pb2.py, which the workspace's .gitignore leaves out: ${JSON.stringify(sent.map((c) => c.filename))}`);
      if (typeof shown !== 'string' || !shown.startsWith(PROJECT.want)) failures.push(`${name}: expected ghost text starting with ${JSON.stringify(PROJECT.want)}, the extension showed ${JSON.stringify(shown ?? 'nothing')}`);
      await clearLine(page);
      const back = await saveAndCheck(page, doc);
      if (back !== doc) failures.push(`${name}: the file did not go back to what it was: ends ${JSON.stringify(back.slice(-60))}`);
    }

    // 1a') accept the next word, then the rest (NEXT_WORD)
    if (!failures.length) {
      const { name } = NEXT_WORD;
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+End');
      const { docText, shown: answer } = await typeAtEnd(doc, NEXT_WORD.typed, NEXT_WORD.autoClosed);
      const shown = answer?.text;
      const word = typeof shown === 'string' ? shown.slice(0, nextWordEnd(shown)) : '';
      const ghost = () => page.evaluate((sel) => [...document.querySelectorAll(sel)].map((e) => e.textContent.replace(/\u00a0/g, ' ')).join(''), GHOST);
      const visible = await page.waitForSelector(GHOST, { state: 'visible', timeout: 10000 }).then(() => true, () => false);
      if (!visible || typeof shown !== 'string' || !word || word === shown) {
        failures.push(`${name}: expected ghost text of more than one word after ${JSON.stringify(NEXT_WORD.typed)}, the extension showed ${JSON.stringify(shown ?? 'nothing')} (visible: ${visible})`);
      } else {
        await page.keyboard.press('Control+ArrowRight');
        const rest = shown.slice(word.length);
        const restShown = await page.waitForFunction(([sel, r]) => [...document.querySelectorAll(sel)].map((e) => e.textContent.replace(/\u00a0/g, ' ')).join('') === r, [GHOST, rest], { timeout: 5000 }).then(() => true, () => false);
        lap(`${name}: ghost ${JSON.stringify(shown)}; Ctrl+Right took ${JSON.stringify(word)}; then shown ${JSON.stringify(await ghost())}`);
        await shot(`${name}_after_word`);
        if (!restShown) failures.push(`${name}: after Ctrl+Right took ${JSON.stringify(word)} the ghost text is ${JSON.stringify(await ghost())}, expected the rest ${JSON.stringify(rest)}`);
        await page.keyboard.press('Tab');
        await sleep(300);
        await page.keyboard.press('Escape');
        const expected = docText + shown;
        const after = await saveAndCheck(page, expected);
        if (after !== expected) failures.push(`${name}: file on disk ends with ${JSON.stringify(after.slice(doc.length))}, expected ${JSON.stringify(expected.slice(doc.length))}`);
        else lap(`${name}: saved line is ${JSON.stringify(after.slice(doc.length))}`);
      }
      await clearLine(page);
      const back = await saveAndCheck(page, doc);
      if (back !== doc) failures.push(`${name}: the file did not go back to what it was: ends ${JSON.stringify(back.slice(-60))}`);
    }

    // 1b) project context: open billing.py in a second tab, go back to main.py, type a prefix of the name
    //     billing.py defines; the ghost text must complete it (only possible from input_extra), Tab, save
    if (!failures.length) {
      await openFile('billing.py', 'def normalise_invoice_total');
      // an unsaved line at its end: the request must carry the editor's text, not the file on disk
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+End');
      await page.keyboard.type(BILLING_EDIT, { delay: 20 });
      await page.keyboard.press('Escape');
      await shot('project_billing_open');
      await openFile('main.py', 'def list_python_files');
      const tabs = await page.evaluate(() => [...document.querySelectorAll('.tabs-container .tab')].map((t) => t.getAttribute('aria-label')));
      lap(`${PROJECT.name}: billing.py opened in another tab, back in main.py; tabs ${JSON.stringify(tabs)}`);
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+End');
      const before = doc;
      const { docText, logFrom, exFrom, shown, got, sent } = await typeAtEnd(before, PROJECT.typed, PROJECT.autoClosed);
      lap(`${PROJECT.name}: typed ${JSON.stringify(PROJECT.typed)} -> ghost ${JSON.stringify(shown?.text)}; the request carried a ${got ? got.ex.request.prompt.length : '?'}-char prompt and input_extra ${JSON.stringify(sent.map((c) => `${c.filename} (${c.text.length} chars)`))}`);
      if (!got) failures.push(`${PROJECT.name}: no answered request for the typed text (${exchanges.length - exFrom} recorded)`);
      else {
        if (!sent.some((c) => c.filename === 'billing.py' && c.text === BILLING + BILLING_EDIT)) failures.push(`${PROJECT.name}: input_extra does not carry billing.py's text as edited in its tab: ${JSON.stringify(sent.map((c) => `${c.filename}: ...${c.text.slice(-40)}`))}`);
        if (sent.some((c) => c.text === BILLING)) failures.push(`${PROJECT.name}: billing.py's text on disk was sent beside its open tab`);
        if (sent.some((c) => c.filename === 'main.py' && c.text.includes(PROJECT.typed))) failures.push(`${PROJECT.name}: the current file's live text was sent as input_extra`);
        // the control: without input_extra the server does not know the name (else this scenario proves nothing)
        const plain = await askServer(got.ex.request.prompt, PROJECT.autoClosed);
        lap(`${PROJECT.name}: the same prompt without input_extra -> ${JSON.stringify(plain.prediction)}; with it -> ${JSON.stringify(got.ex.response.prediction)}`);
        if ((plain.prediction || []).some((t) => t.startsWith(got.typed + PROJECT.want))) failures.push(`${PROJECT.name}: the server completes the name without input_extra too: the scenario proves nothing`);
      }
      if (!shown || shown.text === null || !shown.text.startsWith(PROJECT.want)) {
        await shot(`${PROJECT.name}_wrong`);
        failures.push(`${PROJECT.name}: expected ghost text starting with ${JSON.stringify(PROJECT.want)}, the extension showed ${JSON.stringify(shown?.text ?? 'nothing')}`);
        await clearLine(page); // the scenarios after this one start from the document as it was
      } else {
        const ok = await page.waitForFunction(() => window.__probe.ghostAt > 0, null, { timeout: 10000 }).then(() => true, () => false);
        if (!ok) failures.push(`${PROJECT.name}: the extension returned ${JSON.stringify(shown.text)} but no ghost text appeared`);
        else {
          const ms = await page.evaluate(() => window.__probe.ghostAt - window.__probe.lastKey);
          const rt = logLines().slice(logFrom).map((l) => l.match(/ server_ms=([\d.]+) latency_ms=([\d.]+)/)).filter(Boolean).pop();
          latencies.push({ name: PROJECT.name, ghost_ms: ms, request_ms: rt ? Number(rt[2]) : null, server_ms: rt ? Number(rt[1]) : null });
          await shot(`${PROJECT.name}_ghost`);
          await page.keyboard.press('Tab');
          await sleep(300);
          await page.keyboard.press('Escape');
          const expected = docText + shown.text + PROJECT.autoClosed.slice(shown.replace);
          const after = await saveAndCheck(page, expected);
          await shot(`${PROJECT.name}_accepted`);
          if (after !== expected) failures.push(`${PROJECT.name}: file on disk ends with ${JSON.stringify(after.slice(before.length))}, expected ${JSON.stringify(expected.slice(before.length))}`);
          else {
            lap(`${PROJECT.name}: saved line is ${JSON.stringify(after.slice(before.length))} (${ms.toFixed(0)} ms after the last key)`);
            await page.keyboard.press('End');
            await page.keyboard.press('Enter');
            doc = expected + '\n';
          }
        }
      }
    }

    // 1c) fill in the middle: on a new line typed above existing code, the request's suffix is the rest of the
    //     line and the next FIM_LINES lines, and the ghost text never makes the line repeat the next line
    //     (`import s` above `import sys`: a left-to-right model suggests `ys`). Nothing is accepted; the line
    //     is removed again and the file saved unchanged.
    if (!failures.length) {
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+Home');
      await page.keyboard.press('End');
      await page.keyboard.press('Enter'); // a new line 2 (autoIndent is off, so it starts at column 1)
      const docLines = doc.split('\n');
      const head = `${docLines[0]}\n`;
      const wantSuffix = '\n' + docLines.slice(1, 1 + FIM.lines).join('\n');
      const logFrom = await settledLogLength();
      const exFrom = exchanges.length;
      await page.keyboard.type(FIM.typed, { delay: 60 });
      const answer = await logLine(new RegExp(`inline at 2:${FIM.typed.length + 1} shown=(.*) replace=(\\d+)$`), 30000, logFrom);
      const shown = answer ? JSON.parse(answer[1]) : undefined;
      const got = answeredExchange(exFrom, head + FIM.typed, wantSuffix);
      const last = exchanges.slice(exFrom).pop();
      lap(`${FIM.name}: typed ${JSON.stringify(FIM.typed)} above ${JSON.stringify(docLines[1])}: suffix sent ${JSON.stringify(last?.request?.suffix?.slice(0, 60))}… (${last?.request?.suffix?.length} chars); server ${JSON.stringify(got?.ex.response.prediction)}; ghost ${JSON.stringify(shown)}`);
      if (!answer) failures.push(`${FIM.name}: the extension logged no answer at 2:${FIM.typed.length + 1} within 30 s`);
      if (!got) failures.push(`${FIM.name}: no answered request with the text before the cursor and the next ${FIM.lines} lines as suffix; the last one sent ${JSON.stringify(last?.request?.suffix)}`);
      if (typeof shown === 'string') {
        const lines = (FIM.typed + shown).split('\n');
        if (lines.some((l) => l.trim() === docLines[1].trim())) failures.push(`${FIM.name}: the ghost text ${JSON.stringify(shown)} repeats the next line ${JSON.stringify(docLines[1])}`);
      }
      await page.keyboard.press('Escape');
      await page.keyboard.press('Shift+Home');
      await page.keyboard.press('Backspace');
      await page.keyboard.press('Backspace'); // the empty line goes too
      const back = await saveAndCheck(page, doc);
      if (back !== doc) failures.push(`${FIM.name}: the file did not go back to what it was: starts ${JSON.stringify(back.slice(0, 40))}`);
    }

    // 1d) edit inside a line: `with open(path|) as f:`, type `, `: the request's suffix starts with the rest of the
    //     line `) as f:`, no suggestion of the server's would repeat it (the model alone offers `"rb") as f:`), and
    //     ghost text shown mid-line is accepted with Tab and saved with the rest after it, once. The line is
    //     removed again.
    if (!failures.length) {
      const name = INSIDE.name;
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+End');
      await page.keyboard.type(INSIDE.head, { delay: 20 }); // `(` auto-closes: `with open(path|)`
      await page.keyboard.press('Escape');
      await page.keyboard.press('End');
      await page.keyboard.type(INSIDE.rest.slice(1), { delay: 20 });
      await page.keyboard.press('Escape');
      for (let i = 0; i < INSIDE.rest.length; i++) await page.keyboard.press('ArrowLeft');
      const logFrom = await settledLogLength();
      const exFrom = exchanges.length;
      await page.keyboard.type(INSIDE.typed, { delay: 60 });
      const docText = doc + INSIDE.head + INSIDE.typed;
      const lines = docText.split('\n');
      const where = `${lines.length}:${lines[lines.length - 1].length + 1}`;
      const answer = await logLine(new RegExp(`inline at ${where} shown=(.*) replace=(\\d+)$`), 30000, logFrom);
      const shown = answer ? JSON.parse(answer[1]) : undefined;
      const got = answeredExchange(exFrom, docText, INSIDE.rest);
      await shot(`${name}_ghost`);
      lap(`${name}: typed ${JSON.stringify(INSIDE.typed)} before ${JSON.stringify(INSIDE.rest)}: server ${JSON.stringify(got?.ex.response.prediction)}; ghost ${JSON.stringify(shown)}`);
      if (!answer) failures.push(`${name}: the extension logged no answer at ${where} within 30 s`);
      if (!got) failures.push(`${name}: no answered request whose prompt ends with ${JSON.stringify(INSIDE.head + INSIDE.typed)} and whose suffix is ${JSON.stringify(INSIDE.rest)}`);
      else {
        // inserted, a suggestion must leave the line with its one ` as f:` and balanced brackets
        const count = (text, c) => text.split(c).length - 1;
        const runsIn = (t) => {
          const line = INSIDE.head + INSIDE.typed + t + INSIDE.rest;
          return count(line, ' as f:') !== 1 || count(line, '(') !== count(line, ')');
        };
        const repeats = (got.ex.response.prediction || []).filter(runsIn);
        if (repeats.length) failures.push(`${name}: the server offered ${JSON.stringify(repeats)}, which run into the rest of the line ${JSON.stringify(INSIDE.rest)}`);
      }
      if (typeof shown === 'string') {
        const ok = await page.waitForFunction(() => window.__probe.ghostAt > 0, null, { timeout: 10000 }).then(() => true, () => false);
        if (!ok) failures.push(`${name}: the extension returned ${JSON.stringify(shown)} but no ghost text appeared mid-line`);
        await page.keyboard.press('Tab');
        await sleep(300);
        await page.keyboard.press('Escape');
        const expected = docText + shown + INSIDE.rest;
        const after = await saveAndCheck(page, expected);
        await shot(`${name}_accepted`);
        if (after !== expected) failures.push(`${name}: file on disk ends with ${JSON.stringify(after.slice(doc.length))}, expected ${JSON.stringify(expected.slice(doc.length))}`);
        else lap(`${name}: saved line is ${JSON.stringify(after.slice(doc.length))}`);
      }
      await clearLine(page);
      const back = await saveAndCheck(page, doc);
      if (back !== doc) failures.push(`${name}: the file did not go back to what it was: ends ${JSON.stringify(back.slice(-60))}`);
    }

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
    await runCommand('Choose How', 'both');
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

    // 3b) a new model under the running server, renamed over its file as make train does: the server swaps it in
    // (serving/reload.py), its answers name it, and the extension notices, drops its cached answers and says which
    if (process.env.SERVED_MODEL && process.env.NEXT_MODEL) {
      const first = await logLine(/server model: (.*)$/, 10000);
      if (first) lap(`the extension names the served model: ${first[1]}`); else failures.push('the extension never logged the served model');
      const health = async () => (await fetch(`${API}/health`, { headers: AUTH })).json();
      const before = (await health()).model.sha256;
      const logFrom = await settledLogLength();
      fs.copyFileSync(process.env.NEXT_MODEL, `${process.env.SERVED_MODEL}.tmp`);
      fs.renameSync(`${process.env.SERVED_MODEL}.tmp`, process.env.SERVED_MODEL);
      let after = before;
      for (let i = 0; i < 300 && after === before; i++) { await sleep(100); after = (await health()).model.sha256; }
      if (after === before) failures.push('the server did not swap in the new model within 30 s');
      else lap(`server swapped its model: ${before} -> ${after}`);
      await editor.click();
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+End');
      await page.keyboard.type('count = len(', { delay: 60 });
      const changed = await logLine(/server model changed: (\w+) -> (\w+)/, 20000, logFrom);
      const named = await logLine(/server model: (.*)$/, 10000, logFrom);
      if (!changed || changed[2] !== after) failures.push(`the extension did not notice the new model ${after}: ${changed && changed[0]}`);
      else if (!named || !named[1].includes(after)) failures.push(`the extension did not name the new model: ${named && named[1]}`);
      else lap(`the extension noticed: "${changed[0]}", "${named[0]}"`);
      await clearLine(page);
    }

    // 3c) a notebook (NOTEBOOK above): the cell's prompt is the notebook, its context the project's files on disk
    if (!failures.length) {
      const name = NOTEBOOK.name;
      const cells = '.notebookOverlay .cell-editor-container .view-lines';
      await openFile(NOTEBOOK.file, 'sales = pd.read_csv', cells);
      await page.locator(cells).last().click(); // the last code cell, empty: in edit mode (Escape would leave it)
      const logFrom = await settledLogLength();
      const exFrom = exchanges.length;
      await page.keyboard.type(NOTEBOOK.typed, { delay: 60 });
      const answer = await logLine(new RegExp(`inline at 1:${NOTEBOOK.typed.length + 1} shown=(.*) replace=(\\d+)$`), 30000, logFrom);
      const shown = answer ? JSON.parse(answer[1]) : undefined;
      const got = answeredExchange(exFrom, NOTEBOOK.above + NOTEBOOK.typed, '');
      const sent = got ? got.ex.request.input_extra || [] : [];
      const last = exchanges.slice(exFrom).pop();
      await shot(`${name}_ghost`);
      lap(`${name}: typed ${JSON.stringify(NOTEBOOK.typed)} in ${NOTEBOOK.file}'s last cell -> ghost ${JSON.stringify(shown)}; prompt ${JSON.stringify(last?.request?.prompt)}; input_extra ${JSON.stringify(sent.map((c) => `${c.filename} (${c.text.length} chars)`))}`);
      if (!answer) failures.push(`${name}: the extension logged no answer at 1:${NOTEBOOK.typed.length + 1} within 30 s`);
      if (!got) failures.push(`${name}: no answered request whose prompt is the notebook's code above the cursor as one module; the last prompt sent ${JSON.stringify(last?.request?.prompt)}`);
      else {
        if (!sent.some((c) => c.filename === 'report.ipynb' && c.text === NOTEBOOK.report)) failures.push(`${name}: input_extra does not carry report.ipynb as its code cells: ${JSON.stringify(sent.map((c) => `${c.filename}: ${c.text.slice(0, 60)}`))}`);
        if (sent.some((c) => c.text.includes('iVBOR') || c.text.includes('"cell_type"'))) failures.push(`${name}: a notebook's JSON was sent as input_extra`);
        if (!sent.some((c) => c.filename === 'billing.py')) failures.push(`${name}: input_extra does not carry billing.py, which the notebook imports`);
        if (sent.some((c) => c.filename === NOTEBOOK.file)) failures.push(`${name}: the notebook's own cells were sent as input_extra beside its prompt`);
        // the control: without input_extra the server does not know the name (else this scenario proves nothing)
        const plain = await askServer(got.ex.request.prompt, '');
        lap(`${name}: the same prompt without input_extra -> ${JSON.stringify(plain.prediction)}; with it -> ${JSON.stringify(got.ex.response.prediction)}`);
        if ((plain.prediction || []).some((t) => t.startsWith(got.typed + NOTEBOOK.want))) failures.push(`${name}: the server completes the name without input_extra too: the scenario proves nothing`);
      }
      if (typeof shown !== 'string' || !shown.startsWith(NOTEBOOK.want)) failures.push(`${name}: expected ghost text starting with ${JSON.stringify(NOTEBOOK.want)}, the extension showed ${JSON.stringify(shown ?? 'nothing')}`);
      else {
        await page.keyboard.press('Tab');
        await sleep(300);
        await page.keyboard.press('Escape');
        await page.keyboard.press('Control+S');
        const file = path.join(WS, NOTEBOOK.file);
        const lastCell = () => { try { const c = JSON.parse(fs.readFileSync(file, 'utf8')).cells; return [].concat(c[c.length - 1].source).join(''); } catch { return null; } };
        let saved = null;
        for (let i = 0; i < 50 && saved !== NOTEBOOK.typed + shown; i++) { await sleep(100); saved = lastCell(); }
        await shot(`${name}_accepted`);
        if (saved !== NOTEBOOK.typed + shown) failures.push(`${name}: the saved notebook's last cell is ${JSON.stringify(saved)}, expected ${JSON.stringify(NOTEBOOK.typed + shown)}`);
        else lap(`${name}: saved cell is ${JSON.stringify(saved)}`);
      }
      // the %%bash cell: typed at its end, nothing is asked (the shell is not Python), then the typing is undone
      if (!failures.length) {
        const exBash = exchanges.length;
        await page.locator(cells).filter({ hasText: 'ls data' }).first().click();
        await page.keyboard.press('Control+End');
        await page.keyboard.type(' -l', { delay: 60 });
        await sleep(3000);
        const asked = exchanges.slice(exBash).filter((e) => (e.request?.prompt || '').includes('ls data -'));
        await shot(`${name}_bash_cell`);
        lap(`${name}: typed " -l" at the end of the %%bash cell -> ${asked.length} request(s) with it`);
        if (asked.length) failures.push(`${name}: typing in a %%bash cell sent ${asked.length} request(s): ${JSON.stringify(asked[0].request.prompt.slice(-80))}`);
        for (let i = 0; i < 3; i++) await page.keyboard.press('Backspace');
      }
      await openFile('main.py', 'def list_python_files'); // the steps below type in main.py's editor
      // the notebook, open in its tab, goes with main.py's requests as one chunk: its module, as make train reads it
      // (not one chunk per cell)
      if (!failures.length) {
        await page.keyboard.press('Escape');
        await page.keyboard.press('Control+End');
        const { got, sent: fromMain } = await typeAtEnd(doc, 'total = 1 + ', '');
        const cellsSent = fromMain.filter((c) => c.filename === NOTEBOOK.file);
        const want = NOTEBOOK.above + NOTEBOOK.typed + NOTEBOOK.want + '\n';
        lap(`${name}: back in main.py, input_extra ${JSON.stringify(fromMain.map((c) => `${c.filename} (${c.text.length} chars)`))}`);
        if (!got) failures.push(`${name}: no answered request from main.py after the notebook`);
        else if (cellsSent.length !== 1 || !cellsSent[0].text.startsWith(want.slice(0, -1))) failures.push(`${name}: the open notebook went with main.py's requests as ${cellsSent.length} chunk(s), not its module: ${JSON.stringify(cellsSent.map((c) => c.text))}`);
        await clearLine(page);
      }
    }

    // 3d) a model per project (serving/models.py): the command "Choose Model" lists the server's --models-dir models
    // (GET /models) and writes the pick, "proj", to the workspace's .vscode/settings.json; the extension's requests
    // carry it, that model answers (its own sha256), the extension drops its cached answers and names it; with the
    // setting removed from the file the server's default model answers again
    if (process.env.PROJECT_MODEL && !failures.length) {
      const want = crypto.createHash('sha256').update(fs.readFileSync(process.env.PROJECT_MODEL)).digest('hex').slice(0, 16);
      const settingsFile = path.join(WS, '.vscode', 'settings.json');
      fs.mkdirSync(path.dirname(settingsFile), { recursive: true });
      const typeWith = async (value, typed) => {
        const logFrom = await settledLogLength();
        if (value === undefined) fs.writeFileSync(settingsFile, '{}');
        else lap(`model: "Choose Model" lists ${JSON.stringify(await runCommand('Choose Model', 'proj'))}`);
        if (!(await logLine(new RegExp(`settings changed: .*"model":"${value ?? ''}"`), 20000, logFrom))) {
          failures.push(`model: the extension did not read the workspace's pythonAutocomplete.model ${JSON.stringify(value)}`);
        }
        await page.keyboard.press('Escape');
        await page.keyboard.press('Control+End');
        const { got, logFrom: from } = await typeAtEnd(doc, typed, '');
        await clearLine(page);
        return { got, from };
      };
      const withModel = await typeWith('proj', 'size = 1 + '); // no bracket: VS Code would close it (a suffix)
      let written = '';
      try { written = fs.readFileSync(settingsFile, 'utf8'); } catch { /* not written */ }
      if (!/"pythonAutocomplete\.model":\s*"proj"/.test(written)) failures.push(`model: "Choose Model" did not write the workspace's .vscode/settings.json: ${JSON.stringify(written)}`);
      const named = await logLine(/server model: (.*)$/, 20000, withModel.from);
      lap(`model: with pythonAutocomplete.model "proj" the request named ${JSON.stringify(withModel.got?.ex.request.model)}, ${withModel.got?.ex.response.model} answered (proj.pt: ${want}); the extension says "${named && named[1]}"`);
      if (!withModel.got) failures.push('model: no answered request after setting pythonAutocomplete.model');
      else if (withModel.got.ex.request.model !== 'proj') failures.push(`model: the request did not name the workspace's model: ${JSON.stringify(withModel.got.ex.request.model)}`);
      else if (withModel.got.ex.response.model !== want) failures.push(`model: the answer came from ${withModel.got.ex.response.model}, not the project's model ${want}`);
      if (!named || named[1] !== `proj (sha256 ${want})`) failures.push(`model: the extension did not name the project's model: ${named && named[1]}`);
      const without = await typeWith(undefined, 'rows = 2 + ');
      if (!without.got) failures.push('model: no answered request after removing pythonAutocomplete.model');
      else if ('model' in without.got.ex.request || without.got.ex.response.model === want) failures.push(`model: with the setting removed the request named ${JSON.stringify(without.got.ex.request.model)} and ${without.got.ex.response.model} answered`);
      else lap(`model: setting removed: the request names no model, ${without.got.ex.response.model} (the default) answers`);
    }

    // every request of this window carried one affinity key (X-Client-Id): the server keeps its prefix states in one
    // worker and slot whichever pooled connection the request came on
    const ids = new Set(exchanges.map((e) => e.clientId));
    if (ids.size !== 1 || !/^[0-9a-f-]{36}$/.test([...ids][0] ?? '')) failures.push(`X-Client-Id: the requests carried ${JSON.stringify([...ids])}, not one window id`);
    else lap(`X-Client-Id: all ${exchanges.length} requests carried ${[...ids][0]}`);

    // every request carried the token set in step 0, none was refused, and no settings file holds it
    const unauthorized = exchanges.filter((e) => e.auth !== AUTH.Authorization || e.response?.status === 401);
    const leaked = [path.join(UD, 'User', 'settings.json'), path.join(WS, '.vscode', 'settings.json')]
      .filter((f) => fs.existsSync(f) && fs.readFileSync(f, 'utf8').includes(API_TOKEN));
    if (unauthorized.length) failures.push(`API token: ${unauthorized.length} of ${exchanges.length} requests went without it or were refused: ${JSON.stringify(unauthorized[0].auth)} -> ${JSON.stringify(unauthorized[0].response)}`);
    else if (leaked.length) failures.push(`API token: written to ${leaked.join(', ')}`);
    else lap(`API token: all ${exchanges.length} requests carried it, none refused, in no settings file`);

    // 3b) the suggestion events reached the server's /metrics: one count per event the extension sent
    {
      await sleep(500); // an event the proxy has seen may still be on its way to the server
      const metrics = await (await fetch(`${API}/metrics`, { headers: AUTH })).text();
      // counted by type and by the model that gave the answer each event names: all of this server's answers
      // (prometheus_client writes a sample's labels sorted by name)
      const samples = [...metrics.matchAll(/^autocomplete_client_events_total\{([^}]*)\} (\S+)$/gm)].map((m) => ({
        line: m[0], value: Number(m[2]), ...Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]])),
      }));
      const counted = (type, model) => samples.filter((m) => m.type === type && (model === undefined || m.model === model))
        .reduce((n, m) => n + m.value, 0);
      const sent = (type) => events.filter((e) => e?.type === type).length;
      const pairs = ['view', 'select'].map((t) => `${sent(t)} ${t} sent, ${counted(t)} counted`);
      const unknown = counted('view', 'unknown') + counted('select', 'unknown');
      if (sent('select') < 1 || ['view', 'select'].some((t) => counted(t) !== sent(t))) failures.push(`suggestion events: ${pairs.join('; ')}`);
      else if (unknown) failures.push(`suggestion events: ${unknown} counted for model "unknown": ${samples.map((m) => m.line).join('; ')}`);
      else lap(`suggestion events: ${pairs.join('; ')} (the server's /metrics: ${samples.map((m) => m.line).join('; ')})`);
    }

    // 4) the server goes away: one non-modal notice, the status bar says offline, no more notices while typing
    if (process.env.SERVER_PID) {
      process.kill(Number(process.env.SERVER_PID), 'SIGTERM');
      for (let i = 0; i < 50; i++) { try { await fetch(`${API}/health`); await sleep(100); } catch { break; } }
      await proxy.close(); // nothing listens at the extension's serverUrl any more
      await editor.click();
      await page.keyboard.press('Escape');
      await page.keyboard.press('Control+End');
      await page.keyboard.type('x = len(', { delay: 60 });
      if (await statusIs(/PyAC offline/, 20000)) lap('server stopped: status bar says offline'); else failures.push('status bar did not say offline after the server stopped');
      await page.keyboard.type('paths) + 1', { delay: 60 });
      await sleep(1500);
      const notes = await toasts();
      await shot('server_down');
      // Every notification is listed in the notification center, toasted or not: headless code-server does not
      // always toast one (seen under load, also before issue #11's changes), so the count is taken there.
      await page.locator('.statusbar-item[aria-label*="Notifications"]').first().click();
      await page.waitForSelector('.notifications-center', { state: 'visible', timeout: 10000 }).catch(() => undefined);
      const listed = await page.evaluate(() => [...document.querySelectorAll('.notifications-center .notification-list-item-message')]
        .map((e) => e.textContent.slice(0, 200)).filter((t) => /Python Autocomplete/.test(t)));
      lap(`server stopped: ${listed.length} notification(s) in the notification center, ${notes.length} toasted: ${JSON.stringify(listed)}`);
      if (listed.length !== 1) failures.push(`expected exactly one notice about the server being down, the notification center lists ${listed.length}`);
    }
  } catch (e) {
    failures.push(`error: ${e.stack || e}`);
    await shot('error').catch(() => undefined);
  } finally {
    await ctx.close();
  }
  if (latencies.length) {
    const median = (xs) => { const v = xs.filter((x) => x !== null).sort((a, b) => a - b); return v.length ? v[Math.floor(v.length / 2)].toFixed(0) : '-'; };
    console.log("keystroke -> ghost text latency (ms; the ghost time includes pythonAutocomplete.debounceMs, 0 by default, and VS Code's own 50 ms):");
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
