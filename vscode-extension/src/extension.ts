// VS Code glue: settings, the inline and list providers, the status bar item and the toggle command.
// All logic worth testing lives in the vscode-free modules (context, filters, cache, debounce, client, engine).
import { randomUUID } from 'crypto';
import * as vscode from 'vscode';
import { AutocompleteClient } from './client';
import { buildContext, DEFAULT_LIMITS } from './context';
import { NOTEBOOK_SUFFIX, NotebookCell, notebookFileText, notebookModule, notebookSource, pythonBody } from './notebook';
import { CompletionEngine, EngineSettings } from './engine';
import { DocumentLike, ExtraContext, notebookOfKey, withLf } from './extraContext';
import { ExtraChunk } from './ring';
import { projectSourceFiles } from './gitFiles';
import { isNotProject, neighbourOrder, NOT_PROJECT_GLOB } from './workspaceContext';
import { SuggestionEvents } from './events';
import { Suggestion } from './filters';
import { ServerMonitor, ServerState } from './monitor';

const SECTION = 'pythonAutocomplete';
/** The API token's key in VS Code's secret storage (command Set API Token). */
const SECRET_KEY = `${SECTION}.apiToken`;
const SELECTOR: vscode.DocumentSelector = [{ language: 'python' }];
/** The server accepts at most 512K characters of input_extra text. */
const EXTRA_MAX = 524288;
/** The server keeps the first 16K characters of the suffix. */
const SUFFIX_MAX = 16384;
/** A notebook cell's document's URI scheme. */
const CELL_SCHEME = 'vscode-notebook-cell';
const isCell = (d: vscode.TextDocument) => d.uri.scheme === CELL_SCHEME;
/** Documents worth sending as extra context: Python in real files, untitled editors and notebook cells (a cell
 *  through its notebook, NotebookLike below). */
const EXTRA_SCHEMES = new Set(['file', 'untitled', 'vscode-remote', CELL_SCHEME]);
const isPython = (d: vscode.TextDocument | undefined): d is vscode.TextDocument => !!d && d.languageId === 'python' && EXTRA_SCHEMES.has(d.uri.scheme);
/** Workspace context: at most this many source files listed, none read above this size (generated, data). */
const WORKSPACE_MAX_FILES = 5000;
const WORKSPACE_MAX_FILE_BYTES = 1_000_000;
/** A notebook's file is mostly its outputs (plots as base64), so it may be larger before its code is read. Its JSON
 *  is parsed on the extension host's thread, once until it changes: 16 MB take 35 ms, 64 MB (dataset/notebooks.py's
 *  cap for training) 91 ms (Node 20, the 2-core AMD EPYC VM; throw-away /tmp/s47/nbparse.js). */
const WORKSPACE_MAX_NOTEBOOK_BYTES = 16 * 1024 * 1024;
/** The workspace's source files, for findFiles and the watcher. */
const SOURCE_GLOB = `**/*.{py,${NOTEBOOK_SUFFIX.slice(1)}}`;
/** Texts of workspace files kept between editor switches (least recently used go first), in characters. */
const WORKSPACE_CACHE_CHARS = 4 * 1024 * 1024;

/** `map`'s value for `key`, made by `make` the first time. */
function memo<K extends object, V>(map: WeakMap<K, V>, key: K, make: (key: K) => V): V {
  let v = map.get(key);
  if (v === undefined) map.set(key, (v = make(key)));
  return v;
}

/** What the server is told a chunk comes from: the workspace-relative path (an untitled editor's name). */
const filenameOf = (uri: vscode.Uri) => (uri.scheme === 'untitled' ? uri.path : vscode.workspace.asRelativePath(uri, false));

/** A vscode document as the extra-context store sees it (one wrapper per document: change events are per keystroke). */
const wrappers = new WeakMap<vscode.TextDocument, DocumentLike>();
const documentLike = (d: vscode.TextDocument): DocumentLike => memo(wrappers, d, wrap);
function wrap(d: vscode.TextDocument): DocumentLike {
  return {
    key: d.uri.toString(),
    filename: filenameOf(d.uri),
    get lineCount() { return d.lineCount; },
    lineText: (i) => d.lineAt(i).text,
    // as the server reads it: LF line ends (a CRLF document's `\r`s would count against the budgets)
    getText: () => withLf(d.getText()),
    charLength: () => d.offsetAt(d.lineAt(d.lineCount - 1).range.end) - (d.eol === vscode.EndOfLine.CRLF ? d.lineCount - 1 : 0),
  };
}

