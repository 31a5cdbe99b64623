"""Train a code-completion language model on the encoded corpus from `dataset/`.

    python train.py --data data                                  # defaults: transformer sized for a 2-core CPU
    python train.py --data data --model lstm --minutes 30 --out runs/lstm
    python train.py --data data --out runs/default --resume      # continue exactly where it stopped
    torchrun --nproc_per_node=2 train.py --data data ...         # DistributedDataParallel

One explicit loop, top to bottom (nanoGPT style): sample a batch, forward, cross-entropy, backward, clip,
AdamW step with warmup + cosine learning rate; every `--eval-every` steps measure validation loss, bits
per character and next-token accuracy, print a sample; every `--checkpoint-minutes` write RUNDIR/last.pt,
and keep the best validation model in RUNDIR/best.pt. SIGINT/SIGTERM save last.pt before exiting.

Budget: `--steps N` (exact) or `--minutes M` (wall clock; then the learning-rate schedule follows the
fraction of the time used, so it decays fully whatever the speed of the machine).

Fine-tuning: `--init CKPT` starts from a checkpoint's weights, architecture and tokenizer (the corpus must
have been encoded with that tokenizer); the starting model is validated at step 0 and is best.pt until a
step beats it. `--replay DIR --replay-fraction F` draws a fraction F of every batch from another corpus
(e.g. the default corpus, against forgetting); `--patience N` stops after N validations without a new best;
`--guard DIR --guard-rise R`: every validation also measures the loss on DIR's valid split, and a step whose
guard loss rose more than R (relative) over step 0's is never best.pt (it counts as a validation without a
new best): the fine-tuned model may not forget the general code it started from.

Fill in the middle: `--fim-rate R` rearranges a fraction R of the training windows' documents into
suffix-prefix-middle order (dataset/fim.py) and adds the three FIM tokens to the tokenizer; `--init` from a
checkpoint without them grows its embedding by three rows (the mean embedding). Any architecture trained on
random windows can learn it; `--stream` (the recurrent models' carried state) refuses it, because a window
rearranged in place breaks the text the carried state continues. Validation stays left to right, so bits/char
remain comparable with runs without FIM.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from dataset.corpus import load_split, load_tokenizer
from dataset.fim import fim_rows
from dataset.prefetch import Prefetcher
from models import ARCHS, ModelConfig, build_model, map_state
from models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

SAMPLE_PROMPT = "import os\n\n\ndef "


@dataclass
class TrainConfig:
    data: str = "data"  # folder holding corpus/ (train.npy, valid.npy, meta.json, tokenizer.json)
    model: str = "transformer"  # lstm | highway | transformer | transformer_xl
    d_model: int = 256
    layers: int = 4
    heads: int = 8
    d_ff: int = 0  # 0: 4 * d_model
    seq_len: int = 256  # tokens per training window (and the transformer's attention window)
    mem_len: int = 0  # Transformer-XL memory; 0: seq_len
    rhn_depth: int = 3
    batch_size: int = 16  # per process; the global batch is batch_size * world size
    steps: int = 0  # step budget; 0: use --minutes
    minutes: float = 60.0  # wall-clock budget when --steps is 0
    lr: float = 1.5e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup: int = 100  # linear warmup steps
    weight_decay: float = 0.1
    dropout: float = 0.1
    attn_dropout: float = -1.0  # dropout of the attention weights; < 0: the same as dropout
    grad_clip: float = 1.0
    eval_every: int = 250  # steps between validations (0: only at the end)
    eval_tokens: int = 65536  # validation tokens per evaluation (a fixed prefix of valid.npy)
    checkpoint_minutes: float = 5.0
    seed: int = 0
    out: str = "runs/default"
    resume: bool = False
    threads: int = 0  # torch CPU threads; 0: torch's default
    precision: str = "auto"  # auto | fp32 | bf16 (CPU) ; CUDA always uses autocast unless fp32
    stream: bool | None = None  # contiguous streams with state carried; None: on for transformer_xl
    sample_tokens: int = 48
    log_every: int = 10
    init: str = ""  # start from this checkpoint's weights (its architecture and tokenizer)
    replay: str = ""  # data folder of a second corpus (same tokenizer) mixed into every batch
    replay_fraction: float = 0.0  # fraction of each batch's rows drawn from --replay
    patience: int = 0  # stop after this many validations without a new best (0: never)
    guard: str = ""  # data folder whose valid split guards against forgetting (with --init)
    guard_rise: float = 0.045  # a step is a new best only if the guard's loss rose at most this (4.5 %) over the start's
    # (0.045: what scripts/finetune.py's recipe measured; the guard loss rises 2-4 % within the first 100 steps)
    guard_tokens: int = 16384  # guard validation tokens per evaluation
    fim_rate: float = 0.0  # fraction of training documents (pieces of windows) rearranged for FIM
    fim_spm: float = 1.0  # fraction of those in SPM order (the rest PSM)
    prefetch: int = -1  # batches made ahead in a thread (dataset/prefetch.py); -1: 2 on CUDA, 0 on the CPU
    progress_bar: bool = False  # a tqdm bar with ETA instead of a log line every log_every steps
    track: bool = True  # labml tracking (local sqlite)

    def model_config(self, vocab_size: int) -> ModelConfig:
        return ModelConfig(arch=self.model, vocab_size=vocab_size, d_model=self.d_model, n_layers=self.layers,
                           n_heads=self.heads, d_ff=self.d_ff, dropout=self.dropout, attn_dropout=self.attn_dropout,
                           max_len=self.seq_len, mem_len=self.mem_len or self.seq_len, rhn_depth=self.rhn_depth)


# ----------------------------------------------------------------------------------------------------------
# Distributed setup: torchrun sets RANK / WORLD_SIZE / LOCAL_RANK.

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> tuple[Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), torch.device("cuda" if torch.cuda.is_available() else "cpu")
    import torch.distributed as dist
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        if local_rank >= torch.cuda.device_count():
            raise SystemExit(f"error: torchrun started local rank {local_rank} on a machine with "
                             f"{torch.cuda.device_count()} GPU(s): use --nproc_per_node <= the GPU count, or "
                             f"CUDA_VISIBLE_DEVICES= to train on the CPU (gloo)")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        dist.init_process_group("nccl")
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return Dist(rank, world, local_rank), device


def all_reduce_max(values: list[float], d: Dist) -> list[float]:
    """Element-wise max over ranks (keeps stop decisions and the time-based schedule identical)."""
    if d.world == 1:
        return values
    import torch.distributed as dist
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t.tolist()


def all_reduce_mean(value: float, d: Dist) -> float:
    if d.world == 1:
        return value
    import torch.distributed as dist
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return t.item() / d.world


# ----------------------------------------------------------------------------------------------------------
# Data. The global batch (batch_size * world rows) is a function of the seed and the step only; rank r
# trains on its rows [r * batch_size, (r + 1) * batch_size). So N processes with batch B compute the same
# updates as one process with batch N * B, and a resumed run sees the same batches as an uninterrupted one.

class RandomWindows:
    """Windows of seq_len + 1 tokens at uniformly random offsets (inputs = [:-1], targets = [1:])."""

    def __init__(self, tokens: np.ndarray, seq_len: int, batch_size: int, d: Dist, seed: int):
        if len(tokens) < seq_len + 2:
            raise ValueError(f"train split has {len(tokens)} tokens, fewer than seq_len + 2 = {seq_len + 2}")
        self.tokens, self.seq_len, self.batch_size, self.d = tokens, seq_len, batch_size, d
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def next(self) -> tuple[np.ndarray, bool]:
        """[batch_size, seq_len + 1] token ids for this rank; the bool says "reset the carried state"."""
        offsets = self.rng.integers(0, len(self.tokens) - self.seq_len - 1, size=self.batch_size * self.d.world)
        mine = offsets[self.d.rank * self.batch_size:(self.d.rank + 1) * self.batch_size]
        return np.stack([self.tokens[o:o + self.seq_len + 1] for o in mine]), True

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, s: dict):
        self.rng.bit_generator.state = s["rng"]


class MixedWindows(RandomWindows):
    """Random windows where `n_replay` rows of every batch come from a second token array (replay)."""

    def __init__(self, tokens: np.ndarray, replay: np.ndarray, fraction: float, seq_len: int, batch_size: int,
                 d: Dist, seed: int):
        super().__init__(tokens, seq_len, batch_size, d, seed)
        if len(replay) < seq_len + 2:
            raise ValueError(f"replay split has {len(replay)} tokens, fewer than seq_len + 2 = {seq_len + 2}")
        self.replay = replay
        total = batch_size * d.world
        self.n_replay = min(total - 1, max(1, round(total * fraction))) if fraction > 0 else 0

    def next(self) -> tuple[np.ndarray, bool]:
        total = self.batch_size * self.d.world
        n_own = total - self.n_replay
        own = self.rng.integers(0, len(self.tokens) - self.seq_len - 1, size=n_own)
        rep = self.rng.integers(0, len(self.replay) - self.seq_len - 1, size=self.n_replay)
        rows = [self.tokens[o:o + self.seq_len + 1] for o in own] + \
               [self.replay[o:o + self.seq_len + 1] for o in rep]
        return np.stack(rows[self.d.rank * self.batch_size:(self.d.rank + 1) * self.batch_size]), True


class Streams:
    """The train split cut into batch_size * world contiguous streams read in step, seq_len tokens at a
    time, so a state (XL memory, LSTM/RHN hidden state) can be carried from one step to the next."""

    def __init__(self, tokens: np.ndarray, seq_len: int, batch_size: int, d: Dist, seed: int):
        n_streams = batch_size * d.world
        self.stream_len = len(tokens) // n_streams
        if self.stream_len < seq_len + 1:
            raise ValueError(f"train split ({len(tokens)} tokens) is too short for {n_streams} streams "
                             f"of seq_len + 1 = {seq_len + 1} tokens")
        mine = range(d.rank * batch_size, (d.rank + 1) * batch_size)
        self.starts = np.array([s * self.stream_len for s in mine])
        self.tokens, self.seq_len, self.position = tokens, seq_len, 0

    def next(self) -> tuple[np.ndarray, bool]:
        reset = self.position == 0
        batch = np.stack([self.tokens[s + self.position:s + self.position + self.seq_len + 1] for s in self.starts])
        self.position += self.seq_len
        if self.position + self.seq_len + 1 > self.stream_len:
            self.position = 0  # wrap around: the next batch starts a fresh state
        return batch, reset

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, s: dict):
        self.position = int(s["position"])


def grow_vocabulary(source: dict, target: dict) -> dict:
    """`source` weights shaped for `target`: tensors whose first dimension (the vocabulary: embedding, untied
    output head) grew get the new rows set to the mean of the old ones (an "average token" to start from)."""
    out = {}
    for name, value in source.items():
        want = target[name].shape
        if value.shape != want and value.dim() >= 1 and value.shape[1:] == want[1:] and value.shape[0] < want[0]:
            extra = value.float().mean(0, keepdim=True).expand(want[0] - value.shape[0], *want[1:])
            value = torch.cat([value.float(), extra.to(value.device)], 0).to(value.dtype)
        out[name] = value
    return out


def to_tensor(batch: np.ndarray, device) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.from_numpy(batch.astype(np.int64)).to(device, non_blocking=True)
    return t[:, :-1], t[:, 1:]


# ----------------------------------------------------------------------------------------------------------
# Learning rate: linear warmup to lr, then cosine from lr down to lr * min_lr_ratio as progress goes 0 -> 1.

def learning_rate(cfg: TrainConfig, step: int, progress: float) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    cosine = 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device) -> torch.optim.AdamW:
    # Weight decay on matrices (linear weights, embeddings), none on biases and norm gains.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), fused=device.type == "cuda")


def autocast_context(device, precision: str):
    """bf16 autocast on CPU (faster for transformers on CPUs with bf16 support) or on CUDA."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN runs bf16 on this CPU (PyTorch's own check: AVX-512 core or better on x86, bf16 on Arm).
    Elsewhere bf16 falls back to a reference path and autocast makes training an order of magnitude slower:
    transformer 4x256, 8 x 256 tokens a step, 96 / 103 tokens/s against fp32's 1,280 / 2,452 on one / two
    threads of a 2-core AMD EPYC VM (AVX2 only; 2026-12-06), where a 2-core Intel Xeon VM ran bf16 1.3x faster
    than fp32 (docs/training.md)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def resolve_precision(cfg: TrainConfig, device) -> str:
    if cfg.precision != "auto":
        return cfg.precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    # Measured on the 2-core CPUs (docs/training.md): bf16 autocast speeds up the transformers only, and only
    # where oneDNN runs bf16 (AVX-512 core or better); elsewhere it is an order of magnitude slower.
    transformer = cfg.model in ("transformer", "transformer_xl")
    return "bf16" if transformer and cpu_has_native_bf16() else "fp32"


