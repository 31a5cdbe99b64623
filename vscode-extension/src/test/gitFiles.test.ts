import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { gitSourceFiles, projectSourceFiles } from '../gitFiles';

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
    assert.deepStrictEqual(await gitSourceFiles(root), ['pkg/__init__.py', 'pkg/core.py', 'pkg/new.py', 'pkg/sub/util.py']);
    // a subfolder keeps the repository's rules, with paths relative to it
    assert.deepStrictEqual(await gitSourceFiles(path.join(root, 'pkg')), ['__init__.py', 'core.py', 'new.py', 'sub/util.py']);
    // a folder the repository ignores, opened on purpose: git lists none, so the caller lists every file
    assert.strictEqual(await gitSourceFiles(path.join(root, 'data')), undefined);
  });

  it('lists a project as dataset/workspace.py does: git, else a walk that asks git in each repository inside', async () => {
    // a repository: deleted and linked files left out, and the folders that are never the project
    const one = path.join(root, 'one');
    fs.mkdirSync(one);
    git(one, 'init', '-q');
    write(one, '.gitignore', 'out/\n');
    for (const rel of ['pkg/a.py', 'pkg/gone.py', 'venv/lib/v.py', 'out/gen.py']) write(one, rel);
    git(one, 'add', '-A', '-f');
    fs.unlinkSync(path.join(one, 'pkg/gone.py'));
    fs.symlinkSync(path.join(one, 'pkg/a.py'), path.join(one, 'pkg/link.py'));
    assert.deepStrictEqual(await projectSourceFiles(one, 100), { files: ['out/gen.py', 'pkg/a.py'], by: 'git', warnings: [] });
    // a folder of repositories and loose files: walked, hidden and environment folders left out, each repository by git
    write(root, 'two/main.py');
    write(root, 'two/build/lib/main.py');
    write(root, 'two/scratch/tmp.py');
    write(root, 'two/.gitignore', 'scratch/\n');
    git(path.join(root, 'two'), 'init', '-q');
    for (const rel of ['loose.py', '.cache/c.py', 'node_modules/m.py', 'notes.txt']) write(root, rel);
    assert.deepStrictEqual(await projectSourceFiles(root, 100),
      { files: ['loose.py', 'one/out/gen.py', 'one/pkg/a.py', 'two/main.py'], by: 'walk', warnings: [] });
    assert.deepStrictEqual((await projectSourceFiles(root, 2)).files.length, 2);
    // without git every .py file is walked, ignored ones included
    assert.deepStrictEqual(await projectSourceFiles(root, 100, path.join(root, 'no-such-git')), {
      files: ['loose.py', 'one/out/gen.py', 'one/pkg/a.py', 'two/main.py', 'two/scratch/tmp.py'], by: 'walk', warnings: [] });
  });

  it("lists a project's notebooks beside its modules, not Jupyter's autosaved copies of them", async () => {
    git(root, 'init', '-q');
    write(root, '.gitignore', 'scratch/\n');
    for (const rel of ['pkg/model.py', 'analysis/fit.ipynb', 'analysis/.ipynb_checkpoints/fit-checkpoint.ipynb',
      'scratch/try.ipynb', 'analysis/data.json']) write(root, rel, '{}');
    const want = ['analysis/fit.ipynb', 'pkg/model.py'];
    assert.deepStrictEqual(await projectSourceFiles(root, 100), { files: want, by: 'git', warnings: [] });
    // the walk (no git) finds the same notebook; the ignored one too, as for .py files
    assert.deepStrictEqual((await projectSourceFiles(root, 100, path.join(root, 'no-such-git'))).files,
      ['analysis/fit.ipynb', 'pkg/model.py', 'scratch/try.ipynb']);
  });

  it('answers undefined outside a repository and without git', async () => {
    write(root, 'app.py');
    assert.strictEqual(await gitSourceFiles(root), undefined);
    git(root, 'init', '-q');
    assert.deepStrictEqual(await gitSourceFiles(root), ['app.py']);
    assert.strictEqual(await gitSourceFiles(root, path.join(root, 'no-such-git')), undefined);
  });

  it('walks a repository git refuses to read (another user owns it), and says why with git\'s fix', async function () {
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) this.skip(); // giving files away needs root
    write(root, 'app.py');
    write(root, 'data/mod.py');
    write(root, '.gitignore', 'data/\n');
    git(root, 'init', '-q');
    const chownAll = (p: string): void => {
      fs.lchownSync(p, 65534, 65534);
      if (fs.lstatSync(p).isDirectory()) for (const e of fs.readdirSync(p)) chownAll(path.join(p, e));
    };
    chownAll(root);
    const listing = await projectSourceFiles(root, 100);
    assert.deepStrictEqual([listing.by, listing.files], ['walk', ['app.py', 'data/mod.py']]);
    assert.strictEqual(listing.warnings.length, 1);
    assert.match(listing.warnings[0], /dubious ownership/);
    assert.ok(listing.warnings[0].includes(`safe.directory ${root}`));
  });
});
