// Which .py files of a workspace folder are the project's: what git would commit. Tracked files and untracked
// ones no ignore rule excludes (every .gitignore, .git/info/exclude, core.excludesFile), as
// `git ls-files --cached --others --exclude-standard` lists them: git applies its own rules, not a copy of them.
//
// Why: a project folder holds more Python than its code (data it downloads, build output, generated modules,
// scratch). `workspace.findFiles` does not read .gitignore, and under its 5,000-file cap such folders can crowd
// the project's own files out of the list altogether (this repository's checkout: 10,711 .py files, 118 of them
// the project's). dataset/workspace.py asks git the same question for `make train SOURCES=` and
// `python -m evaluate --project-root`, so the editor sends as context the files the model was trained on.
//
// Pure Node (no `vscode` import): extension.ts lists each workspace folder with it, and falls back to findFiles
// where it answers undefined (a workspace folder holding several repositories is listed whole; dataset/workspace.py
// lists each of them by git).
import { execFile } from 'child_process';

/** A listing of a large repository takes well under a second; a hung git must not hold the context back. */
const GIT_TIMEOUT_MS = 10_000;
const GIT_MAX_BUFFER = 64 * 1024 * 1024;

/**
 * The .py files git would commit under the folder `dir`, relative to it with `/`, sorted; undefined where git
 * cannot say (not installed, not a repository, a timeout) or lists none (a folder the repository ignores, opened
 * on purpose: every file is then the project's, as findFiles lists them).
 */
export function gitPyFiles(dir: string, git = 'git', timeoutMs = GIT_TIMEOUT_MS): Promise<string[] | undefined> {
  const args = ['-C', dir, 'ls-files', '-z', '--cached', '--others', '--exclude-standard', '--', '*.py'];
  return new Promise((resolve) => {
    execFile(git, args, { timeout: timeoutMs, maxBuffer: GIT_MAX_BUFFER, encoding: 'utf8', windowsHide: true },
      (error, stdout) => {
        if (error) return resolve(undefined);
        const files = [...new Set(stdout.split('\0').filter((p) => p))].sort();
        resolve(files.length > 0 ? files : undefined);
      });
  });
}