# ----------------------------------------------------------------------------------------------------------
# Validation: the first eval_tokens of valid.npy cut into parallel streams, fed seq_len tokens at a time
# with the model's state carried, so every token is predicted with as much context as the model keeps.

class Validation:
    def __init__(self, tokens: np.ndarray, tokenizer, cfg: TrainConfig):
        n = min(len(tokens), cfg.eval_tokens) if cfg.eval_tokens > 0 else len(tokens)
        n_streams = max(1, min(cfg.batch_size, (n - 1) // max(cfg.seq_len, 1)))
        length = n // n_streams
        if length < 2:
            raise ValueError(f"valid split has only {len(tokens)} tokens")
        self.tokens = np.asarray(tokens[:n_streams * length]).astype(np.int64).reshape(n_streams, length)
        self.seq_len = cfg.seq_len
        # Characters of the predicted text (every token but the first of each stream), counted once.
        self.chars = sum(len(tokenizer.decode(row[1:])) for row in self.tokens)
        self.n_targets = n_streams * (length - 1)

    @torch.no_grad()
    def __call__(self, model, device, precision) -> dict:
        was_training = model.training
        model.eval()
        tokens = torch.from_numpy(self.tokens).to(device)
        nats, correct, state = 0.0, 0, None
        for p in range(0, tokens.shape[1] - 1, self.seq_len):
            x = tokens[:, p:p + self.seq_len]
            y = tokens[:, p + 1:p + self.seq_len + 1]
            x = x[:, :y.shape[1]]
            with autocast_context(device, precision):
                logits, state = model(x, state)
            logits = logits.float()
            nats += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
            correct += (logits.argmax(-1) == y).sum().item()
        model.train(was_training)
        return {"loss": nats / self.n_targets, "bpc": nats / math.log(2) / max(self.chars, 1),
                "accuracy": correct / self.n_targets}


@torch.no_grad()
def sample(model, tokenizer, device, n_tokens: int, prompt: str = SAMPLE_PROMPT) -> str:
    """Greedy continuation of `prompt`, decoding one token at a time with the model's state (KV cache)."""
    was_training = model.training
    model.eval()
    ids = tokenizer.encode(prompt)
    logits, state = model(torch.tensor([ids], device=device))
    out = []
    for _ in range(n_tokens):
        next_id = int(logits[0, -1].argmax())
        if next_id == tokenizer.eot_id:
            break
        out.append(next_id)
        logits, state = model(torch.tensor([[next_id]], device=device), state)
    model.train(was_training)
    return prompt + tokenizer.decode(out)


# ----------------------------------------------------------------------------------------------------------
# Experiment tracking (labml, local only: .labml.yaml sets no web API) on rank 0.

class Tracker:
    def __init__(self, cfg: TrainConfig, enabled: bool):
        self.enabled = enabled
        if not enabled:
            return
        try:
            from labml import experiment
            experiment.create(name=f"{cfg.model}", writers={"sqlite"}, disable_screen=True,
                              comment=f"out={cfg.out}")
            experiment.configs({k: v for k, v in asdict(cfg).items() if v is not None})
            experiment.start()
        except Exception as e:  # tracking is a convenience, never a reason to stop training
            print(f"labml tracking disabled: {type(e).__name__}: {e}", file=sys.stderr)
            self.enabled = False

    def save(self, step: int, values: dict):
        if self.enabled:
            from labml import tracker
            tracker.save(step, values)


# ----------------------------------------------------------------------------------------------------------

def train(cfg: TrainConfig) -> Path:
    """Run a training job described by `cfg`; returns the run directory (holding last.pt and best.pt)."""
    if cfg.model not in ARCHS:
        raise ValueError(f"unknown model {cfg.model!r}; expected one of {', '.join(ARCHS)}")
    if cfg.steps <= 0 and cfg.minutes <= 0:
        raise ValueError("give a budget: --steps N or --minutes M")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    d, device = setup_distributed()
    out = Path(cfg.out)
    last_path, best_path = out / "last.pt", out / "best.pt"
    stream = cfg.stream if cfg.stream is not None else cfg.model == "transformer_xl"
    carry_state = stream and cfg.model != "transformer"  # the transformer's training windows are independent
    precision = resolve_precision(cfg, device)

    # ---- data and tokenizer
    if not 0.0 <= cfg.fim_rate <= 1.0 or not 0.0 <= cfg.fim_spm <= 1.0:
        raise ValueError("--fim-rate and --fim-spm must be in [0, 1]")
    if cfg.prefetch < -1:
        raise ValueError("--prefetch must be >= 0 (batches made ahead) or -1 (2 on CUDA, 0 on the CPU)")
    if cfg.fim_rate > 0 and stream:
        raise ValueError("--fim-rate needs random windows (not --stream): a FIM window breaks the carried state")
    tokenizer = load_tokenizer(cfg.data)
    train_tokens = load_split(cfg.data, "train")
    validation = Validation(load_split(cfg.data, "valid"), tokenizer, cfg)
    guard = None
    if cfg.guard:
        if not cfg.init or cfg.guard_rise < 0:
            raise ValueError("--guard needs --init (the model whose general loss is guarded) and --guard-rise >= 0")
        if load_tokenizer(cfg.guard).sha256 != tokenizer.sha256:
            raise ValueError(f"tokenizer mismatch: the guard corpus {cfg.guard} was encoded with another "
                             f"tokenizer than {cfg.data}")
        guard = Validation(load_split(cfg.guard, "valid"), tokenizer, replace(cfg, eval_tokens=cfg.guard_tokens))
    if cfg.replay and cfg.replay_fraction > 0:
        if stream:
            raise ValueError("--replay works with random windows only (not --stream)")
        replay_tokenizer = load_tokenizer(cfg.replay)
        if replay_tokenizer.sha256 != tokenizer.sha256:
            raise ValueError(f"tokenizer mismatch: the replay corpus {cfg.replay} was encoded with another "
                             f"tokenizer than {cfg.data}")
        data = MixedWindows(train_tokens, load_split(cfg.replay, "train"), cfg.replay_fraction, cfg.seq_len,
                            cfg.batch_size, d, cfg.seed)
    else:
        data = (Streams if stream else RandomWindows)(train_tokens, cfg.seq_len, cfg.batch_size, d, cfg.seed)

    # ---- model and optimizer, fresh, from --init CKPT or from RUNDIR/last.pt
    resume = None
    init_ckpt = None
    if cfg.fim_rate > 0:
        tokenizer = tokenizer.with_fim_tokens()
    if cfg.init and not (cfg.resume and last_path.exists()):
        init_ckpt = load_checkpoint(cfg.init, device="cpu")
        if init_ckpt.tokenizer.fim_ids is not None:
            tokenizer = tokenizer.with_fim_tokens()  # keep what the checkpoint learned
        if init_ckpt.tokenizer.sha256 != tokenizer.sha256:
            raise ValueError(f"tokenizer mismatch: the corpus in {cfg.data} was encoded with another tokenizer "
                             f"than the checkpoint {cfg.init} (vocab {tokenizer.vocab_size} vs "
                             f"{init_ckpt.tokenizer.vocab_size}); rebuild the corpus with the checkpoint's "
                             f"tokenizer (scripts/finetune.py does)")
    if cfg.resume and last_path.exists():
        ckpt = load_checkpoint(last_path, device="cpu")
        if ckpt.tokenizer.fim_ids is not None:
            tokenizer = tokenizer.with_fim_tokens()
        resume = ckpt.resume or {}
        model_config = ckpt.config
        model = ckpt.model.to(device).train()
        step = ckpt.step
    else:
        if cfg.resume and d.main:
            print(f"--resume: no {last_path} yet, starting a new run", file=sys.stderr)
        torch.manual_seed(cfg.seed)  # the same initial weights on every rank
        if init_ckpt is not None:
            # The checkpoint's architecture and weights; only dropout comes from this run's options.
            model_config = replace(init_ckpt.config, dropout=cfg.dropout, attn_dropout=cfg.attn_dropout,
                                   vocab_size=max(init_ckpt.config.vocab_size, tokenizer.vocab_size))
            if model_config.arch == "transformer" and cfg.seq_len > model_config.max_len:
                # A longer window: RoPE has no position parameters (scores depend on distances only), so the
                # same weights run with a wider window and this run teaches them the longer distances.
                model_config = replace(model_config, max_len=cfg.seq_len, mem_len=cfg.seq_len)
            model = build_model(model_config)
            model.load_state_dict(grow_vocabulary(init_ckpt.model.state_dict(), model.state_dict()))
            model = model.float().to(device).train()
        else:
            model_config = cfg.model_config(tokenizer.vocab_size)
            model = build_model(model_config).to(device).train()
        step = 0
    optimizer = make_optimizer(model, cfg, device)
    fim_rng = np.random.Generator(np.random.PCG64([cfg.seed, d.rank, 0xF1F]))  # its own stream: resumable
    train_seconds, tokens_seen, best_loss, bad_evals = 0.0, 0, float("inf"), 0
    guard_start = None  # the guard's loss at step 0 (of --init's model)
    init_valid = None  # --init's model on the validation split ({"loss", "bpc"}): the mark a fine-tune reports
    if resume is not None:
        optimizer.load_state_dict(ckpt.optimizer_state)
        train_seconds = resume.get("train_seconds", 0.0)
        tokens_seen = resume.get("tokens_seen", 0)
        best_loss = resume.get("best_loss", float("inf"))
        bad_evals = resume.get("bad_evals", 0)
        guard_start = resume.get("guard_start")
        init_valid = resume.get("init_valid")
        data.load_state_dict(resume["data"])
        if "fim_rng" in resume:
            fim_rng.bit_generator.state = resume["fim_rng"][d.rank % len(resume["fim_rng"])]
        torch.set_rng_state(resume["torch_rng"][d.rank % len(resume["torch_rng"])])
        if device.type == "cuda" and resume.get("cuda_rng"):  # dropout masks on the GPU come from its own RNG
            torch.cuda.set_rng_state(resume["cuda_rng"][d.rank % len(resume["cuda_rng"])], device)
    else:
        torch.manual_seed(cfg.seed + d.rank)  # dropout noise differs between ranks
    raw_model = model
    if d.world > 1:
        from torch.nn.parallel import DistributedDataParallel
        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None

    # ---- batches: random windows (or streams), FIM-rewritten, made ahead in a thread on CUDA
    def generators() -> dict:  # what a resumed run needs to make the same batches next
        return {"data": data.state_dict(), "fim_rng": [fim_rng.bit_generator.state]}

    def make_batch():
        batch, reset = data.next()
        target_mask = None
        if cfg.fim_rate > 0:
            batch, target_mask = fim_rows(batch, tokenizer, fim_rng, cfg.fim_rate, cfg.fim_spm)
        return (batch, target_mask, reset), generators()
    prefetch = cfg.prefetch if cfg.prefetch >= 0 else (2 if device.type == "cuda" else 0)
    batches = Prefetcher(make_batch, generators(), prefetch)

    tracker = Tracker(cfg, enabled=d.main and cfg.track)
    if d.main:
        budget = f"{cfg.steps} steps" if cfg.steps > 0 else f"{cfg.minutes:g} minutes"
        print(f"{model_config.arch}: {raw_model.num_params() / 1e6:.2f}M parameters, vocab {tokenizer.vocab_size}, "
              f"train {len(train_tokens):,} tokens, valid {validation.n_targets:,} tokens "
              f"({validation.chars / validation.n_targets:.2f} chars/token), device {device} x{d.world}, "
              f"{precision}, threads {torch.get_num_threads()}, prefetch {prefetch}, "
              f"{'streams' if stream else 'random windows'}, "
              f"budget {budget}, from step {step}"
              + (f", init {cfg.init}" if init_ckpt is not None else "")
              + (f", replay {data.n_replay}/{cfg.batch_size * d.world} rows from {cfg.replay}"
                 if isinstance(data, MixedWindows) else ""), flush=True)

    # ---- SIGINT / SIGTERM: finish the current step, save, exit
    stop_signal = []

    def on_signal(signum, frame):
        stop_signal.append(signum)
    previous_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def checkpoint(path: Path, metrics: dict | None = None):
        meta = {"arch": model_config.arch, "params": raw_model.num_params(), "train_seconds": train_seconds,
                "tokens_seen": tokens_seen, "world_size": d.world, "device": str(device),
                "precision": precision, "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                "chars_per_token": validation.chars / validation.n_targets}
        if metrics:
            meta.update({f"valid_{k}": v for k, v in metrics.items()})
        if init_valid is not None:
            meta.update({f"init_valid_{k}": v for k, v in init_valid.items()})
        resume_state = {"train_seconds": train_seconds, "tokens_seen": tokens_seen, "best_loss": best_loss,
                        "bad_evals": bad_evals, "guard_start": guard_start, "init_valid": init_valid,
                        **batches.state, "torch_rng": [torch.get_rng_state()],
                        "cuda_rng": [torch.cuda.get_rng_state(device)] if device.type == "cuda" else []}
        save_checkpoint(path, raw_model, model_config, tokenizer, optimizer=optimizer, step=step,
                        train_config=asdict(cfg), meta=meta, resume=resume_state)

    def progress() -> float:
        return step / cfg.steps if cfg.steps > 0 else train_seconds / (cfg.minutes * 60)

    def evaluate_and_save(final: bool):
        nonlocal best_loss, bad_evals, guard_start, init_valid
        metrics = validation(raw_model, device, precision)
        if init_ckpt is not None and step == 0 and init_valid is None:
            init_valid = {"loss": metrics["loss"], "bpc": metrics["bpc"]}
        kept = True  # the guard: a model that forgot more than guard_rise of the start's loss is never best
        guard_note = ""
        if guard is not None:
            metrics["guard_loss"] = guard(raw_model, device, precision)["loss"]
            if guard_start is None:
                guard_start = metrics["guard_loss"]
            rise = metrics["guard_loss"] / guard_start - 1
            kept = rise <= cfg.guard_rise
            guard_note = f", guard loss {metrics['guard_loss']:.4f} ({rise:+.1%}{'' if kept else ': too much forgotten'})"
        say = bar.write if bar is not None else print
        say(f"step {step}: valid loss {metrics['loss']:.4f}, {metrics['bpc']:.3f} bits/char, "
              f"accuracy {metrics['accuracy']:.3f}{guard_note} ({train_seconds / 60:.1f} min, {tokens_seen:,} tokens)",
              **({} if bar is not None else {"flush": True}))
        if cfg.sample_tokens > 0:
            say("sample: " + repr(sample(raw_model, tokenizer, device, cfg.sample_tokens)))
        tracker.save(step, {f"valid.{k}": v for k, v in metrics.items()})
        if metrics["loss"] < best_loss and kept:
            best_loss = metrics["loss"]
            bad_evals = 0
            checkpoint(best_path, metrics)
        else:
            bad_evals += 1
        if final and not best_path.exists():
            checkpoint(best_path, metrics)
        return metrics

    # ---- progress bar (rank 0): steps or seconds of the budget, with the ETA tqdm estimates
    bar = None
    if d.main and cfg.progress_bar:
        from tqdm import tqdm
        total = cfg.steps if cfg.steps > 0 else int(cfg.minutes * 60)
        bar = tqdm(total=total, unit="step" if cfg.steps > 0 else "s", desc="training", dynamic_ncols=True,
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f}{unit} "
                              "[{elapsed}<{remaining}{postfix}]", mininterval=1.0)
        bar.update(min(total, step if cfg.steps > 0 else int(train_seconds)))

    # ---- with --init: the starting model's validation is the mark to beat (best.pt never gets worse)
    if d.main and init_ckpt is not None and step == 0:
        evaluate_and_save(final=False)
        bad_evals = 0

    # ---- the loop
    state = None
    last_save = time.monotonic()
    window_start, window_tokens, loss_sum, loss_count = time.monotonic(), 0, 0.0, 0
    recent_losses: list[float] = []  # the last log_every training losses (reported at the end)
    exit_signal = None
    metrics = None
    try:
        while True:
            # One decision for all ranks: stop on budget or signal; the time-based progress is rank 0's max.
            prog, stop = all_reduce_max([progress(), float(bool(stop_signal))], d)
            if stop:
                exit_signal = stop_signal[0] if stop_signal else signal.SIGTERM
                break
            if prog >= 1.0:
                break
            if cfg.patience > 0 and all_reduce_max([float(bad_evals)], d)[0] >= cfg.patience:
                if d.main:
                    (bar.write if bar is not None else print)(
                        f"early stop at step {step}: {bad_evals} validations without a new best "
                        f"(best valid loss {best_loss:.4f})")
                break
            t0 = time.monotonic()
            lr = learning_rate(cfg, step, prog)
            for group in optimizer.param_groups:
                group["lr"] = lr

            batch, target_mask, reset = batches.next()
            x, y = to_tensor(batch, device)
            if target_mask is not None and not target_mask.all():
                y = y.masked_fill(~torch.from_numpy(target_mask).to(device), -1)  # padding: no loss
            if reset or not carry_state:
                state = None
            with autocast_context(device, precision):
                logits, state = model(x, state)
                loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-1)
            state = map_state(torch.Tensor.detach, state) if carry_state else None
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)

            step += 1
            train_seconds += time.monotonic() - t0
            tokens_seen += x.numel() * d.world
            window_tokens += x.numel() * d.world
            loss_sum += loss.item()
            loss_count += 1
            recent_losses = (recent_losses + [loss.item()])[-cfg.log_every:]
            if bar is not None:
                bar.update((1 if cfg.steps > 0 else max(0, min(bar.total, int(train_seconds)) - bar.n)))
                bar.set_postfix_str(f"loss {loss.item():.3f}, best valid {best_loss:.3f}", refresh=False)

            if d.main and (step % cfg.log_every == 0) and bar is None:
                elapsed = time.monotonic() - window_start
                tok_s = window_tokens / max(elapsed, 1e-9)
                print(f"step {step} [{100 * min(progress(), 1):5.1f}%] loss {loss_sum / loss_count:.4f} "
                      f"lr {lr:.2e} grad {grad_norm.item():.2f} {tok_s:,.0f} tok/s", flush=True)
                tracker.save(step, {"loss.train": loss_sum / loss_count, "lr": lr, "tokens_per_s": tok_s})
                window_start, window_tokens, loss_sum, loss_count = time.monotonic(), 0, 0.0, 0
            if d.main and cfg.eval_every > 0 and step % cfg.eval_every == 0:
                metrics = evaluate_and_save(final=False)
            if d.main and time.monotonic() - last_save >= cfg.checkpoint_minutes * 60:
                checkpoint(last_path, metrics)
                last_save = time.monotonic()
        # ---- the end (budget or signal): final validation on a finished budget, then last.pt
        final_loss = all_reduce_mean(sum(recent_losses) / max(len(recent_losses), 1), d)
        if d.main:
            if exit_signal is None and not (cfg.eval_every > 0 and step % cfg.eval_every == 0 and metrics):
                metrics = evaluate_and_save(final=True)
            checkpoint(last_path, metrics)
            if bar is not None:
                bar.close()
            print(f"saved {last_path} at step {step} (final train loss {final_loss:.6f})"
                  + (f" after signal {exit_signal}" if exit_signal else ""), flush=True)
    finally:
        batches.close()
        for s, h in previous_handlers.items():
            signal.signal(s, h)
        if d.world > 1:
            import torch.distributed as dist
            dist.barrier()
            dist.destroy_process_group()
    if exit_signal is not None:
        sys.exit(128 + int(exit_signal))
    return out