/** A notebook's cells as notebook.ts reads them. */
function cellsOf(nb: vscode.NotebookDocument): NotebookCell[] {
  return nb.getCells().map((c) => ({ text: c.document.getText(),
    isPythonCode: c.kind === vscode.NotebookCellKind.Code && c.document.languageId === 'python' }));
}

/** An open notebook as the extra-context store sees it: one document, the module of its code cells, the text
 *  `make train` and the workspace context make of its file (notebook.ts `notebookModule`). Its cells are not sent
 *  one by one: a notebook of 300 cells would take the request's 256 chunks, and each cell would lack its `# %%`. */
interface NotebookLike extends DocumentLike {
  /** The module line of line `line` of cell `index`. */
  moduleLine(index: number, line: number): number;
  /** A cell changed: the module is built again when next read. */
  invalidate(): void;
}
const notebookWrappers = new WeakMap<vscode.NotebookDocument, NotebookLike>();
const notebookLike = (nb: vscode.NotebookDocument): NotebookLike => memo(notebookWrappers, nb, wrapNotebook);
function wrapNotebook(nb: vscode.NotebookDocument): NotebookLike {
  let module: ReturnType<typeof notebookModule> | undefined;
  let stale = true;
  const built = () => {
    if (stale) [module, stale] = [notebookModule(cellsOf(nb)), false];
    return module!;
  };
  return {
    // the key extraContext.ts notebookOfKey gives its cells, so a cell's requests leave its own notebook out. Taken
    // from a cell: a remote window's cell URIs carry the remote authority its notebook's URI lacks (code-server:
    // `vscode-notebook-cell://127.0.0.1:PORT/ws/a.ipynb#...` for `file:///ws/a.ipynb`)
    key: notebookOfKey(nb.cellCount > 0 ? nb.cellAt(0).document.uri.toString()
      : nb.uri.with({ scheme: CELL_SCHEME, fragment: 'empty' }).toString()),
    filename: filenameOf(nb.uri),
    get lineCount() { return built().lines.length; },
    lineText: (i) => built().lines[i],
    getText: () => built().text,
    charLength: () => built().text.length,
    // from the module as last built, stale or not: typing in a cell does not move its start, and an edit's line
    // is only where the ring takes a region (rebuilding the module at every keystroke: 1 ms at 1,000 cells)
    moduleLine: (index, line) => {
      const starts = (module ?? built()).cellStart;
      for (let i = index; i >= 0; i--) if (starts[i] !== undefined) return starts[i]! + (i === index ? line : 0);
      return 0;
    },
    invalidate: () => { stale = true; },
  };
}

interface Settings extends EngineSettings {
  serverUrl: string;
  apiToken: string;
  enabled: boolean;
  mode: 'inline' | 'list' | 'both';
  promptMaxChars: number;
  suffixLines: number;
  suffixMaxChars: number;
  extraContextMaxChars: number;
  workspaceContext: boolean;
  requestTimeoutMs: number;
  timeBudgetMs: number;
  model: string;
  reportEvents: boolean;
}

function readSettings(): Settings {
  const c = vscode.workspace.getConfiguration(SECTION);
  const num = (k: string, d: number, min: number) => {
    const v = c.get<number>(k, d);
    return typeof v === 'number' && Number.isFinite(v) ? Math.max(min, v) : d;
  };
  const mode = c.get<string>('mode', 'inline');
  return {
    serverUrl: c.get<string>('serverUrl', 'http://127.0.0.1:5000'),
    apiToken: c.get<string>('apiToken', ''),
    enabled: c.get<boolean>('enabled', true),
    mode: mode === 'list' || mode === 'both' ? mode : 'inline',
    // 0 since 2026-12-07: a suggestion on screen before the next key, far more often, for ~1 ms more server CPU a
    // key (benchmarks/typing.py); VS Code waits its own 50 ms before asking for ghost text
    debounceMs: num('debounceMs', 0, 0),
    promptMaxChars: Math.floor(num('promptMaxChars', DEFAULT_LIMITS.promptMaxChars, 1)),
    suffixLines: Math.floor(num('suffixLines', DEFAULT_LIMITS.suffixLines, 0)),
    suffixMaxChars: Math.min(SUFFIX_MAX, Math.floor(num('suffixMaxChars', DEFAULT_LIMITS.suffixMaxChars, 0))),
    extraContextMaxChars: Math.min(EXTRA_MAX, Math.floor(num('extraContextMaxChars', 131072, 0))),
    workspaceContext: c.get<boolean>('workspaceContext', true),
    maxSuggestionLength: Math.floor(num('maxSuggestionLength', 256, 1)),
    requestTimeoutMs: num('requestTimeoutMs', 5000, 100),
    timeBudgetMs: Math.min(5000, num('timeBudgetMs', 300, 0)),
    model: (c.get<string>('model', '') ?? '').trim(),
    reportEvents: c.get<boolean>('reportEvents', true),
    maxSuggestions: 3,
  };
}

