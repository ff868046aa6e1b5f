"""The training loop of ``rdistill train``: AdamW with linear warmup and decay, gradient accumulation, mixed
precision on GPU, exact resume from checkpoints, and data parallelism under torchrun.

Every optimizer step's gradient is the mean of the per-query losses over the step's *global* batch: each micro-batch
contributes sum(per-query losses) / (queries in the step), and ranks sum their gradients. So a run on N processes
computes the same update as one process with the same batch (up to float rounding), and accumulation over k
micro-batches the same as one batch k times larger.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.distributed as dist

from rdistill import card
from rdistill.data import load_queries
from rdistill.distributed import World
from rdistill.docstore import DocStore
from rdistill.errors import InputError, Interrupted, UsageError
from rdistill.io import dumps, exclusive, source_name, write_text_atomic
from rdistill.meta import versions
from rdistill.models import progress, resolve_device, torch_checkpoint
from rdistill.training.data import Schedule, TrainGroup, group_sizes, read_groups, teacher_rows
from rdistill.training.losses import LOSSES, loss_names
from rdistill.training.students import Student, build_student

METADATA = "rdistill_train.json"
CHECKPOINT = "checkpoint"
# Arguments that may differ between an interrupted run and its resumption; all others must match exactly.
RESUME_FREE = {"resume", "stop_after", "checkpoint_every", "device", "out", "groups"}


@dataclass
class TrainConfig:
    model: str
    queries: str
    corpus: str
    out: str
    groups: str = "-"
    student: str = "cross"
    loss: str = "lce"
    temperature: float = 1.0
    alpha: float = 1.0  # --loss adrmse: the sigmoid's steepness in the student's approximate ranks
    # Multiplies the groups' teacher scores before any loss sees them. A bi-encoder teacher's cosines lie in
    # [-1, 1]: their margins are tiny and their softmax nearly flat, so MarginMSE and KL would distil almost
    # nothing from them; sentence-transformers trains such models with the cosines times 20, which is this knob.
    teacher_scale: float = 1.0
    group_size: int | None = None
    batch_size: int = 8
    grad_accum: int = 2
    lr: float = 1e-5
    weight_decay: float = 0.01
    warmup: float = 0.1
    max_grad_norm: float = 1.0
    max_steps: int | None = None
    epochs: int | None = None
    max_query_length: int = 30
    max_doc_length: int = 200
    init_layers: int | None = None
    pooling: str = "cls"
    in_batch_negatives: bool = False
    # Bi only: train the query tower alone against the initial model's document embeddings (rdistill.towers),
    # taken from the dense index in doc_index or from the shared cache.
    frozen_documents: bool = False
    doc_index: str | None = None
    seed: int = 42
    checkpoint_every: int = 0
    resume: bool = False
    stop_after: int | None = None
    device: str | None = None
    amp: str = "none"


@dataclass
class TrainResult:
    steps: int
    losses: list[float] = field(default_factory=list)
    pairs_per_second: float = 0.0
    seconds: float = 0.0
    finished: bool = True


# ------------------------------------------------------------------------------------------------ distributed


def _setup_device(config: TrainConfig, world: World) -> torch.device:
    """The device this rank trains on, and the process group under torchrun (one GPU per local rank)."""
    device = resolve_device(config.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {config.device}: no GPU is visible to PyTorch here")
    if world.launched:
        if device.type == "cuda":
            device = torch.device(world.gpu())
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        from rdistill.io import is_stream

        if is_stream(config.groups):
            raise UsageError("under torchrun give the groups as a file, not stdin or a pipe (every rank reads it)")
    if config.amp != "none" and device.type != "cuda":
        raise UsageError(f"--amp {config.amp} needs a GPU (--device cuda); on the CPU train in fp32")
    return device


def _all_reduce_grads(params: list[torch.nn.Parameter], world: int) -> None:
    """Sum gradients over ranks in one flat buffer. A parameter no rank used keeps grad None (AdamW then leaves it
    alone, exactly as in a single process); one used elsewhere but not here counts as zero."""
    if world == 1:
        return
    used = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=params[0].device)
    dist.all_reduce(used)
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for p, flag in zip(params, used.tolist(), strict=True):
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone() if flag > 0 else None
        offset += n


# ------------------------------------------------------------------------------------------------ checkpoints


def _rng_state() -> dict[str, Any]:
    """Every generator's state as tensors, ints and strings only, so the checkpoint loads with weights_only=True
    (numpy's own state holds an ndarray, which that loader refuses)."""
    name, key, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {"torch": torch.get_rng_state(),
                             "numpy": [str(name), torch.from_numpy(np.asarray(key, dtype=np.int64)), int(pos),
                                       int(has_gauss), float(cached)],
                             "python": [int(version), torch.tensor(internal, dtype=torch.int64), gauss]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(int(x) for x in internal.tolist()), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class _Optimiser(NamedTuple):
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.AdamW
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler


def _optimiser(model: torch.nn.Module, config: TrainConfig, total_steps: int) -> _Optimiser:
    """AdamW over the trainable parameters, linear warmup then linear decay to 0, and fp16's loss scaler."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    warmup = math.ceil(config.warmup * total_steps)

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    scaler = torch.amp.GradScaler("cuda", enabled=config.amp == "fp16")
    return _Optimiser(params, optimizer, scheduler, scaler)


def _checkpoint_state(model: torch.nn.Module, opt: _Optimiser, step: int, position: int, losses: list[float],
                      seconds: float, pairs: int, fingerprint: dict[str, Any]) -> dict[str, Any]:
    """Everything a --resume needs besides each rank's random state (saved by :func:`_save_checkpoint`)."""
    return {"model": model.state_dict(), "optimizer": opt.optimizer.state_dict(),
            "scheduler": opt.scheduler.state_dict(), "scaler": opt.scaler.state_dict(), "step": step,
            "position": position, "losses": losses, "seconds": seconds, "pairs": pairs, "fingerprint": fingerprint}


def _fingerprint(config: TrainConfig, data_sha: str, world: int) -> dict[str, Any]:
    args = {k: v for k, v in asdict(config).items() if k not in RESUME_FREE}
    return {**args, "groups_sha256": data_sha, "world_size": world}


def _save_checkpoint(out: Path, rank: int, state: dict[str, Any], world: int) -> None:
    """Write the checkpoint into a fresh folder, then swap it in, so a crash mid-write leaves the previous one."""
    tmp = out / f"{CHECKPOINT}.tmp"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    if world > 1:
        dist.barrier()
    torch.save(_rng_state(), tmp / f"rng-{rank}.pt")
    if rank == 0:
        torch.save(state, tmp / "state.pt")
    if world > 1:
        dist.barrier()
    if rank == 0:
        final = out / CHECKPOINT
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    if world > 1:
        dist.barrier()


def _load_checkpoint(out: Path, rank: int, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    folder = out / CHECKPOINT
    if not (folder / "state.pt").exists():
        print(f"rdistill train: no checkpoint in {folder}; starting from the beginning", file=sys.stderr)
        return None
    state = _load_data(folder / "state.pt")
    if not isinstance(state, dict) or not isinstance(state.get("fingerprint"), dict):
        raise UsageError(f"{folder / 'state.pt'}: not an rdistill training checkpoint; delete {folder} or drop "
                         "--resume")
    differ = sorted(k for k in set(fingerprint) | set(state["fingerprint"])
                    if fingerprint.get(k) != state["fingerprint"].get(k))
    if differ:
        raise UsageError(f"--resume: the checkpoint in {folder} was made with other arguments or data "
                         f"({', '.join(differ)}); use the same ones, or drop --resume to start again")
    state["rng"] = _load_data(folder / f"rng-{rank}.pt")
    return state


def _load_data(path: Path) -> Any:
    """A checkpoint file as data: tensors, numbers, strings and containers only. weights_only=True refuses any
    other pickled object, so a crafted checkpoint cannot run code on --resume."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UsageError(f"{path}: missing from the checkpoint; delete {path.parent} or drop --resume") from None
    except Exception as exc:  # noqa: BLE001 - corrupt zip, refused global, truncated file: all the same to the user
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{path}: not a readable checkpoint of plain data ({reason}); delete {path.parent} or drop "
                         "--resume") from None


# ------------------------------------------------------------------------------------------------------ checks


def _check(config: TrainConfig) -> None:
    if config.loss not in LOSSES:
        raise UsageError(f"--loss {config.loss!r}: expected one of {', '.join(LOSSES)}")
    if config.student not in ("cross", "bi"):
        raise UsageError(f"--student {config.student!r}: expected cross or bi")
    if config.in_batch_negatives and (config.student != "bi" or not LOSSES[config.loss].in_batch):
        raise UsageError(f"--in-batch-negatives needs --student bi and --loss {loss_names(lambda row: row.in_batch)}")
    if (config.frozen_documents or config.doc_index) and config.student != "bi":
        raise UsageError("--frozen-documents needs --student bi (a cross-encoder has no document tower)")
    if config.doc_index and not config.frozen_documents:
        raise UsageError("--doc-index is where --frozen-documents takes the document embeddings from; give both")
    if config.max_steps is not None and config.epochs is not None:
        raise UsageError("give --max-steps or --epochs, not both")
    if config.amp not in ("none", "bf16", "fp16"):
        raise UsageError(f"--amp {config.amp!r}: expected none, bf16 or fp16")
    # Every float option up front: a nan or a negative rate would only show as a broken model at the end.
    # --lr 0 is allowed: `make demo` saves the untrained student that way (one step that changes nothing).
    for flag, value, low, high in (("--lr", config.lr, None, 1.0), ("--temperature", config.temperature, 0.0, None),
                                   ("--alpha", config.alpha, 0.0, None),
                                   ("--weight-decay", config.weight_decay, None, None),
                                   ("--max-grad-norm", config.max_grad_norm, None, None)):
        if not math.isfinite(value):
            raise UsageError(f"{flag} {value}: expected a finite number")
        if low is not None and value <= low:
            raise UsageError(f"{flag} {value}: expected a number above {low:g}")
        if high is not None and value > high:
            raise UsageError(f"{flag} {value}: expected at most {high:g} (AdamW rates are around 1e-5 to 1e-3; "
                             "larger ones make the loss overflow)")
    if config.lr < 0 or config.weight_decay < 0 or config.max_grad_norm < 0:
        raise UsageError("--lr, --weight-decay and --max-grad-norm must not be negative")
    if not (math.isfinite(config.warmup) and 0 <= config.warmup <= 1):
        raise UsageError(f"--warmup {config.warmup}: expected a fraction of the steps, from 0 to 1")
    if config.pooling not in ("cls", "mean"):
        raise UsageError(f"--pooling {config.pooling!r}: expected cls or mean")
    if not (config.teacher_scale > 0 and math.isfinite(config.teacher_scale)):
        raise UsageError("--teacher-scale must be a positive finite number")
    if config.group_size is not None and config.group_size < 2:
        raise UsageError("--group-size must be at least 2 (a positive and a negative)")


def _prepare_out(out: Path, resume: bool) -> None:
    """Refuse to replace a folder that is not ours: the final model swaps the whole folder in."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    if out.is_dir():
        entries = {p.name for p in out.iterdir()}
        if entries and METADATA not in entries and not entries <= {CHECKPOINT, f"{CHECKPOINT}.tmp"}:
            raise UsageError(f"--out {out}: a folder with other files in it; give a new or empty folder")


def _check_texts(groups: list[TrainGroup], queries: dict[str, str], store: DocStore, name: str) -> None:
    for group in groups:
        if group.query_id not in queries:
            raise InputError(name, group.line, f"query {group.query_id!r} is not in --queries")
        for doc_id in group.doc_ids:
            if doc_id not in store:
                raise InputError(name, group.line, f"document {doc_id!r} is not in --corpus")


# -------------------------------------------------------------------------------------------------------- train


class _Batches(NamedTuple):
    """What one training step reads: the groups, their texts, the schedule and this process's place."""

    groups: list[TrainGroup]
    queries: dict[str, str]
    store: DocStore
    schedule: Schedule
    world: World
    device: torch.device
    pool: dict[str, dict[str, float]]  # every teacher score by query and document (in-batch negatives' scores)


def _train_step(step: int, student: Student, model: torch.nn.Module, opt: _Optimiser, data: _Batches,
                config: TrainConfig) -> tuple[float, int]:
    """One optimizer step over the step's global batch: (its mean per-query loss, this rank's pairs scored)."""
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.amp)
    loss = LOSSES[config.loss]
    device, world = data.device, data.world
    micro_batches = data.schedule.step(step)
    n_step = sum(len(mb) for mb in micro_batches)
    step_loss = torch.zeros((), device=device)
    pairs = 0
    for micro in micro_batches:
        mine = [data.groups[i] for i in Schedule.share(micro, world.rank, world.size)]
        if not mine:
            continue
        texts = ([[data.store.text(d) for d in g.doc_ids] for g in mine] if student.needs_texts
                 else [[] for _ in mine])
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            s, mask = student.group_scores(model, [data.queries[g.query_id] for g in mine], texts, device,
                                           config.in_batch_negatives, [g.doc_ids for g in mine])
        t = None
        if loss.needs_teacher:
            rows = teacher_rows(mine, s.shape[1], config.in_batch_negatives, data.pool)
            t = torch.tensor(rows, dtype=torch.float32, device=device) * config.teacher_scale
        per_query = loss(s.float(), t, mask, config.temperature,
                         **{option: getattr(config, option) for option in loss.options})
        opt.scaler.scale(per_query.sum() / n_step).backward()
        step_loss += per_query.detach().sum()
        pairs += int(mask.sum())
    _all_reduce_grads(opt.params, world.size)
    if world.launched:
        dist.all_reduce(step_loss)
    opt.scaler.unscale_(opt.optimizer)
    step_value = float(step_loss) / n_step
    total = data.schedule.steps
    if not math.isfinite(step_value):
        raise _diverged(step + 1, total, "loss", step_value, config, Path(config.out), data.groups)
    if config.max_grad_norm > 0:
        norm = float(torch.nn.utils.clip_grad_norm_(opt.params, config.max_grad_norm))
    else:
        norm = float(torch.linalg.vector_norm(torch.stack(
            [torch.linalg.vector_norm(p.grad) for p in opt.params if p.grad is not None] or [torch.zeros(())])))
    # Under fp16 the scaler skips steps with inf gradients itself; anywhere else one would poison the weights.
    if not math.isfinite(norm) and config.amp != "fp16":
        raise _diverged(step + 1, total, "gradient norm", norm, config, Path(config.out), data.groups)
    opt.scaler.step(opt.optimizer)
    opt.scaler.update()
    opt.scheduler.step()
    opt.optimizer.zero_grad(set_to_none=True)
    return step_value, pairs


def train(config: TrainConfig) -> TrainResult:
    """Train a student as ``config`` says and write it to ``config.out`` (rank 0 only under torchrun)."""
    _check(config)
    # One job per --out: a second one would interleave checkpoints and model swaps. Ranks of one torchrun job
    # share the folder, so only rank 0 holds the lock.
    with exclusive(config.out) if World.from_env().rank == 0 else contextlib.nullcontext():
        try:
            return _train(config)
        except KeyboardInterrupt:  # one line: what was kept and how to go on
            folder = Path(config.out) / CHECKPOINT
            raise Interrupted("interrupted; " + (
                f"the last checkpoint is kept in {folder}: the same command with --resume continues from it"
                if (folder / "state.pt").exists() else
                "no checkpoint had been written (--checkpoint-every), so nothing was kept")) from None


def _check_float32(groups: list[TrainGroup], scale: float, name: str) -> None:
    """Teacher scores are finite in float64 when read, but training multiplies them by --teacher-scale in float32:
    1e39 becomes inf there and every loss nan."""
    limit = float(np.finfo(np.float32).max)
    for group in groups:
        for score in group.scores or ():
            if abs(score * scale) > limit:
                raise InputError(name, group.line, f"teacher score {score!r} (times --teacher-scale {scale:g}) "
                                 "overflows float32, in which training computes; rescale the scores")


class Diverged(UsageError):
    """A non-finite loss or gradient: training stops before the optimizer applies it."""


def _diverged(step: int, total: int, what: str, value: float, config: TrainConfig, out: Path,
              groups: list[TrainGroup]) -> Diverged:
    if config.lr > 1e-3:
        cause = f"--lr {config.lr:g} is too high for AdamW (try 1e-5 to 1e-4)"
    elif LOSSES[config.loss].needs_teacher and max(
            (abs(x) * config.teacher_scale for g in groups for x in g.scores or ()), default=0.0) > 1e4:
        cause = "the teacher scores (times --teacher-scale) are very large; scale them down"
    elif config.amp == "fp16":
        cause = "fp16 overflow; try --amp bf16 or none"
    else:
        cause = "try a lower --lr, a smaller --teacher-scale or --temperature closer to 1"
    folder = out / CHECKPOINT
    kept = (f"; the last good checkpoint is kept in {folder} (--resume continues from it)"
            if (folder / "state.pt").exists() else "")
    return Diverged(f"step {step} of {total}: the {what} is not finite ({value}); likely cause: {cause}. "
                    f"No model was written{kept}")


def _train(config: TrainConfig) -> TrainResult:
    world = World.from_env()
    rank = world.rank
    device = _setup_device(config, world)
    out = Path(config.out)
    _prepare_out(out, config.resume)

    name = source_name(config.groups)
    pool: dict[str, dict[str, float]] = {}
    groups, data_sha = read_groups(config.groups, config.group_size, config.seed,
                                   need_scores=LOSSES[config.loss].needs_teacher, loss=config.loss,
                                   kinds=LOSSES[config.loss].kinds,
                                   pool=pool if config.in_batch_negatives else None)
    queries = load_queries(config.queries)
    store = DocStore(config.corpus)
    _check_texts(groups, queries, store, name)  # content errors first: they name the line to fix
    sizes = group_sizes(groups, config.group_size, name, quiet=rank != 0)
    if LOSSES[config.loss].needs_teacher:
        _check_float32(groups, config.teacher_scale, name)

    if config.max_steps is not None:
        total_queries = config.max_steps * config.batch_size * config.grad_accum
    else:
        total_queries = (config.epochs or 1) * len(groups)
    schedule = Schedule(len(groups), config.batch_size, config.grad_accum, config.seed, total_queries)
    total_steps = schedule.steps

    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)  # a new classification head starts from the same weights for the same seed
    student = build_student(config.student, torch_checkpoint(config.model), config.init_layers,  # type: ignore[arg-type]
                            config.max_query_length, config.max_doc_length, config.pooling,  # type: ignore[arg-type]
                            config.model if config.frozen_documents else None, config.corpus, config.doc_index)
    model = student.model.to(device)
    model.train()
    opt = _optimiser(model, config, total_steps)
    fingerprint = _fingerprint(config, data_sha, world.size)

    start_step, losses, trained_seconds, trained_pairs = 0, [], 0.0, 0
    if config.resume:
        state = _load_checkpoint(out, rank, fingerprint)
        if state is not None:
            model.load_state_dict(state["model"])
            opt.optimizer.load_state_dict(state["optimizer"])
            opt.scheduler.load_state_dict(state["scheduler"])
            opt.scaler.load_state_dict(state["scaler"])
            start_step, losses = state["step"], state["losses"]
            trained_seconds, trained_pairs = state["seconds"], state["pairs"]
            _set_rng_state(state["rng"])

    data = _Batches(groups, queries, store, schedule, world, device, pool)
    stop = total_steps if config.stop_after is None else min(total_steps, config.stop_after)
    bar = progress(total_steps, "training", "step") if rank == 0 else None
    if bar is not None:
        bar.update(start_step)
    started = time.perf_counter()
    pairs_here = 0
    for step in range(start_step, stop):
        step_loss, pairs = _train_step(step, student, model, opt, data, config)
        losses.append(step_loss)
        pairs_here += pairs
        if bar is not None:
            elapsed = time.perf_counter() - started
            bar.set_postfix(loss=f"{losses[-1]:.4f}", pairs_s=f"{pairs_here * world.size / max(elapsed, 1e-9):.0f}")
            bar.update(1)
        done = step + 1
        if config.checkpoint_every and done % config.checkpoint_every == 0 and done < total_steps:
            elapsed = time.perf_counter() - started
            _save_checkpoint(out, rank, _checkpoint_state(
                model, opt, done, min(done * schedule.per_step, total_queries), losses, trained_seconds + elapsed,
                trained_pairs + pairs_here * world.size, fingerprint), world.size)
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - started
    result = TrainResult(steps=stop, losses=losses, seconds=trained_seconds + elapsed,
                         pairs_per_second=pairs_here * world.size / max(elapsed, 1e-9), finished=stop == total_steps)
    if not result.finished:
        if config.checkpoint_every == 0 or stop % config.checkpoint_every:
            _save_checkpoint(out, rank, _checkpoint_state(
                model, opt, stop, stop * schedule.per_step, losses, result.seconds,
                trained_pairs + pairs_here * world.size, fingerprint), world.size)
        if rank == 0:
            print(f"rdistill train: stopped after step {stop} of {total_steps}; continue with --resume",
                  file=sys.stderr)
    elif rank == 0:
        _write_model(student, out, config, data_sha, world.size, total_steps, result, len(groups), sizes)
        first = f"{losses[0]:.4f} -> " if losses else ""
        print(f"rdistill train: {total_steps} steps, loss {first}{losses[-1]:.4f}, "
              f"{result.pairs_per_second:.1f} pairs/s; wrote {out}", file=sys.stderr)
    if world.launched:
        dist.barrier()
    return result


def _write_model(student: Student, out: Path, config: TrainConfig, data_sha: str, world: int, steps: int,
                 result: TrainResult, n_groups: int, sizes: dict[str, int]) -> None:
    """Write the model folder beside ``out`` and swap it in whole, so ``out`` never holds half a model."""
    tmp = out.parent / f".{out.name}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    student.save(tmp)
    record = {"command": sys.argv, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "arguments": asdict(config), "seed": config.seed, "student": student.kind,
              "loss_formula": LOSSES[config.loss].formula,
              "groups": source_name(config.groups), "groups_sha256": data_sha, "groups_count": n_groups,
              "group_sizes": sizes,  # documents per group as trained, whatever --group-size asked
              "world_size": world, "steps": steps, "final_loss": result.losses[-1] if result.losses else None,
              "losses": result.losses, "seconds": round(result.seconds, 3),
              "pairs_per_second": round(result.pairs_per_second, 2), "versions": versions(),
              "provenance": card.provenance(config.groups)}
    write_text_atomic(tmp / METADATA, dumps(record) + "\n")
    card.write_card(tmp, out.name)  # README.md: the model card, from the record just written
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
