"""How much a FIM model uses the code after the cursor, in bits: a quick check before typing simulations.

    python scripts/fim_bits.py --model checkpoints/default.pt [--model runs/X/best.pt ...]

For each region of the edit-in-the-middle protocol (`python -m evaluate --protocol middle`: the same files
and regions, 5 lines each, 4 per file, on the validation split by default), the region's tokens are scored
twice with the same prefix (its last `--prefix-tokens` tokens):

    left to right   [eot] prefix middle                       (what the model sees without the suffix)
    FIM             [PRE SUF suffix' MID] prefix middle       (the engine's prompt: evaluate/fim.py fim_head)

and the mean bits per middle token are printed for both, for the whole middle and for its first and last
thirds (the last third is next to the suffix). The difference is what the model takes from the suffix; the
copy model and the search are not involved. A model whose FIM column is not lower than its left-to-right
one has not learned to read the suffix. Typing figures (keystrokes saved) still decide: this only ranks
models in a minute instead of ten.
"""
from __future__ import annotations

import argparse
import math
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluate.__main__ import load_texts, parse_args as evaluate_args  # noqa: E402
from evaluate.fim import FimConfig, fim_head  # noqa: E402
from evaluate.metrics import sample_regions  # noqa: E402
from serving.loading import load_for_inference  # noqa: E402


@torch.inference_mode()
def middle_bits(model, ids: list[int], start: int) -> torch.Tensor:
    """-log2 P of ids[start:] given what precedes each, one forward: [len(ids) - start]."""
    logits, _ = model(torch.tensor([ids[:-1]]), None)  # [1, T - 1, V]
    logp = torch.log_softmax(logits[0].float(), -1)
    bits = -logp.gather(1, torch.tensor(ids[1:])[:, None])[:, 0] / math.log(2)
    return bits[start - 1:]


def measure(model, tokenizer, texts: dict[str, str], args) -> dict[str, float]:
    if tokenizer.fim_ids is None:
        raise SystemExit("error: the model has no FIM tokens (train it with --fim-rate)")
    sums = {key: [0.0, 0.0, 0] for key in ("all", "first third", "last third")}  # key -> [l2r, fim, tokens]
    # head + middle must fit beside the prefix in a transformer's window (a recurrent model has none)
    room = (getattr(model, "max_context", None) or 1 << 30) - 1 - args.prefix_tokens
    for name, text in texts.items():
        for a, b in sample_regions(text, args.regions, args.region_lines, random.Random(f"{args.seed}/{name}")):
            # The protocol's cut: the region's last newline stays, so the suffix starts with it.
            prefix, middle, suffix = text[max(0, a - 8 * args.prefix_tokens):a], text[a:b - 1], text[b - 1:]
            pre_ids = tokenizer.encode(prefix)[-args.prefix_tokens:]
            head = list(fim_head(tokenizer, suffix, FimConfig(args.suffix_tokens)))
            mid_ids = tokenizer.encode(middle)[:room - len(head)]
            if not mid_ids:
                continue
            l2r = middle_bits(model, [tokenizer.eot_id, *pre_ids, *mid_ids], 1 + len(pre_ids))
            fim = middle_bits(model, [*head, *pre_ids, *mid_ids], len(head) + len(pre_ids))
            third = len(mid_ids) // 3
            for key, part in (("all", slice(None)), ("first third", slice(0, third)),
                              ("last third", slice(len(mid_ids) - third, None))):
                sums[key][0] += float(l2r[part].sum())
                sums[key][1] += float(fim[part].sum())
                sums[key][2] += len(mid_ids[part])
    return sums


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", nargs="+", required=True)
    p.add_argument("--data", default="data/default-model")
    p.add_argument("--split", default="valid", choices=["train", "valid", "test"])
    p.add_argument("--max-files", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--regions", type=int, default=4)
    p.add_argument("--region-lines", type=int, default=5)
    p.add_argument("--prefix-tokens", type=int, default=120, help="prefix tokens before the middle (both orders)")
    p.add_argument("--suffix-tokens", type=int, default=FimConfig.max_suffix_tokens)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    # The evaluation's own file choice: --split / --max-files / --seed pick the files `python -m evaluate` does,
    # read by its own options (their defaults: a split's own projects, no input_extra).
    choice = evaluate_args(["--model", args.model[0], "--data", args.data, "--split", args.split, "--max-files",
                            str(args.max_files), "--seed", str(args.seed), "--protocol", "middle"])
    texts, _, _ = load_texts(choice)
    print(f"{len(texts)} files of the {args.split} split, {args.regions} regions of {args.region_lines} lines each, "
          f"{args.prefix_tokens} prefix tokens; bits per middle token, left to right / FIM (less)")
    for path in args.model:
        ckpt, model, _ = load_for_inference(path, "cpu", "none")
        sums = measure(model, ckpt.tokenizer, texts, args)
        print(f"{path}: " + "; ".join(
            f"{key} {l2r / n:.3f} / {fim / n:.3f} ({1 - fim / l2r:.1%})" for key, (l2r, fim, n) in sums.items()
            if n), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
