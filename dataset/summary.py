"""The table printed at the end of a build: what was kept per split and what was skipped, and why."""
from __future__ import annotations

from dataset.clean import SKIP_REASONS


def format_summary(meta: dict) -> str:
    lines = ["", f"corpus: vocab {meta['vocab_size']}, eot id {meta['eot_id']}, dtype {meta['dtype']}", "",
             "| split | projects | files | MB | tokens | chars/token |",
             "|---|---:|---:|---:|---:|---:|"]
    total = {"projects": 0, "files": 0, "bytes": 0, "tokens": 0, "chars": 0}
    for name, s in meta["splits"].items():
        lines.append(f"| {name} | {s['projects']} | {s['files']} | {s['bytes'] / 1e6:.2f} | "
                     f"{s['tokens']:,} | {s['chars_per_token']:.2f} |")
        for k in total:
            total[k] += s[k]
    docs = total["files"] + len(meta["splits"])  # eot tokens: one per file plus a leading one per split
    lines.append(f"| all | {total['projects']} | {total['files']} | {total['bytes'] / 1e6:.2f} | "
                 f"{total['tokens']:,} | {total['chars'] / max(1, total['tokens'] - docs):.2f} |")
    skipped = meta.get("skipped", {})
    lines += ["", "| skipped | files | why |", "|---|---:|---|"]
    if not skipped:
        lines.append("| (none) | 0 | |")
    for reason, count in sorted(skipped.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {reason} | {count} | {SKIP_REASONS.get(reason, '')} |")
    run = meta.get("run")
    if run:
        did = []
        if run["files_written"]:
            did.append(f"{run['files_written']} files written")
        if run["tokenizer_trained"]:
            did.append("tokenizer trained")
        if run["splits_encoded"]:
            did.append("encoded " + ", ".join(run["splits_encoded"]))
        lines += ["", f"{run['seconds']:.1f} s: " + ("; ".join(did) if did else "up to date, nothing to do")]
        for p in run.get("problems", []):
            lines.append(f"problem: {p.get('source')}: {p.get('reason')}")
    return "\n".join(lines)
