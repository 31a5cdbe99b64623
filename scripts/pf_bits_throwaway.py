"""throw-away: scripts/fim_bits.py with position-faithful FIM prompts (suffix at RoPE positions cursor + G).
python /tmp/ana/pf_bits.py --model M [--gaps 0 16 32]"""
import math, random, sys, argparse
sys.path.insert(0, "/tmp/pf")
import torch
from evaluate.__main__ import load_texts
from evaluate.fim import FimConfig, fim_head
from evaluate.metrics import sample_regions
from serving.loading import load_for_inference


@torch.inference_mode()
def bits(model, ids, start, positions=None):
    x = torch.tensor([ids[:-1]])
    pos = None if positions is None else torch.tensor([positions[:-1]])
    logits, _ = model(x, None, positions=pos) if pos is not None else model(x, None)
    logp = torch.log_softmax(logits[0].float(), -1)
    b = -logp.gather(1, torch.tensor(ids[1:])[:, None])[:, 0] / math.log(2)
    return b[start - 1:]


p = argparse.ArgumentParser()
p.add_argument("--model", nargs="+")
p.add_argument("--gaps", type=int, nargs="+", default=[0, 16, 32])
p.add_argument("--prefix-tokens", type=int, default=120)
a = p.parse_args()
torch.set_num_threads(1)
ns = argparse.Namespace(data="data/default-model", split="valid", max_files=30, seed=0, regions=4, region_lines=5,
                        files=None, files_per_project=0, protocol=["middle"], project_root=None, span_extra=False,
                        max_chars=None)
texts, _, _ = load_texts(ns)
for path in a.model:
    ckpt, model, _ = load_for_inference(path, "cpu", "none")
    tok = ckpt.tokenizer
    sums = {}
    room = model.max_context - 1 - a.prefix_tokens
    for name, text in texts.items():
        for s, e in sample_regions(text, 4, 5, random.Random(f"0/{name}")):
            prefix, middle, suffix = text[max(0, s - 8 * a.prefix_tokens):s], text[s:e - 1], text[e - 1:]
            pre_ids = tok.encode(prefix)[-a.prefix_tokens:]
            head = list(fim_head(tok, suffix, FimConfig(64)))
            mid_ids = tok.encode(middle)[:room - len(head)]
            if not mid_ids or not head:
                continue
            n = len(mid_ids); third = n // 3
            parts = {"all": slice(None), "first": slice(0, third), "last": slice(n - third, None)}
            res = {"l2r": bits(model, [tok.eot_id, *pre_ids, *mid_ids], 1 + len(pre_ids)),
                   "fim": bits(model, [*head, *pre_ids, *mid_ids], len(head) + len(pre_ids))}
            body_len = 1 + len(pre_ids) + len(mid_ids)  # MID + prefix + middle
            for g in a.gaps:
                s0 = 1 + len(pre_ids) + g
                sfx = len(head) - 3
                positions = [s0 - 2, s0 - 1, *range(s0, s0 + sfx), *range(0, body_len)]
                res[f"pf{g}"] = bits(model, [*head, *pre_ids, *mid_ids], len(head) + len(pre_ids), positions)
            for key, b in res.items():
                for pk, sl in parts.items():
                    t = sums.setdefault((key, pk), [0.0, 0])
                    t[0] += float(b[sl].sum()); t[1] += len(mid_ids[sl])
    l2r = {pk: sums[("l2r", pk)][0] / sums[("l2r", pk)][1] for pk in ("all", "first", "last")}
    print(path)
    for key in ["l2r", "fim"] + [f"pf{g}" for g in a.gaps]:
        print("  " + key + ": " + "; ".join(f"{pk} {sums[(key, pk)][0] / sums[(key, pk)][1]:.3f} "
                                           f"({1 - sums[(key, pk)][0] / sums[(key, pk)][1] / l2r[pk]:.1%})"
                                           for pk in ("all", "first", "last")), flush=True)
