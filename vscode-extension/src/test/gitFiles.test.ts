import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { gitPyFiles } from '../gitFiles';

/** No user or system git configuration: a global excludesFile would change what is ignored. */
const env = { ...process.env, GIT_CONFIG_GLOBAL: os.devNull, GIT_CONFIG_NOSYSTEM: '1' };
const git = (dir: string, ...args: string[]) => execFileSync('git', ['-C', dir, ...args], { env, stdio: 'pipe' });
const write = (root: string, rel: string, text = 'x = 1\n') => {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
};

describe('git files (the project as git would commit it)', () => {
  let root: string;
  const savedEnv = { ...process.env };
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'gitfiles-'));
    Object.assign(process.env, { GIT_CONFIG_GLOBAL: os.devNull, GIT_CONFIG_NOSYSTEM: '1' });
  });
  afterEach(() => {
    fs.rmSync(root, { recursive: true, force: true });
    for (const k of ['GIT_CONFIG_GLOBAL', 'GIT_CONFIG_NOSYSTEM']) {
      if (savedEnv[k] === undefined) delete process.env[k]; else process.env[k] = savedEnv[k];
    }
  });

  it('lists tracked and untracked files, not those an ignore file excludes (as dataset/workspace.py)', async () => {
    git(root, 'init', '-q');
    write(root, '.gitignore', '/data/\n*_pb2.py\n');
    write(root, 'pkg/sub/.gitignore', 'scratch.py\n');
    for (const rel of ['pkg/__init__.py', 'pkg/core.py', 'pkg/sub/util.py']) write(root, rel);
    git(root, 'add', '-A');
    write(root, 'pkg/new.py');
    write(root, 'pkg/api_pb2.py');
    write(root, 'pkg/sub/scratch.py');
    write(root, 'data/corpus/mod0.py');
    write(root, 'notes.txt');
    assert.deepStrictEqual(await gitPyFiles(root), ['pkg/__init__.py', 'pkg/core.py', 'pkg/new.py', 'pkg/sub/util.py']);
    // a subfolder keeps the repository's rules, with paths relative to it
    assert.deepStrictEqual(await gitPyFiles(path.join(root, 'pkg')), ['__init__.py', 'core.py', 'new.py', 'sub/util.py']);
    // a folder the repository ignores, opened on purpose: git lists none, so the caller lists every file
    assert.strictEqual(await gitPyFiles(path.join(root, 'data')), undefined);
  });

  it('answers undefined outside a repository and without git', async () => {
    write(root, 'app.py');
    assert.strictEqual(await gitPyFiles(root), undefined);
    git(root, 'init', '-q');
    assert.deepStrictEqual(await gitPyFiles(root), ['app.py']);
    assert.strictEqual(await gitPyFiles(root, path.join(root, 'no-such-git')), undefined);
  });
});
