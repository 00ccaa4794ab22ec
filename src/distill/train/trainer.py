"""The one training loop: teacher training, the baseline student and distillation all run here.

The trainer knows the method contract (needs -> outputs -> dict of losses), not the methods.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from distill import distributed as dist
from distill.checkpoint import (
    describe_model,
    flatten_optimizer,
    load_checked,
    load_tensors,
    save_tensors,
    state_mismatch,
    unflatten_optimizer,
)
from distill.config.schema import TrainConfig
from distill.data.batches import BatchSource
from distill.data.lm_data import lm_batch
from distill.errors import CheckpointError, ConfigError, NonFiniteLossError
from distill.evaluate.lm_metrics import lm_validation
from distill.io import atomic_write_text
from distill.knowledge.taps import Taps
from distill.methods.base import Method
from distill.models.causal_lm import is_causal_lm
from distill.models.predict import input_preparer, predict, uses_conv  # noqa: F401  (input_preparer: old home)
from distill.rundir import append_missing_records
from distill.train import fsdp
from distill.train.fast import autocast, compiled, grad_scaler
from distill.train.label_loss import label_loss, labelled_rows
from distill.train.progress import NullProgress
from distill.train.running_loss import RunningLoss
from distill.train.schedule import build_optimizer, learning_rate, planned_epochs
from distill.train.validation import SELECTION, selection_score, validation_metrics
from distill.types import Batch, Outputs

TeacherFn = Callable[[Batch], Outputs]
EpochCallback = Callable[["Trainer", dict], None]


@dataclass
class FitResult:
    name: str
    best_epoch: int
    best_val_accuracy: float
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def probe_method(method: Method, model: nn.Module, teacher: TeacherFn | None, inputs: Tensor,
                 prepare: Callable[[Tensor], Tensor] = lambda x: x, targets: Tensor | None = None) -> None:
    """One forward pass on two samples so a method can size its adapters and check layer shapes.

    A causal LM needs the samples' ``targets`` too: its head runs at their loss positions only.
    """
    x = inputs[:2]
    needs = method.needs()
    lm = is_causal_lm(model)
    if lm and targets is None:
        raise ValueError("probing a causal LM needs the samples' targets (its loss positions)")
    batch = (lm_batch(x, targets[:2].to(x.device)) if lm else
             Batch(inputs=x, targets=torch.zeros(len(x), dtype=torch.long, device=x.device)))
    with Taps(model, needs.student_modules, "student") as taps, torch.no_grad():
        was_training = model.training
        model.eval()
        try:
            logits = model(batch.inputs, batch.targets) if lm else model(prepare(x))
            student = Outputs(logits, taps.pop())
        finally:
            model.train(was_training)
    method.setup(student, teacher(batch) if needs.teacher else None)


class TrainStep(nn.Module):
    """The student and the method's trainable parts as one module: its forward is a training step's losses.

    Under torchrun it is wrapped in one DistributedDataParallel, which averages the gradients of
    the student and of the method's adapters alike. ``forward_model`` is the student's forward
    (compiled or plain; not registered, so parameters are not counted twice).
    """

    def __init__(self, model: nn.Module, method: Method, forward_model: nn.Module, prepare, device, precision: str,
                 task: str = "classification", label_weight: float = 0.0):
        super().__init__()
        self.model, self.method = model, method
        self.__dict__["forward_model"] = forward_model
        self.prepare, self.device, self.precision = prepare, device, precision
        self.task, self.label_weight = task, label_weight
        self.taps: Taps | None = None
        self.all_labelled = False  # set by the trainer from the training set: no per-step label mask then

    def forward(self, batch: Batch, teacher: Outputs | None) -> dict[str, Tensor]:
        with autocast(self.device, self.precision):
            if self.task == "causal_lm":  # (N, V) logits at the N loss positions (models/causal_lm.py)
                logits = self.forward_model(batch.inputs, batch.targets, batch.attention_mask)
            else:
                logits = self.forward_model(self.prepare(batch.inputs))
            student = Outputs(logits, self.taps.pop() if self.taps else {})
            losses = self.method.losses(student, teacher, batch)
            if self.label_weight and "hard" in losses:
                raise ConfigError(
                    f"method '{getattr(self.method, 'name', type(self.method).__name__)}' returned its own label "
                    f"loss ('hard') and the trainer adds one too: return distillation terms only, or set the "
                    f"method's label_weight to 0")
            if self.label_weight:  # the one label term, owned here for every method (train/label_loss.py)
                label = label_loss(logits, batch.targets, self.task, self.method.label_loss,
                                   self.method.label_smoothing, all_labelled=self.all_labelled, view=batch.view)
                losses = {"label": self.label_weight * label, **losses}
            return {k: v.float() for k, v in losses.items()}


class MetricsLog:
    """Appends one JSON line per epoch per model to ``metrics.jsonl``."""

    def __init__(self, path: Path | None):
        self.path = path

    def write(self, record: dict) -> None:
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


class Trainer:
    def __init__(
        self,
        name: str,
        model: nn.Module,
        cfg: TrainConfig,
        method: Method,
        *,
        teacher: TeacherFn | None = None,
        seed: int = 0,
        device: torch.device | str = "cpu",
        checkpoint_dir: Path | None = None,
        metrics_log: MetricsLog | None = None,
        progress=None,
        channels_last: bool = True,
        model_meta: dict | None = None,
        eval_batch_size: int = 1000,
        callbacks: list[EpochCallback] | None = None,
        precision: str = "fp32",
        compile: bool = False,
        task: str = "classification",
        label_weight: float | None = None,
        log_every: int = 50,
        parallel: str = "ddp",
    ):
        self.name, self.cfg, self.method, self.seed = name, cfg, method, seed
        if task not in SELECTION:
            raise ValueError(f"task must be one of {', '.join(SELECTION)}, got '{task}'")
        self.task = task
        # The one weight of the label term: the method's (its official recipe's, or distill.label_weight).
        self.label_weight = float(method.label_weight if label_weight is None else label_weight)
        self.device = torch.device(device)
        # fsdp under torchrun: the model stays where it was built until fully_shard moves its shards to
        # the device (train/fsdp.py), so the whole student never has to fit there.
        self.sharded = parallel == "fsdp" and dist.active()
        self.model = model if self.sharded else model.to(self.device)
        self.plain: nn.Module | None = None  # fsdp: the unsharded structure the weights are gathered into
        self.method = method.to(self.device)
        self.needs = method.needs()
        if self.needs.teacher and teacher is None:
            raise ValueError(f"method '{getattr(method, 'name', method)}' needs a teacher but none was given")
        self.teacher = teacher
        self.prepare = input_preparer(model, channels_last)
        if channels_last and uses_conv(model):
            self.model.to(memory_format=torch.channels_last)
        self.checkpoint_dir = checkpoint_dir
        self.metrics_log = metrics_log or MetricsLog(None)
        self.progress = progress or NullProgress()
        self.model_meta = model_meta or {}
        self.eval_batch_size = eval_batch_size
        self.callbacks = list(callbacks or [])
        self.optimizer: torch.optim.Optimizer | None = None
        # The student's training forward, optionally compiled; self.model keeps the plain weights.
        self.forward = compiled(self.model, compile)
        self.precision, self.scaler = precision, grad_scaler(self.device, precision)
        # Steps between host syncs: the running loss totals stay on the device in between, and the
        # NaN guard looks at them then, so it stops within log_every steps of a non-finite loss.
        self.log_every = max(1, int(log_every))
        self.step_module: nn.Module | None = None
        self.probe_targets: Tensor | None = None
        self.epochs = cfg.epochs

    # -- checkpoints ---------------------------------------------------------------------------
    def _path(self, kind: str) -> Path | None:
        return self.checkpoint_dir / f"{self.name}-{kind}.safetensors" if self.checkpoint_dir else None

    def _save(self, state: dict, best: bool) -> None:
        if self.checkpoint_dir is None:
            return
        if self.sharded:  # every rank takes part in gathering the full tensors; rank 0 writes them
            weights, method_state = fsdp.full_model_state(self.model), fsdp.full_model_state(self.method)
            optimizer_state = fsdp.full_optimizer_state(self.optimizer)
        elif dist.is_main():
            weights, method_state = self.model.state_dict(), self.method.state_dict()
            optimizer_state = self.optimizer.state_dict()
        if not dist.is_main():
            return
        if best:
            save_tensors(self._path("best"), weights, {"model": self.model_meta, "epoch": state["epoch"]})
        optim_tensors, optim_plain = flatten_optimizer(optimizer_state)
        tensors = {f"model.{k}": v for k, v in weights.items()}
        tensors.update({f"method.{k}": v for k, v in method_state.items()})
        tensors.update(optim_tensors)
        save_tensors(self._path("last"), tensors,
                     {"model": self.model_meta, "trainer_state": state, "optimizer": optim_plain})
        atomic_write_text(self.checkpoint_dir / f"{self.name}-trainer-state.json", json.dumps(state, indent=1))

    def _restore(self) -> dict | None:
        path = self._path("last")
        if path is None or not path.is_file():
            return None
        tensors, meta = load_tensors(path)
        if "trainer_state" not in meta or "optimizer" not in meta:
            raise CheckpointError(f"--resume: {path} is not a resume checkpoint (no trainer state); delete it "
                                  f"to train {self.name} again")
        spec = meta.get("model")
        weights = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        method_state = {k[7:]: v for k, v in tensors.items() if k.startswith("method.")}
        optimizer_state = unflatten_optimizer(tensors, meta["optimizer"])
        if self.sharded:  # the full tensors (read by every rank) are cut into this rank's shards
            problem = state_mismatch(self.plain, weights)
            if problem:
                raise CheckpointError(f"checkpoint {path} (built for {describe_model(spec)}) does not fit the "
                                      f"{self.name} of this config: {problem}; give the model it was trained as")
            fsdp.load_full_model_state(self.model, weights)
            if method_state:
                fsdp.load_full_model_state(self.method, method_state)
            fsdp.load_full_optimizer_state(self.optimizer, optimizer_state)
        else:
            load_checked(self.model, weights, path, spec, f"the {self.name} of this config")
            if method_state:
                load_checked(self.method, method_state, path, spec, f"the {self.name}'s method parts")
            self.optimizer.load_state_dict(optimizer_state)
        state = meta["trainer_state"]
        if dist.is_main():  # an epoch whose checkpoint was written but whose metrics line was not (a kill)
            append_missing_records(self.metrics_log.path, self.name, state.get("history", []))
        return state

    def load_best(self) -> None:
        path = self._path("best")
        if path is not None and path.is_file():
            tensors, meta = load_tensors(path)
            load_checked(self.model, tensors, path, meta.get("model"), f"the {self.name} of this config")

    # -- training ------------------------------------------------------------------------------
    def _parameters(self) -> list[nn.Parameter]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        params += [p for p in self.method.parameters() if p.requires_grad]
        return params

    def _param_groups(self) -> list:
        """The parameters, or groups with their own ``lr_scale`` when the model has them (two-way pairs)."""
        if not hasattr(self.model, "param_groups"):
            return self._parameters()
        return [*self.model.param_groups(), {"params": [p for p in self.method.parameters() if p.requires_grad]}]

    def _step(self, batch: Batch) -> dict[str, Tensor]:
        teacher = self.teacher(batch) if self.needs.teacher else None
        if self.step_module is None:  # a step outside fit() (the loss tests): no DDP, no taps
            self.step_module = self._joint_module()
        return self.step_module(batch, teacher)

    def _joint_module(self) -> nn.Module:
        """Student + method as one module (after the probe has created the method's adapters), DDP-wrapped
        under torchrun; adapters a step may leave unused (none get gradients then) need find_unused_parameters."""
        step = TrainStep(self.model, self.method, self.forward, self.prepare, self.device, self.precision,
                         self.task, self.label_weight)
        if self.sharded:  # FSDP's own hooks gather the shards and reduce-scatter the gradients
            return step
        has_adapters = any(p.requires_grad for p in self.method.parameters())
        return dist.wrap(step, self.device, find_unused_parameters=has_adapters)

    def _sync(self, running: RunningLoss, epoch: int) -> None:
        bad = running.sync()
        if bad is None:
            return
        bad_step, value, terms = bad
        raise NonFiniteLossError(self._divergence(value, terms, epoch, bad_step))

    def _divergence(self, total: float, values: dict[str, float], epoch: int, step: int) -> str:
        """What the NaN guard says: the term to blame, and what is on disk (only what really is)."""
        worst = next((k for k, v in values.items() if not math.isfinite(v)),
                     max(values, key=lambda k: abs(values[k]), default="loss"))
        terms = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        last = self._path("last")
        if last is not None and last.is_file():
            done = json.loads((self.checkpoint_dir / f"{self.name}-trainer-state.json").read_text()).get("epoch", "?") \
                if (self.checkpoint_dir / f"{self.name}-trainer-state.json").is_file() else "?"
            kept = f"; the last good checkpoint (epoch {done}) is {last}"
        else:
            kept = f"; no checkpoint of {self.name} was written (it diverged in its first epoch)"
        weight = "" if worst in ("hard", "label", "ce", "supervised", "loss") else f"lower the weight of '{worst}', "
        return (f"{self.name}: loss became {total} at epoch {epoch + 1}, step {step + 1}: the largest term is "
                f"'{worst}' ({terms}){kept}; {weight}lower the learning rate (now {self.cfg.lr}) "
                f"or set train.grad_clip")

    def validate(self, inputs: Tensor, targets: Tensor) -> dict[str, float]:
        try:
            if self.task == "causal_lm":
                return lm_validation(self.model, inputs.to(self.device), targets.to(self.device), self.eval_batch_size)
            logits = predict(self.model, inputs.to(self.device), self.eval_batch_size, self.prepare)
            return validation_metrics(logits, targets, self.task)
        finally:
            if self.sharded:  # every rank validated the same samples in step; free the gathered weights
                fsdp.reshard(self.model)

    def _shard_model(self):
        """fsdp: keep the unsharded structure (on the meta device), then shard the model in place."""
        reason = fsdp.unsupported_reason(self.method)
        if reason:
            raise ConfigError(f"runtime.parallel: fsdp: {reason}; use runtime.parallel: ddp")
        self.plain = fsdp.meta_copy(self.model)
        mesh = fsdp.mesh_for(self.device)
        fsdp.shard_model(self.model, mesh, self.precision)
        return mesh

    def _unshard(self) -> None:
        """fsdp: gather the trained weights into the plain copy, which becomes ``self.model`` (on every rank),
        so evaluation, export and the next stage see an ordinary module."""
        if not self.sharded or self.plain is None:
            return
        weights = fsdp.full_weights(self.model)
        self.model = fsdp.materialize(self.plain, weights).to(self.device)
        self.forward, self.plain, self.sharded, self.step_module = self.model, None, False, None

    def _probe(self, inputs: Tensor) -> None:
        targets = self.probe_targets.to(self.device) if self.probe_targets is not None else None
        probe_method(self.method, self.model, self.teacher, inputs.to(self.device), self.prepare, targets)
        self.method.to(self.device)

    def fit(self, train: BatchSource, val_inputs: Tensor, val_targets: Tensor, resume: bool = False) -> FitResult:
        cfg = self.cfg
        self.method.setup_data(getattr(train, "targets", None))  # before a resume loads sized buffers
        self.probe_targets = val_targets if self.task == "causal_lm" else None
        if self.sharded:
            mesh = self._shard_model()
        self._probe(val_inputs)  # sharded: every rank runs it on the same samples, in step
        if self.sharded:
            fsdp.reshard(self.model)
            fsdp.shard_method(self.method, mesh, self.precision)
        self.optimizer = build_optimizer(self._param_groups(), cfg)
        steps_per_epoch = len(train)
        self.epochs = planned_epochs(cfg, steps_per_epoch)
        state: dict[str, Any] = {"epoch": 0, "step": 0, "best_epoch": -1, "best_val_accuracy": -1.0,
                                 "best_score": -math.inf, "history": [], "finished": False, "seconds": 0.0}
        if resume:
            state = self._restore() or state
        if state["finished"]:
            self._unshard()
            self.load_best()
            return FitResult(self.name, state["best_epoch"], state["best_val_accuracy"], state["history"],
                             state["seconds"])
        student_taps = Taps(self.model, self.needs.student_modules, "student") if self.needs.student_modules else None
        self.step_module = self._joint_module()
        step = getattr(self.step_module, "module", self.step_module)
        step.taps = student_taps
        # One look at the whole training set (one host sync per fit) instead of a label mask per step.
        targets = getattr(train, "targets", None)
        step.all_labelled = isinstance(targets, Tensor) and bool(labelled_rows(targets).all())
        try:
            for epoch in range(state["epoch"], self.epochs):
                state = self._run_epoch(epoch, train, steps_per_epoch, state, student_taps, val_inputs, val_targets)
        finally:
            if student_taps:
                student_taps.close()
            self.progress.stop()
        dist.barrier()  # rank 0 has written the last checkpoint
        self._unshard()
        self.load_best()
        return FitResult(self.name, state["best_epoch"], state["best_val_accuracy"], state["history"],
                         state["seconds"])

    def _run_epoch(self, epoch, train, steps_per_epoch, state, student_taps, val_inputs, val_targets) -> dict:
        cfg = self.cfg
        # Seed per epoch (dropout etc.), so a resumed run replays exactly what an unbroken one would.
        torch.manual_seed(self.seed * 1_000_003 + epoch)
        self.model.train()
        self.method.train()
        self.method.start_epoch(epoch)
        self.progress.start(f"{self.name} epoch {epoch + 1}/{self.epochs}", steps_per_epoch)
        started, cpu_started = time.perf_counter(), time.process_time()
        running = RunningLoss(self.device)
        seen = 0
        step = state["step"]
        for i, batch in enumerate(train.epoch(epoch)):
            if cfg.max_steps is not None and step >= cfg.max_steps:
                break
            for group in self.optimizer.param_groups:
                group["lr"] = learning_rate(cfg, step, steps_per_epoch) * group.get("lr_scale", 1.0)
            losses = self._step(batch)
            loss = sum(losses.values())
            n = len(batch.targets)
            running.add(losses, loss, n, step)
            self.optimizer.zero_grad(set_to_none=True)
            (self.scaler.scale(loss) if self.scaler else loss).backward()
            if self.scaler:
                self.scaler.unscale_(self.optimizer)
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self._parameters(), cfg.grad_clip)
            if self.scaler:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            step += 1
            seen += n
            if (i + 1) % self.log_every == 0:
                self._sync(running, epoch)  # the one host sync per log interval; raises on a non-finite loss
            self.progress.advance(running.shown)
        self._sync(running, epoch)  # before anything of this epoch is saved
        totals = running.totals()
        train_seconds = time.perf_counter() - started
        # process CPU time of the loop (this process only): what a step costs on a shared machine
        train_cpu_seconds = time.process_time() - cpu_started
        totals = dist.all_reduce_sum({**totals, "_seen": seen})
        seen = int(totals.pop("_seen"))
        record = {
            "model": self.name, "epoch": epoch + 1,
            "train_loss": sum(totals.values()) / max(1, seen),
            "terms": {k: v / max(1, seen) for k, v in totals.items()},
            "lr": self.optimizer.param_groups[0]["lr"],
            **self.validate(val_inputs, val_targets),
            "epoch_seconds": train_seconds, "epoch_cpu_seconds": train_cpu_seconds,
            "steps": step - state["step"],
        }
        # best_score: the task's selection metric, higher is better (accuracy, or -MSE for regression)
        score = selection_score(record, self.task)
        improved = score > state.get("best_score", state["best_val_accuracy"])
        state = {
            **state, "epoch": epoch + 1, "step": step,
            "best_epoch": epoch + 1 if improved else state["best_epoch"],
            "best_score": score if improved else state.get("best_score", state["best_val_accuracy"]),
            "best_val_accuracy": (record.get("val_accuracy", -1.0) if improved else state["best_val_accuracy"]),
            "history": [*state["history"], record],
            "finished": epoch + 1 == self.epochs,
            "seconds": state["seconds"] + train_seconds,
        }
        self._save(state, best=improved)
        if dist.is_main():
            self.metrics_log.write(record)
        key = SELECTION[self.task][0]
        self.progress.log(
            f"  {self.name} epoch {epoch + 1}/{self.epochs}: loss {record['train_loss']:.4f}, "
            f"{key.replace('_', ' ')} {record[key]:.4f}, {train_seconds:.1f}s"
        )
        for callback in self.callbacks:
            callback(self, record)
        return state
