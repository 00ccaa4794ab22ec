"""One experiment, end to end: data -> teacher -> baseline -> distilled student -> evaluation -> summary.

This module only wires the steps together; each step lives in its own package.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from torch import nn

from distill.config.load import dump_config
from distill.config.schema import ExperimentConfig, ModelConfig
from distill.data.augment import with_mixing
from distill.data.batches import InMemoryBatches
from distill.data.bundle import DataBundle, load_data
from distill.errors import CompatibilityError, ConfigError
from distill.evaluate.cost import model_cost
from distill.evaluate.metrics import classification_metrics
from distill.evaluate.regression import regression_metrics
from distill.export.run_hook import export_student
from distill.knowledge.cache import CacheOptions, build_cache, choose_teacher
from distill.knowledge.teacher import LiveTeacher, freeze
from distill.methods.combined import method_from_config
from distill.methods.regression import supervised_for
from distill.models.predict import predict
from distill.models.registry import build_model, model_options
from distill.report.html import report_after_run
from distill.report.summary import gap_recovered, print_summary, write_summary
from distill.train import distributed as dist
from distill.train.checkpoint import atomic_write_text, load_weights_into
from distill.train.progress import NullProgress, RichProgress
from distill.train.trainer import MetricsLog, Trainer, input_preparer, probe_method


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def new_run_dir(cfg: ExperimentConfig, root: Path = Path("runs")) -> Path:
    return root / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def latest_run_dir(cfg: ExperimentConfig, root: Path = Path("runs")) -> Path:
    candidates = sorted(root.glob(f"{cfg.name}-*"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise ConfigError(f"--resume: no earlier run named '{cfg.name}' under {root}/; pass --out RUN_DIR")
    return candidates[-1]


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flat(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def check_same_config(run_dir: Path, cfg: ExperimentConfig) -> None:
    saved_path = run_dir / "config.yaml"
    if not saved_path.is_file():
        return
    from distill.config.load import load_config  # resolve defaults, so only real differences count

    saved = _flat(load_config(saved_path).model_dump(mode="json"))
    now = _flat(cfg.model_dump(mode="json"))
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) != now.get(key):
            raise ConfigError(
                f"--resume: '{key}' is {now.get(key)!r} but the run in {run_dir} used {saved.get(key)!r}; "
                f"resume with the same config or start a new run"
            )


def data_context(spec: ModelConfig, data: DataBundle) -> dict:
    """Text data tells the models its tokenizer (vocab_size, pad_id, teacher_path) unless the config does."""
    return {k: v for k, v in data.meta.get("model_context", {}).items()
            if k in model_options(spec.name) and k not in spec.options}


def model_meta(spec: ModelConfig, data: DataBundle) -> dict:
    """The checkpoints' model description; with the data's context, so that it rebuilds on its own."""
    options = {**data_context(spec, data), **spec.options}
    return {"name": spec.name, "options": options, "input_shape": list(data.input_shape),
            "num_classes": options.pop("num_classes", data.num_classes)}


def build_from_spec(spec: ModelConfig, data: DataBundle, seed: int) -> nn.Module:
    torch.manual_seed(seed)  # baseline and distilled student start from the same weights
    options = {**data_context(spec, data), **spec.options}
    num_classes = options.pop("num_classes", data.num_classes)
    return build_model(spec.name, data.input_shape, num_classes, **options)


def check_compatible(teacher: nn.Module, student: nn.Module, data: DataBundle) -> None:
    """Refuse teacher/student pairs whose outputs differ, before any training starts."""
    probe = data.val.inputs[:2]
    with torch.no_grad():
        shapes = {}
        for role, model in (("teacher", teacher), ("student", student)):
            was_training = model.training
            model.eval()
            try:
                shapes[role] = tuple(model(probe).shape)
            except RuntimeError as exc:
                raise CompatibilityError(
                    f"the {role} cannot take inputs of shape {tuple(probe.shape[1:])}: {str(exc).splitlines()[0]}"
                ) from None
            finally:
                model.train(was_training)
    for role, shape in shapes.items():
        if shape[1:] != (data.num_classes,):
            raise CompatibilityError(
                f"the {role} outputs {shape[1:]} per sample but {data.name} has {data.num_classes} classes; "
                f"set its num_classes to {data.num_classes}"
            )
    if shapes["teacher"] != shapes["student"]:
        raise CompatibilityError(
            f"teacher outputs {shapes['teacher'][1:]} per sample but student outputs {shapes['student'][1:]}; "
            f"both must predict the same {data.num_classes} classes"
        )


@dataclass
class Stage:
    role: str
    model: nn.Module
    seconds: float = 0.0
    best_epoch: int | None = None


class Experiment:
    def __init__(self, cfg: ExperimentConfig, run_dir: Path, resume: bool = False, console: Console | None = None,
                 quiet: bool = False, callbacks=None):
        self.cfg, self.run_dir, self.resume = cfg, Path(run_dir), resume
        self.console = console or Console(stderr=True, quiet=quiet)
        self.progress = NullProgress() if quiet else RichProgress(self.console)
        self.callbacks = callbacks or []

    def _trainer(self, role: str, model: nn.Module, train_cfg, method, teacher=None, meta=None) -> Trainer:
        return Trainer(
            role, model, train_cfg, method, teacher=teacher, seed=self.cfg.seed, device=self.device,
            checkpoint_dir=self.run_dir / "checkpoints", metrics_log=self.metrics, progress=self.progress,
            channels_last=self.cfg.runtime.channels_last, model_meta=meta,
            eval_batch_size=self.cfg.evaluate.eval_batch_size, callbacks=self.callbacks, task=self.cfg.task,
            precision=self.cfg.runtime.precision, compile=self.cfg.runtime.compile,
        )

    def _training_set(self, transfer=None) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = self.data.train.inputs, self.data.train.targets
        if transfer is not None:  # unlabelled transfer-set sentences (target -1), distillation only
            inputs = torch.cat([inputs, transfer.inputs.to(inputs.device)])
            targets = torch.cat([targets, transfer.targets.to(targets.device)])
        return inputs, targets

    def _batches(self, train_cfg, views: int | None = None, transfer=None) -> InMemoryBatches:
        inputs, targets = self._training_set(transfer)
        world = dist.world_size()
        if train_cfg.batch_size % world:
            raise ConfigError(f"batch_size {train_cfg.batch_size} is the global batch; it must divide evenly "
                              f"over {world} processes")
        return InMemoryBatches(inputs, targets, train_cfg.batch_size // world, shuffle=True,
                               augment=self._augment(train_cfg, inputs), seed=self.cfg.seed, rank=dist.rank(),
                               world_size=world, views=views)

    def _augment(self, train_cfg, inputs: torch.Tensor):
        """The data's crop/flip plus the recipe's mixup/cutmix (teacher and student see the same mixed view)."""
        augment = with_mixing(self.data.augment, train_cfg.mixup, train_cfg.cutmix, train_cfg.mix_prob)
        if augment is not None and augment.mixes and (inputs.dim() != 4 or not inputs.is_floating_point()):
            raise ConfigError(f"train.mixup/cutmix blend images, but {self.data.name} inputs have shape "
                              f"{tuple(inputs.shape[1:])}; set mixup and cutmix to 0")
        return augment

    def _fit(self, trainer: Trainer, train_cfg, views: int | None = None, transfer=None) -> Stage:
        result = trainer.fit(self._batches(train_cfg, views, transfer), self.data.val.inputs, self.data.val.targets,
                             resume=self.resume)
        return Stage(trainer.name, trainer.model, result.seconds, result.best_epoch)

    def _teacher(self, live: LiveTeacher, modules: tuple[str, ...], transfer=None):
        """The cached teacher when ``cache`` allows it (see knowledge/cache.py), else the live one."""
        c = self.cfg.cache
        inputs, targets = self._training_set(transfer)
        if modules and not inputs.is_floating_point():
            # Text models trim padding per batch, so hooked features vary in length and cannot be stored
            # per sample; their logits could be, but a method asking for features needs both.
            if c.mode == "on":
                raise ConfigError("cache.mode=on cannot store hooked features of token-id inputs; use cache.mode=auto")
            return live
        options = CacheOptions(views=c.views, dtype=c.dtype, top_k=c.top_k, memory_mb=c.memory_mb)
        return choose_teacher(c.mode, live, lambda: build_cache(
            live, inputs, targets, self._augment(self.cfg.student.train, inputs), self.cfg.seed,
            self.cfg.student.train.epochs,
            options, Path(c.dir) if c.dir else self.run_dir / "cache", self.device, modules,
            log=self.console.print))

    def run(self) -> dict:
        cfg = self.cfg
        if cfg.runtime.threads:
            torch.set_num_threads(cfg.runtime.threads)
        else:
            dist.share_threads()
        if cfg.runtime.interop_threads:
            torch.set_num_interop_threads(cfg.runtime.interop_threads)
        self.device = dist.setup(resolve_device(cfg.runtime.device))
        self.run_dir = Path(dist.broadcast_object(str(self.run_dir)))  # ranks may have named it apart
        if not dist.is_main():
            self.console.quiet, self.progress = True, NullProgress()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.resume:
            check_same_config(self.run_dir, cfg)
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl")
        if dist.is_main():
            atomic_write_text(self.run_dir / "config.yaml", dump_config(cfg))
            if not self.resume and self.metrics.path.exists():
                self.metrics.path.unlink()

        self.console.print(f"[bold]distill[/bold] run folder: {self.run_dir}")
        self.data = data = load_data(cfg.data, teacher_path=cfg.teacher.model.options.get("path"))
        self.data.train.inputs = data.train.inputs.to(self.device)
        self.data.train.targets = data.train.targets.to(self.device)
        self.console.print(f"data: {data.name}, train {len(data.train)}, val {len(data.val)}, test {len(data.test)}")

        teacher_meta = model_meta(cfg.teacher.model, data)
        student_meta = model_meta(cfg.student.model, data)
        teacher = build_from_spec(cfg.teacher.model, data, cfg.seed)
        student = build_from_spec(cfg.student.model, data, cfg.seed)
        check_compatible(teacher, student, data)
        method = method_from_config(cfg.distill)  # config errors before any training
        if cfg.distill.mode != "offline":
            from distill.recipes import run_mode  # online, born_again, takd, reverse: docs/methods.md

            return self.finish(run_mode(cfg.distill.mode, self, teacher, student, method))
        # Layer paths and shapes are checked on the untrained pair, not after hours of teacher training.
        probe_teacher = LiveTeacher(teacher, method.needs().teacher_modules)
        try:
            probe_method(method_from_config(cfg.distill), student, probe_teacher, data.val.inputs)
        finally:
            probe_teacher.close()
            teacher.requires_grad_(True).train()

        stages: dict[str, Stage] = {}
        if cfg.teacher.checkpoint:
            load_weights_into(teacher, cfg.teacher.checkpoint)
            stages["teacher"] = Stage("teacher", teacher.to(self.device))
            self.console.print(f"teacher: loaded {cfg.teacher.checkpoint}")
        else:
            trainer = self._trainer("teacher", teacher, cfg.teacher.train,
                                    supervised_for(cfg.task, cfg.teacher.train.label_smoothing), meta=teacher_meta)
            stages["teacher"] = self._fit(trainer, cfg.teacher.train)
        freeze(stages["teacher"].model)
        teacher_prepare = input_preparer(stages["teacher"].model, cfg.runtime.channels_last)

        needs = method.needs()
        live = LiveTeacher(stages["teacher"].model, needs.teacher_modules, prepare=teacher_prepare)
        try:
            transfer = data.meta.get("transfer")
            teacher_fn = self._teacher(live, needs.teacher_modules, transfer) if needs.teacher else live
            views = getattr(teacher_fn, "views", None)
            if cfg.baseline:
                # The same recipe as the distilled student, down to the data stream: with the cache, the
                # baseline cycles through the same stored (mixed) views, in the same order.
                baseline = build_from_spec(cfg.student.model, data, cfg.seed)
                trainer = self._trainer("baseline", baseline, cfg.student.train,
                                        supervised_for(cfg.task, cfg.student.train.label_smoothing),
                                        meta=student_meta)
                stages["baseline"] = self._fit(trainer, cfg.student.train, views)
            trainer = self._trainer("student", student, cfg.student.train, method, teacher=teacher_fn,
                                    meta=student_meta)
            stages["student"] = self._fit(trainer, cfg.student.train, views, transfer)
        finally:
            live.close()

        return self.finish(stages)

    def finish(self, stages: dict[str, Stage]) -> dict:
        if not dist.is_main():
            return {}
        summary = self.evaluate(stages)
        final = stages.get("student") or list(stages.values())[-1]  # born-again runs end in their last generation
        export_student(self.cfg.export, final.model, self.data, self.run_dir, summary)
        write_summary(self.run_dir / "summary.json", summary)
        print_summary(summary, Console())
        report_after_run(self.run_dir, self.console)
        return summary

    def evaluate(self, stages: dict[str, Stage]) -> dict:
        cfg, data = self.cfg, self.data
        self.progress.start("evaluating on the test split", len(stages))
        test_inputs = data.test.inputs.to(self.device)
        logits = {}
        for role, stage in stages.items():
            prepare = input_preparer(stage.model, cfg.runtime.channels_last)
            logits[role] = predict(stage.model, test_inputs, cfg.evaluate.eval_batch_size, prepare)
        models = {}
        for role, stage in stages.items():
            reference = logits.get("teacher") if role != "teacher" else None
            if cfg.task == "regression":
                entry = regression_metrics(logits[role], data.test.targets, data.meta.get("target_std", 1.0), reference)
            else:
                entry = classification_metrics(logits[role], data.test.targets, data.num_classes, reference)
            prepare = input_preparer(stage.model, cfg.runtime.channels_last)
            cpu_model = stage.model.to("cpu")
            entry.update(model_cost(cpu_model, data.test.inputs[:1], cfg.evaluate.latency_repeats,
                                    cfg.evaluate.latency, prepare=prepare))
            entry.update({"train_seconds": stage.seconds, "best_epoch": stage.best_epoch})
            models[role] = entry
            self.progress.advance(role)
        self.progress.stop()
        summary = {
            "name": cfg.name,
            "task": cfg.task,
            "mode": cfg.distill.mode,
            "dataset": data.name,
            "test_samples": len(data.test),
            "method": cfg.distill.method,
            "method_options": cfg.distill.options,
            "methods": [m.model_dump() for m in cfg.distill.methods] if cfg.distill.methods else None,
            "class_names": data.class_names,
            "models": models,
            "gap_recovered": None,
            "run_dir": str(self.run_dir),
        }
        key = "r2" if cfg.task == "regression" else "accuracy"  # regression: the gap in test R^2
        if {"teacher", "baseline", "student"} <= set(models):
            summary["gap_recovered"] = gap_recovered(
                models["teacher"][key], models["baseline"][key], models["student"][key])
        summary["gap_metric"] = key
        if {"teacher", "student"} <= set(models):
            summary["compression"] = models["teacher"]["params"] / models["student"]["params"]
        return summary


def run_experiment(cfg: ExperimentConfig, out: Path | None = None, resume: bool = False, quiet: bool = False,
                   callbacks=None) -> dict:
    if out is None:
        out = latest_run_dir(cfg) if resume else new_run_dir(cfg)
    try:
        return Experiment(cfg, Path(out), resume=resume, quiet=quiet, callbacks=callbacks).run()
    finally:
        dist.teardown()