export function activate(context: vscode.ExtensionContext): void {
  const out = vscode.window.createOutputChannel('Python Autocomplete');
  const log = (line: string) => out.appendLine(`${new Date().toISOString()} ${line}`);
  let settings = readSettings();
  let client: AutocompleteClient | undefined;
  // this window's affinity key for the server (X-Client-Id): random, so it names no one; one per activation
  const clientId = randomUUID();
  // The API token: VS Code's secret storage (command Set API Token), else the apiToken setting. A team's server
  // gives each person a token of their own (server.py --tokens-file): it belongs in no settings.json, where a
  // workspace's would be committed with the project's model setting.
  let storedToken = '';
  const loadToken = async () => {
    storedToken = (await context.secrets.get(SECRET_KEY)) ?? '';
    client = undefined;
    warnedRejected = false;
  };
  const tokenLoaded = loadToken();
  const getClient = () => {
    client ??= new AutocompleteClient({ serverUrl: settings.serverUrl, apiToken: storedToken || settings.apiToken, timeoutMs: settings.requestTimeoutMs, clientId });
    return client;
  };

  // status bar: state + last latency; clicking toggles
  const status = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  status.command = `${SECTION}.toggle`;
  status.name = 'Python Autocomplete';
  const ICONS: Record<ServerState, string> = {
    unknown: '$(loading~spin)', ready: '$(check)', working: '$(sync~spin)', unreachable: '$(debug-disconnect)', disabled: '$(circle-slash)',
  };
  let modelLine = ''; // what /health says of the served model, once an answer named it
  let rendered: [ServerState, number | undefined, string] = ['unknown', undefined, 'checking server'];
  const render = (state: ServerState, latencyMs: number | undefined, detail: string) => {
    rendered = [state, latencyMs, detail];
    const ms = latencyMs !== undefined ? ` ${Math.round(latencyMs)} ms` : '';
    const word = state === 'unreachable' ? ' offline' : state === 'disabled' ? ' off' : ms;
    status.text = `${ICONS[state]} PyAC${word}`;
    const model = modelLine ? `; model: ${modelLine}` : '';
    status.tooltip = `Python Autocomplete: ${detail} (${settings.serverUrl}${model}). Click to turn completions ${state === 'disabled' ? 'on' : 'off'}.`;
    status.backgroundColor = state === 'unreachable' ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
  };

  let lastLogged: ServerState | undefined;
  const monitor = new ServerMonitor(
    async () => {
      try { return await getClient().health(); } catch { return false; }
    },
    {
      onState: (state, latencyMs, detail) => {
        render(state, latencyMs, detail);
        // log changes of availability only (not every working -> ready of a request)
        if (state !== 'working' && state !== lastLogged) log(`server ${state}: ${detail}`);
        if (state !== 'working') lastLogged = state;
      },
      onFirstDown: (detail) => {
        void vscode.window.showWarningMessage(
          `Python Autocomplete: the completion server at ${settings.serverUrl} is not reachable (${detail}). Completions resume when it answers.`);
      },
    },
  );
  let warnedRejected = false;
  const engine = new CompletionEngine(getClient, monitor, log, (err) => {
    // a wrong token, or a model name the server does not have (its message lists the names it has)
    const model = err.type === 'unknown_model';
    if (warnedRejected || (err.status !== 401 && err.status !== 403 && !model)) return;
    warnedRejected = true;
    void vscode.window.showWarningMessage(`Python Autocomplete: ${err.message} (${model ? 'check pythonAutocomplete.model' : 'run "Python Autocomplete: Set API Token"'}).`);
  }, (model, named) => {
    // the first answer, or the server swapped in another model (make train wrote a new one), or a file of a folder
    // with another model: say which; /health describes the server's default model, a named one is named here
    void (named ? Promise.resolve(`${named} (sha256 ${model})`) : getClient().modelDescription().catch(() => undefined)).then((line) => {
      modelLine = line ?? `sha256 ${model}`;
      log(`server model: ${modelLine}`);
      render(...rendered);
    });
  });

  // Extra context (input_extra): other open Python files and recently edited regions, kept up to date on
  // editor events and built ahead of the next keystroke, so that a keystroke only reads a prepared array.
  const extra = new ExtraContext({ maxChars: settings.extraContextMaxChars });
  let prepareTimer: ReturnType<typeof setTimeout> | undefined;
  const activeKey = () => {
    const d = vscode.window.activeTextEditor?.document;
    return isPython(d) ? d.uri.toString() : undefined;
  };
  const prepareSoon = () => {
    if (prepareTimer || !extra.needsBuild(activeKey())) return; // typing in the current file: nothing to do
    prepareTimer = setTimeout(() => {
      prepareTimer = undefined;
      const key = activeKey();
      if (key !== undefined && extra.needsBuild(key)) extra.chunksFor(key);
    }, 50);
  };

  // Workspace context (workspaceContext.ts): the project's .py files and notebooks nobody opened — the current
  // file's imports, its folder, the rest — read on editor switch and save (cached until they change on disk), never
  // per keystroke.
  const wsFiles = new Map<string, vscode.Uri>(); // workspace-relative path -> file
  const wsTexts = new Map<string, string>(); // uri -> text, dropped when the file changes on disk; LRU order
  let wsTextChars = 0;
  const forgetText = (key: string) => {
    const t = wsTexts.get(key);
    if (t === undefined) return;
    wsTexts.delete(key);
    wsTextChars -= t.length;
  };
  let wsListed: Promise<void> | undefined;
  let wsGitFolders = new Set<string>(); // workspace folders git listed: a new file there may be one it ignores
  let wsSeq = 0;
  const relative = (u: vscode.Uri) => vscode.workspace.asRelativePath(u, false);
  // Each folder on disk as git would commit it, else walked with each repository inside it listed by git
  // (gitFiles.ts); findFiles for folders not on disk. Relisted after a file is created in a git folder or a
  // .gitignore is saved (~10 ms).
  const listWorkspace = () => (wsListed ??= (async () => {
    const files = new Map<string, vscode.Uri>();
    const folders = new Set<string>();
    for (const folder of vscode.workspace.workspaceFolders ?? []) {
      const listed = folder.uri.scheme === 'file' ? await projectSourceFiles(folder.uri.fsPath, WORKSPACE_MAX_FILES) : undefined;
      if (listed?.by === 'git') folders.add(folder.uri.toString());
      for (const w of listed?.warnings ?? []) log(`workspace context: ${w}`);
      const uris = listed
        ? listed.files.map((rel) => vscode.Uri.joinPath(folder.uri, rel))
        : await vscode.workspace.findFiles(new vscode.RelativePattern(folder, SOURCE_GLOB), NOT_PROJECT_GLOB, WORKSPACE_MAX_FILES);
      for (const u of uris) files.set(relative(u), u);
    }
    wsFiles.clear();
    for (const [rel, u] of files) wsFiles.set(rel, u);
    wsGitFolders = folders;
  })());
  const relistWorkspace = () => { wsListed = undefined; }; // the next refresh lists again
  const readWorkspaceFile = async (u: vscode.Uri): Promise<string | undefined> => {
    const key = u.toString();
    let text = wsTexts.get(key);
    if (text === undefined) {
      const notebook = u.path.endsWith(NOTEBOOK_SUFFIX);
      try {
        const max = notebook ? WORKSPACE_MAX_NOTEBOOK_BYTES : WORKSPACE_MAX_FILE_BYTES;
        if ((await vscode.workspace.fs.stat(u)).size > max) return undefined;
        const raw = new TextDecoder().decode(await vscode.workspace.fs.readFile(u));
        // a notebook as its module of code cells, as `make train` read it (kept in the cache as that: small)
        text = notebook ? notebookFileText(raw) : withLf(raw);
      } catch {
        return undefined; // deleted meanwhile, unreadable, a notebook that is not one: not sent
      }
    }
    forgetText(key); // (re)inserted as the most recently used
    wsTexts.set(key, text);
    wsTextChars += text.length;
    for (const old of wsTexts.keys()) {
      if (wsTextChars <= WORKSPACE_CACHE_CHARS || old === key) break;
      forgetText(old);
    }
    return text;
  };
  const refreshWorkspace = async (doc: vscode.TextDocument | undefined) => {
    if (!isPython(doc)) return;
    // a notebook cell's project is its notebook's: the file whose neighbours (imports, folder) are sent
    const notebook = notebookOf(doc);
    const file = notebook ? notebook.notebook.uri : doc.uri;
    if (file.scheme !== 'file' || !vscode.workspace.getWorkspaceFolder(file)) return;
    const seq = ++wsSeq;
    const key = doc.uri.toString();
    const files: ExtraChunk[] = [];
    if (settings.workspaceContext && settings.extraContextMaxChars > 0) {
      await listWorkspace();
      // open files and notebooks are sent as open documents (a notebook's cells, each as one)
      const open = new Set([...vscode.workspace.textDocuments, ...vscode.workspace.notebookDocuments].map((d) => d.uri.toString()));
      const text = notebook ? notebook.notebook.getCells().map((c) => c.document.getText()).join('\n') : doc.getText();
      let chars = 0;
      for (const rel of neighbourOrder(relative(file), text, [...wsFiles.keys()])) {
        if (chars >= settings.extraContextMaxChars) break;
        const u = wsFiles.get(rel)!;
        if (open.has(u.toString())) continue; // sent as an open document
        const text = await readWorkspaceFile(u);
        if (seq !== wsSeq) return; // another editor became active meanwhile: its refresh wins
        if (text === undefined) continue;
        files.push({ filename: rel, text });
        chars += Math.min(text.length, extra.options.perFileMaxChars);
      }
    }
    if (seq !== wsSeq) return;
    extra.setWorkspace(key, files);
    prepareSoon();
  };
  const watcher = vscode.workspace.createFileSystemWatcher(SOURCE_GLOB);
  watcher.onDidCreate((u) => {
    if (!wsListed || isNotProject(relative(u))) return;
    const folder = vscode.workspace.getWorkspaceFolder(u);
    if (folder && wsGitFolders.has(folder.uri.toString())) relistWorkspace(); // git says whether it is ignored
    else wsFiles.set(relative(u), u);
  });
  watcher.onDidDelete((u) => { wsFiles.delete(relative(u)); forgetText(u.toString()); });
  watcher.onDidChange((u) => forgetText(u.toString()));

  /** The open notebook a cell's document belongs to, and the cell's index; undefined for a file. */
  function notebookOf(doc: vscode.TextDocument): { notebook: vscode.NotebookDocument; index: number } | undefined {
    if (!isCell(doc)) return undefined;
    for (const notebook of vscode.workspace.notebookDocuments) {
      const index = notebook.getCells().findIndex((c) => c.document === doc);
      if (index >= 0) return { notebook, index };
    }
    return undefined;
  }

  /** What the extra-context store knows a document by: a cell's notebook (NotebookLike), a file itself. */
  const storedAs = (d: vscode.TextDocument): DocumentLike | undefined => {
    if (!isCell(d)) return documentLike(d);
    const found = notebookOf(d);
    return found && notebookLike(found.notebook);
  };

  const editorChanged = (editor: vscode.TextEditor | undefined) => {
    const stored = editor && isPython(editor.document) ? storedAs(editor.document) : undefined;
    if (stored) extra.activated(stored);
    prepareSoon();
    void refreshWorkspace(editor?.document);
  };
  for (const d of vscode.workspace.textDocuments) if (isPython(d) && !isCell(d)) extra.opened(documentLike(d));
  for (const nb of vscode.workspace.notebookDocuments) extra.opened(notebookLike(nb));
  editorChanged(vscode.window.activeTextEditor);

  /** The notebook of a cell's document: its cells and the cell's index (notebook.ts), undefined for a file. */
  function notebookCellOf(doc: vscode.TextDocument): { cells: NotebookCell[]; index: number } | undefined {
    const found = notebookOf(doc);
    if (!found) return undefined;
    return { index: found.index, cells: cellsOf(found.notebook) };
  }

  // pythonAutocomplete.model of each workspace folder ('' outside one): in a multi-root workspace each project
  // folder names its own model in its .vscode/settings.json. Read once per folder, again after a settings change.
  const modelOfFolder = new Map<string, string>();
  /** The file whose settings apply to `doc` (a cell's are its notebook file's) and its workspace folder. */
  const settingsScope = (doc: vscode.TextDocument) => {
    const uri = notebookOf(doc)?.notebook.uri ?? doc.uri;
    return { uri, folder: vscode.workspace.getWorkspaceFolder(uri) };
  };
  const modelFor = (doc: vscode.TextDocument): string => {
    const { uri, folder } = settingsScope(doc);
    const key = folder?.uri.toString() ?? '';
    let model = modelOfFolder.get(key);
    if (model === undefined) {
      model = (vscode.workspace.getConfiguration(SECTION, uri).get<string>('model', '') ?? '').trim();
      modelOfFolder.set(key, model);
    }
    return model;
  };

  /** Suggestions at `pos`, or undefined when there is no answer (disabled, cancelled, server down, error). */
  async function suggestAt(doc: vscode.TextDocument, pos: vscode.Position, token: vscode.CancellationToken): Promise<Suggestion[] | undefined> {
    if (!settings.enabled) return undefined;
    await tokenLoaded; // read once at activation: resolved at every later keystroke
    const cell = notebookCellOf(doc);
    // a cell that a cell magic runs as another language (%%bash, %%sql): no Python to suggest (notebook.ts)
    if (cell && !pythonBody(doc.lineAt(0).text)) return undefined;
    const { source, firstLine } = cell
      ? notebookSource(cell.cells, cell.index)
      : { source: { lineCount: doc.lineCount, lineText: (i: number) => doc.lineAt(i).text }, firstLine: 0 };
    const ctx = {
      ...buildContext(source, firstLine + pos.line, pos.character, settings),
      extra: extra.chunksFor(doc.uri.toString()), // prepared on editor events: an array lookup here
    };
    // CancellationToken -> AbortController: VS Code cancels the token when the user types on
    const ac = new AbortController();
    const sub = token.onCancellationRequested(() => ac.abort());
    if (token.isCancellationRequested) ac.abort();
    try {
      const res = await engine.suggest(ctx, { ...settings, model: modelFor(doc) }, ac.signal);
      return token.isCancellationRequested || res.source === 'none' ? undefined : res.suggestions;
    } finally {
      sub.dispose();
    }
  }

  const rangeFor = (pos: vscode.Position, s: Suggestion) => new vscode.Range(pos, pos.translate(0, s.replaceLength));
  // "view" and "select" for the server's /metrics (events.ts): VS Code runs an item's command when it is accepted
  const events = new SuggestionEvents((e) => getClient().postEvent(e), () => settings.reportEvents);
  const ACCEPTED = `${SECTION}.suggestionAccepted`; // internal: not in the command palette
  const accepted = (s: Suggestion): vscode.Command => ({ title: 'accepted', command: ACCEPTED, arguments: [s.id, s.index] });

  const inline: vscode.InlineCompletionItemProvider = {
    async provideInlineCompletionItems(doc, pos, _ctx, token) {
      if (settings.mode === 'list') return [];
      const suggestions = await suggestAt(doc, pos, token);
      if (!suggestions) return [];
      // one line per answered position (the e2e test reads it): what the ghost text is, or null for none
      log(`inline at ${pos.line + 1}:${pos.character + 1} shown=${JSON.stringify(suggestions[0]?.text ?? null)} replace=${suggestions[0]?.replaceLength ?? 0}`);
      events.shown(suggestions[0]?.id, suggestions[0]?.index); // the ghost text is the first
      return suggestions.map((s) => new vscode.InlineCompletionItem(s.text, rangeFor(pos, s), accepted(s)));
    },
  };

  const list: vscode.CompletionItemProvider = {
    async provideCompletionItems(doc, pos, token) {
      if (settings.mode === 'inline') return undefined;
      const suggestions = await suggestAt(doc, pos, token);
      if (!suggestions) return undefined;
      log(`list at ${pos.line + 1}:${pos.character + 1} items=${JSON.stringify(suggestions.map((s) => s.text))} replace=${suggestions[0]?.replaceLength ?? 0}`);
      const items = suggestions.map((s, i) => {
        const firstLine = s.text.split('\n')[0];
        const label = s.text.includes('\n') ? `${firstLine}…` : s.text;
        const item = new vscode.CompletionItem({ label, description: `${(s.prob * 100).toFixed(0)}%` }, vscode.CompletionItemKind.Snippet);
        item.insertText = s.text;
        item.range = rangeFor(pos, s);
        item.sortText = `\u0000${String(i).padStart(3, '0')}`; // keep the server's order, above the language server's items
        item.preselect = i === 0;
        item.detail = 'Python Autocomplete';
        item.documentation = new vscode.MarkdownString().appendCodeblock(s.text, 'python');
        item.command = accepted(s);
        return item;
      });
      events.shown(suggestions[0]?.id, suggestions[0]?.index); // the list opens on the first (preselect)
      return new vscode.CompletionList(items, true); // incomplete: ask again as the user types
    },
  };

  // The list provider is registered only in 'list'/'both' mode: its trigger characters would otherwise open
  // the suggest widget (filled by other providers) in inline mode, and that widget hides the ghost text.
  let listRegistration: vscode.Disposable | undefined;
  const applyMode = () => {
    const want = settings.mode !== 'inline';
    if (want && !listRegistration) listRegistration = vscode.languages.registerCompletionItemProvider(SELECTOR, list, '.', '(', '[', ',', ' ');
    if (!want && listRegistration) {
      listRegistration.dispose();
      listRegistration = undefined;
    }
  };
  applyMode();

  const applyEnabled = () => {
    monitor.setEnabled(settings.enabled);
    if (!settings.enabled) engine.cancel();
  };

  context.subscriptions.push(
    out,
    status,
    { dispose: () => { monitor.dispose(); engine.cancel(); if (prepareTimer) clearTimeout(prepareTimer); } },
    // a notebook's cells come and go with it (below): the store knows the notebook, not its cells
    vscode.workspace.onDidOpenTextDocument((d) => { if (isPython(d) && !isCell(d)) { extra.opened(documentLike(d)); prepareSoon(); } }),
    vscode.workspace.onDidCloseTextDocument((d) => {
      if (!isPython(d) || isCell(d)) return;
      extra.closed(documentLike(d));
      prepareSoon();
      void refreshWorkspace(vscode.window.activeTextEditor?.document); // a closed project file is sent from disk now
    }),
    vscode.workspace.onDidOpenNotebookDocument((nb) => { extra.opened(notebookLike(nb)); prepareSoon(); }),
    vscode.workspace.onDidCloseNotebookDocument((nb) => {
      extra.closed(notebookLike(nb));
      prepareSoon();
      void refreshWorkspace(vscode.window.activeTextEditor?.document); // a closed notebook is sent from disk now
    }),
    vscode.workspace.onDidChangeTextDocument((e) => {
      if (!isPython(e.document) || e.contentChanges.length === 0) return;
      const line = Math.min(...e.contentChanges.map((c) => c.range.start.line));
      if (!isCell(e.document)) extra.changed(documentLike(e.document), line);
      else {
        const found = notebookOf(e.document);
        if (!found) return;
        const nb = notebookLike(found.notebook);
        nb.invalidate();
        extra.changed(nb, nb.moduleLine(found.index, line));
      }
      prepareSoon();
    }),
    // cells added, removed or moved (a cell's own edits come above, as its document's)
    vscode.workspace.onDidChangeNotebookDocument((e) => {
      if (e.contentChanges.length === 0) return;
      const nb = notebookLike(e.notebook);
      nb.invalidate();
      extra.changed(nb, nb.moduleLine(e.contentChanges[0].range.start, 0));
      prepareSoon();
    }),
    vscode.window.onDidChangeActiveTextEditor(editorChanged),
    watcher,
    vscode.workspace.onDidChangeWorkspaceFolders(relistWorkspace),
    // a save may change the imports (and so the order), and closing a file makes it a workspace file again
    vscode.workspace.onDidSaveTextDocument((d) => {
      if (d.uri.path.endsWith('/.gitignore')) relistWorkspace(); // what the project is may have changed
      if (d === vscode.window.activeTextEditor?.document) void refreshWorkspace(d);
    }),
    vscode.workspace.onDidSaveNotebookDocument((nb) => {
      const active = vscode.window.activeTextEditor?.document;
      if (active && notebookOf(active)?.notebook === nb) void refreshWorkspace(active);
    }),
    vscode.languages.registerInlineCompletionItemProvider(SELECTOR, inline),
    { dispose: () => listRegistration?.dispose() },
    vscode.commands.registerCommand(ACCEPTED, (id?: string, index?: number) => events.accepted(id, index)),
    vscode.commands.registerCommand(`${SECTION}.toggle`, async () => {
      const enabled = !settings.enabled;
      await vscode.workspace.getConfiguration(SECTION).update('enabled', enabled, vscode.ConfigurationTarget.Global);
      settings = { ...readSettings(), enabled }; // the change event may come later
      applyEnabled();
      vscode.window.setStatusBarMessage(`Python Autocomplete ${enabled ? 'on' : 'off'}`, 2000);
    }),
    vscode.commands.registerCommand(`${SECTION}.selectMode`, async () => {
      const picks = [
        { label: 'inline', description: 'ghost text, Tab accepts' },
        { label: 'list', description: 'entries in the suggestion list' },
        { label: 'both', description: 'ghost text and list entries' },
      ];
      const pick = await vscode.window.showQuickPick(picks, { placeHolder: `Show completions as (now: ${settings.mode})` });
      if (!pick) return;
      await vscode.workspace.getConfiguration(SECTION).update('mode', pick.label, vscode.ConfigurationTarget.Global);
      settings = { ...readSettings(), mode: pick.label as Settings['mode'] };
      applyMode();
    }),
    vscode.commands.registerCommand(`${SECTION}.setApiToken`, async () => {
      const value = await vscode.window.showInputBox({
        title: 'Python Autocomplete: API token', password: true, ignoreFocusOut: true,
        prompt: "The completion server's token for you, kept in VS Code's secret storage (not in settings). Empty: remove it.",
      });
      if (value === undefined) return;
      if (value.trim()) await context.secrets.store(SECRET_KEY, value.trim());
      else await context.secrets.delete(SECRET_KEY);
      await loadToken();
      engine.cache.clear();
      log(`api token ${value.trim() ? 'stored in secret storage' : 'removed from secret storage'}`);
    }),
    context.secrets.onDidChange((e) => { if (e.key === SECRET_KEY) void loadToken(); }), // another window set it
    vscode.commands.registerCommand(`${SECTION}.selectModel`, async () => {
      await tokenLoaded;
      let listed: { default: string; models: string[] };
      try {
        listed = await getClient().models();
      } catch (e) {
        void vscode.window.showWarningMessage(`Python Autocomplete: cannot list the server's models: ${(e as Error).message}`);
        return;
      }
      const doc = vscode.window.activeTextEditor?.document;
      const now = doc ? modelFor(doc) : settings.model;
      const picks: (vscode.QuickPickItem & { value: string })[] = [
        { label: listed.default, description: `the server's default model${now === '' ? ' (now)' : ''}`, value: '',
          detail: listed.models.length ? undefined : 'the server serves no other model: start it with --models-dir DIR (make serve MODELS_DIR=DIR)' },
        ...listed.models.map((name) => ({ label: name, description: name === now ? '(now)' : undefined, value: name })),
      ];
      const pick = await vscode.window.showQuickPick(picks, { placeHolder: "Complete this project's code with which of the server's models" });
      if (!pick) return;
      // the project's setting: its folder's in a multi-root workspace, the workspace's, or the user's without one
      const folders = vscode.workspace.workspaceFolders ?? [];
      const folder = doc ? settingsScope(doc).folder : undefined;
      const target = !folders.length ? vscode.ConfigurationTarget.Global
        : folders.length > 1 && folder ? vscode.ConfigurationTarget.WorkspaceFolder : vscode.ConfigurationTarget.Workspace;
      await vscode.workspace.getConfiguration(SECTION, folder?.uri).update('model', pick.value || undefined, target);
    }),
    vscode.commands.registerCommand(`${SECTION}.checkServer`, async () => {
      const ok = await monitor.check();
      void vscode.window.showInformationMessage(`Python Autocomplete: server at ${settings.serverUrl} ${ok ? 'is ready' : 'does not answer'}.`);
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration(SECTION)) return;
      settings = readSettings();
      client = undefined; // url, token or timeout may have changed
      warnedRejected = false; // a token or model name set anew is reported anew
      modelOfFolder.clear();
      engine.cache.clear();
      extra.setMaxChars(settings.extraContextMaxChars);
      void refreshWorkspace(vscode.window.activeTextEditor?.document);
      applyMode();
      log(`settings changed: ${JSON.stringify({ ...settings, apiToken: settings.apiToken ? '***' : '' })}`);
      applyEnabled();
      if (settings.enabled) void monitor.check();
    }),
  );

  status.show();
  log(`activated; server ${settings.serverUrl}, mode ${settings.mode}`);
  if (settings.enabled) void monitor.check();
  else monitor.setEnabled(false);
}

export function deactivate(): void {}
