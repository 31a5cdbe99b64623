// Which source files (.py files and Jupyter notebooks) of a workspace folder are the project's: what git would
// commit. Tracked files and untracked ones no ignore rule excludes (every .gitignore, .git/info/exclude,
// core.excludesFile), as `git ls-files --cached --others --exclude-standard` lists them: git applies its own
// rules, not a copy of them.
//
// Why: a project folder holds more Python than its code (data it downloads, build output, generated modules,
// scratch). `workspace.findFiles` does not read .gitignore, and under its 5,000-file cap such folders can crowd
// the project's own files out of the list altogether (this repository's checkout: 10,711 .py files, 118 of them
// the project's). dataset/workspace.py asks git the same question for `make train SOURCES=` and
// `python -m evaluate --project-root`, so the editor sends as context the files the model was trained on.
//
// Where git cannot say (no git, not a repository, or a folder the repository ignores, opened on purpose), every source
// file is the project's, hidden folders left out, but a repository found inside (a workspace folder holding several,
// `~/code`) is listed by git again: `projectSourceFiles`, the algorithm of dataset/workspace.py `project_source_files`.
// Either way NOT_PROJECT_DIRS (environments, build output, caches) and symbolic links are left out.
//
// Pure Node (no `vscode` import): extension.ts lists each workspace folder on disk with it (findFiles for the
// others: remote, virtual).
import { execFile } from 'child_process';
import { promises as fs } from 'fs';
import * as path from 'path';
import { NOTEBOOK_SUFFIX } from './notebook';
import { isNotProject, NOT_PROJECT_DIRS } from './workspaceContext';

/** What a project's Python is written in: modules, and notebooks (read as modules, notebook.ts `notebookFileText`). */
export const SOURCE_SUFFIXES = ['.py', NOTEBOOK_SUFFIX];
const isSource = (name: string) => SOURCE_SUFFIXES.some((s) => name.endsWith(s));

/** A listing of a large repository takes well under a second; a hung git must not hold the context back. */
const GIT_TIMEOUT_MS = 10_000;
const GIT_MAX_BUFFER = 64 * 1024 * 1024;

/**
 * The source files (SOURCE_SUFFIXES) git would commit under the folder `dir`, relative to it with `/`, sorted;
 * undefined where git cannot say (not installed, not a repository, a timeout) or lists none (a folder the
 * repository ignores, opened on purpose: `projectSourceFiles` then walks it). A repository git refuses to read
 * (another user's: "dubious ownership") adds a line to `warnings`, as dataset/workspace.py says it.
 */
export function gitSourceFiles(dir: string, git = 'git', timeoutMs = GIT_TIMEOUT_MS, warnings?: string[]): Promise<string[] | undefined> {
  const args = ['-C', dir, 'ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', ...SOURCE_SUFFIXES.map((s) => `*${s}`)];
  return new Promise((resolve) => {
    execFile(git, args, { timeout: timeoutMs, maxBuffer: GIT_MAX_BUFFER, encoding: 'utf8', windowsHide: true },
      (error, stdout, stderr) => {
        if (error) {
          if (warnings && /dubious ownership/.test(stderr)) {
            warnings.push(`git refuses to read the repository ${dir}: it belongs to another user (git's "dubious ` +
              `ownership"); every source file under it is taken, its .gitignore not applied. ` +
              `\`git config --global --add safe.directory ${dir}\` lets git read it`);
          }
          return resolve(undefined);
        }
        const files = [...new Set(stdout.split('\0').filter((p) => p))].sort();
        resolve(files.length > 0 ? files : undefined);
      });
  });
}

/**
 * A folder's project files: relative paths with `/`, sorted; `by` says whether git listed the folder itself;
 * `warnings`: repositories git refused to list (walked instead).
 */
export interface Listing { files: string[]; by: 'git' | 'walk'; warnings: string[] }

/**
 * The project's source files under the folder `root`, at most `maxFiles` (dataset/workspace.py `project_source_files`):
 * git's listing of the folder, else a walk that lists each repository inside it by git.
 */
export async function projectSourceFiles(root: string, maxFiles: number, git = 'git'): Promise<Listing> {
  const keep = (files: string[]) => [...new Set(files)].sort().slice(0, maxFiles);
  // What git lists, less NOT_PROJECT_DIRS and what is not a plain file here: git lists what it tracks, so a file
  // deleted since, or a symbolic link (its text may be anywhere), which are never read. (The walk leaves them out
  // as it goes.)
  const projectFiles = async (dir: string, listed: string[]) => (await Promise.all(
    listed.filter((rel) => !isNotProject(rel)).map(async (rel) => {
      try {
        return (await fs.lstat(path.join(dir, rel))).isFile() ? rel : undefined;
      } catch {
        return undefined;
      }
    }))).filter((rel): rel is string => rel !== undefined);
  const warnings: string[] = [];
  const listed = await gitSourceFiles(root, git, GIT_TIMEOUT_MS, warnings);
  if (listed) return { files: keep(await projectFiles(root, listed)), by: 'git', warnings };
  const files: string[] = [];
  const walk = async (dir: string, prefix: string): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch {
      return; // unreadable: not the project's as far as we can tell
    }
    if (prefix && entries.some((e) => e.name === '.git')) {
      const inner = await gitSourceFiles(dir, git, GIT_TIMEOUT_MS, warnings);
      if (inner) { // a repository inside the folder: its own rules
        files.push(...(await projectFiles(dir, inner)).map((rel) => prefix + rel));
        return;
      }
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (files.length >= maxFiles) return;
      if (e.isFile() && isSource(e.name)) files.push(prefix + e.name);
      else if (e.isDirectory() && !e.name.startsWith('.') && !NOT_PROJECT_DIRS.includes(e.name)) {
        await walk(path.join(dir, e.name), `${prefix}${e.name}/`);
      }
    }
  };
  await walk(root, '');
  return { files: keep(files), by: 'walk', warnings };
}
