"""`python -m dataset build ...` (also `autocomplete-data build ...`): build the corpus.

Examples:
  python -m dataset build --out data                         # the standard library, offline
  python -m dataset build --local ~/code/myproj --stdlib --out data
  python -m dataset build --github-list repos.txt --pypi requests --pypi flask --out data
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dataset.build import DEFAULT_VOCAB_SIZE, BuildConfig, DownloadConfig, ExtractConfig, build_corpus
from dataset.clean import CleanConfig


def read_github_list(path: Path) -> list[str]:
    """`owner/repo` or archive URL per line; blank lines and # comments ignored."""
    entries = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip() if not line.strip().startswith("http") else line.strip()
        if line:
            entries.append(line)
    return entries


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dataset", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build or update DIR/corpus (a no-op when nothing changed)")
    b.add_argument("--out", type=Path, default=Path("data"), help="data folder (default: data)")
    b.add_argument("--stdlib", action="store_true",
                   help="this interpreter's standard library without its tests (the default source)")
    b.add_argument("--local", type=Path, action="append", default=[], metavar="DIR",
                   help="a folder of your own code (one project); repeatable")
    b.add_argument("--pypi", action="append", default=[], metavar="NAME",
                   help="a package's source distribution from the package index (pip download); repeatable")
    b.add_argument("--github-list", type=Path, metavar="FILE",
                   help="file with one 'owner/repo' or archive URL per line")
    b.add_argument("--github", action="append", default=[], metavar="OWNER/REPO",
                   help="one repository (or archive URL); repeatable")
    b.add_argument("--github-base-url", default=DownloadConfig.github_base_url,
                   help="where owner/repo archives are: {base}/owner/repo/archive/HEAD.zip")
    b.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE,
                   help=f"BPE vocabulary size (default {DEFAULT_VOCAB_SIZE}, chosen by measurement)")
    b.add_argument("--workers", type=int, default=2, help="threads for tokenizer training and encoding")
    b.add_argument("--valid-fraction", type=float, default=0.05)
    b.add_argument("--test-fraction", type=float, default=0.05)
    b.add_argument("--test-project", action="append", default=[], metavar="PROJECT",
                   help="keep this project (e.g. pypi/requests) entirely out of training, in the test "
                        "split; repeatable")
    b.add_argument("--valid-project", action="append", default=[], metavar="PROJECT",
                   help="put this project in the valid split; repeatable")
    b.add_argument("--max-file-kb", type=int, default=1000, help="skip files bigger than this (default 1000)")
    b.add_argument("--keep-generated", action="store_true",
                   help="keep files marked 'generated' / 'DO NOT EDIT' (still drops minified ones)")
    b.add_argument("--timeout", type=float, default=DownloadConfig.timeout_s, help="seconds per HTTP request")
    b.add_argument("--retries", type=int, default=DownloadConfig.retries)
    b.add_argument("--max-archive-mb", type=float, default=DownloadConfig.max_archive_bytes / 2 ** 20)
    b.add_argument("--max-extract-mb", type=float, default=ExtractConfig.max_total_bytes / 2 ** 20,
                   help="cap on the uncompressed size of one archive")
    b.add_argument("--pip-index-url", default=None, help="package index for --pypi (pip's default if unset)")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from dataset.summary import format_summary
    github = list(args.github)
    if args.github_list:
        try:
            github += read_github_list(args.github_list)
        except OSError as e:
            print(f"error: cannot read --github-list {args.github_list}: {e}", file=sys.stderr)
            return 2
    config = BuildConfig(
        out=args.out, stdlib=args.stdlib, local=args.local, pypi=args.pypi, github=github,
        vocab_size=args.vocab_size, workers=args.workers, valid_fraction=args.valid_fraction,
        test_fraction=args.test_fraction, progress=not args.no_progress,
        pinned={**{p: "valid" for p in args.valid_project}, **{p: "test" for p in args.test_project}},
        clean=CleanConfig(max_bytes=args.max_file_kb * 1000, skip_generated=not args.keep_generated),
        download=DownloadConfig(github_base_url=args.github_base_url, timeout_s=args.timeout,
                                retries=args.retries, max_archive_bytes=int(args.max_archive_mb * 2 ** 20),
                                pip_index_url=args.pip_index_url),
        extract=ExtractConfig(max_total_bytes=int(args.max_extract_mb * 2 ** 20)))
    try:
        meta = build_corpus(config)
    except (RuntimeError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(format_summary(meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