# ----------------------------------------------------------------------------------------------------------

def parse_args(argv=None) -> TrainConfig:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default=defaults.data, help="data folder (holding corpus/) from `python -m dataset build`")
    p.add_argument("--model", default=defaults.model, choices=ARCHS)
    p.add_argument("--d-model", type=int, default=defaults.d_model)
    p.add_argument("--layers", type=int, default=defaults.layers)
    p.add_argument("--heads", type=int, default=defaults.heads)
    p.add_argument("--d-ff", type=int, default=defaults.d_ff, help="0: 4 * d_model")
    p.add_argument("--seq-len", type=int, default=defaults.seq_len)
    p.add_argument("--mem-len", type=int, default=defaults.mem_len, help="Transformer-XL memory; 0: seq_len")
    p.add_argument("--rhn-depth", type=int, default=defaults.rhn_depth)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size, help="per process")
    p.add_argument("--steps", type=int, default=defaults.steps, help="step budget; 0: use --minutes")
    p.add_argument("--minutes", type=float, default=defaults.minutes, help="wall-clock budget if --steps is 0")
    p.add_argument("--lr", type=float, default=defaults.lr)
    p.add_argument("--min-lr-ratio", type=float, default=defaults.min_lr_ratio)
    p.add_argument("--warmup", type=int, default=defaults.warmup)
    p.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    p.add_argument("--dropout", type=float, default=defaults.dropout)
    p.add_argument("--attn-dropout", type=float, default=defaults.attn_dropout,
                   help="dropout of the attention weights; < 0: the same as --dropout (0 on a CPU: the fused "
                        "attention kernel runs, ~1.35x faster steps)")
    p.add_argument("--grad-clip", type=float, default=defaults.grad_clip)
    p.add_argument("--eval-every", type=int, default=defaults.eval_every, help="steps; 0: only at the end")
    p.add_argument("--eval-tokens", type=int, default=defaults.eval_tokens, help="0: the whole valid split")
    p.add_argument("--checkpoint-minutes", type=float, default=defaults.checkpoint_minutes)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--out", default=defaults.out, help="run folder for last.pt and best.pt")
    p.add_argument("--resume", action="store_true", help="continue from RUNDIR/last.pt if it exists")
    p.add_argument("--threads", type=int, default=defaults.threads, help="torch CPU threads; 0: default")
    p.add_argument("--precision", default=defaults.precision, choices=["auto", "fp32", "bf16"])
    p.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                   help="contiguous streams with state carried between steps (default: on for transformer_xl)")
    p.add_argument("--sample-tokens", type=int, default=defaults.sample_tokens)
    p.add_argument("--log-every", type=int, default=defaults.log_every)
    p.add_argument("--init", default=defaults.init, metavar="CKPT",
                   help="start from this checkpoint (its weights, architecture and tokenizer; the corpus must be "
                        "encoded with that tokenizer); --model/--d-model/... are then ignored")
    p.add_argument("--replay", default=defaults.replay, metavar="DIR",
                   help="data folder of a second corpus (same tokenizer) mixed into every batch")
    p.add_argument("--replay-fraction", type=float, default=defaults.replay_fraction,
                   help="fraction of each batch drawn from --replay")
    p.add_argument("--patience", type=int, default=defaults.patience,
                   help="stop after N validations without a new best valid loss (0: never)")
    p.add_argument("--guard", default=defaults.guard, metavar="DIR",
                   help="with --init: a corpus (same tokenizer) whose valid loss may rise at most --guard-rise")
    p.add_argument("--guard-rise", type=float, default=defaults.guard_rise,
                   help="largest relative rise of the guard's valid loss over step 0's for a new best.pt")
    p.add_argument("--fim-rate", type=float, default=defaults.fim_rate,
                   help="fraction of training documents rearranged for fill-in-the-middle (adds the FIM tokens)")
    p.add_argument("--fim-spm", type=float, default=defaults.fim_spm,
                   help="fraction of the FIM documents in suffix-prefix-middle order (the rest prefix-suffix-middle)")
    p.add_argument("--prefetch", type=int, default=defaults.prefetch,
                   help="batches made ahead in a thread while a step runs (-1: 2 on CUDA, 0 on the CPU)")
    p.add_argument("--progress-bar", action="store_true", help="a progress bar with ETA instead of log lines")
    args = p.parse_args(argv)
    return TrainConfig(**{f.name: getattr(args, f.name, getattr(defaults, f.name)) for f in fields(TrainConfig)})


def main(argv=None) -> int:
    cfg = parse_args(argv)
    try:
        out = train(cfg)
    except (FileNotFoundError, ValueError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk: save_checkpoint names the file; the one before it is untouched
        print(f"error: {e}", file=sys.stderr)
        return 1
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"done: {out / 'last.pt'}, {out / 'best.pt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
