"""One experiment, end to end: data -> teacher -> baseline -> distilled student -> evaluation -> summary.

This module only wires the steps together; each step lives in its own package.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from rich.console import Console
from torch import nn

from distill.config.load import dump_config
from distill.config.schema import ExperimentConfig, ModelConfig
from distill.data.batches import InMemoryBatches
from distill.data.bundle import DataBundle, load_data
from distill.errors import CompatibilityError, ConfigError
from distill.evaluate.cost import model_cost
from distill.evaluate.metrics import classification_metrics
from distill.knowledge.teacher import LiveTeacher, freeze
from distill.methods.base import build_method
from distill.methods.supervised import Supervised
from distill.models.predict import predict
from distill.models.registry import build_model, model_options
from distill.report.summary import gap_recovered, print_summary, write_summary
from distill.train.checkpoint import atomic_write_text, load_weights_into
from distill.train.progress import NullProgress, RichProgress
from distill.train.trainer import MetricsLog, Trainer, input_preparer


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
    saved = _flat(yaml.safe_load(saved_path.read_text()) or {})
    now = _flat(cfg.model_dump(mode="json"))
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) != now.get(key):
            raise ConfigError(
                f"--resume: '{key}' is {now.get(key)!r} but the run in {run_dir} used {saved.get(key)!r}; "
                f"resume with the same config or start a new run"
            )


def model_meta(spec: ModelConfig, data: DataBundle) -> dict:
    return {"name": spec.name, "options": spec.options, "input_shape": list(data.input_shape),
            "num_classes": data.num_classes}


def build_from_spec(spec: ModelConfig, data: DataBundle, seed: int) -> nn.Module:
    torch.manual_seed(seed)  # baseline and distilled student start from the same weights
    # Text data tells the models its tokenizer (vocab_size, pad_id, teacher_path) unless the config does.
    context = {k: v for k, v in data.meta.get("model_context", {}).items() if k in model_options(spec.name)}
    return build_model(spec.name, data.input_shape, data.num_classes, **{**context, **spec.options})


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
            eval_batch_size=self.cfg.evaluate.eval_batch_size, callbacks=self.callbacks,
        )

    def _batches(self, train_cfg, transfer=None) -> InMemoryBatches:
        inputs, targets = self.data.train.inputs, self.data.train.targets
        if transfer is not None:  # unlabelled transfer-set sentences (target -1), distillation only
            inputs = torch.cat([inputs, transfer.inputs.to(inputs.device)])
            targets = torch.cat([targets, transfer.targets.to(targets.device)])
        return InMemoryBatches(inputs, targets, train_cfg.batch_size, shuffle=True,
                               augment=self.data.augment, seed=self.cfg.seed)

    def _fit(self, trainer: Trainer, train_cfg, transfer=None) -> Stage:
        result = trainer.fit(self._batches(train_cfg, transfer), self.data.val.inputs, self.data.val.targets,
                             resume=self.resume)
        return Stage(trainer.name, trainer.model, result.seconds, result.best_epoch)

    def run(self) -> dict:
        cfg = self.cfg
        if cfg.runtime.threads:
            torch.set_num_threads(cfg.runtime.threads)
        self.device = resolve_device(cfg.runtime.device)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.resume:
            check_same_config(self.run_dir, cfg)
        atomic_write_text(self.run_dir / "config.yaml", dump_config(cfg))
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl")
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
        method = build_method(cfg.distill.method, cfg.distill.options)  # config errors before any training

        stages: dict[str, Stage] = {}
        if cfg.teacher.checkpoint:
            load_weights_into(teacher, cfg.teacher.checkpoint)
            stages["teacher"] = Stage("teacher", teacher.to(self.device))
            self.console.print(f"teacher: loaded {cfg.teacher.checkpoint}")
        else:
            trainer = self._trainer("teacher", teacher, cfg.teacher.train,
                                    Supervised(cfg.teacher.train.label_smoothing), meta=teacher_meta)
            stages["teacher"] = self._fit(trainer, cfg.teacher.train)
        freeze(stages["teacher"].model)
        teacher_prepare = input_preparer(stages["teacher"].model, cfg.runtime.channels_last)

        if cfg.baseline:
            baseline = build_from_spec(cfg.student.model, data, cfg.seed)
            trainer = self._trainer("baseline", baseline, cfg.student.train,
                                    Supervised(cfg.student.train.label_smoothing), meta=student_meta)
            stages["baseline"] = self._fit(trainer, cfg.student.train)

        needs = method.needs()
        live = LiveTeacher(stages["teacher"].model, needs.teacher_modules, prepare=teacher_prepare)
        try:
            trainer = self._trainer("student", student, cfg.student.train, method, teacher=live, meta=student_meta)
            stages["student"] = self._fit(trainer, cfg.student.train, data.meta.get("transfer"))
        finally:
            live.close()

        summary = self.evaluate(stages)
        write_summary(self.run_dir / "summary.json", summary)
        print_summary(summary, Console())
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
            reference = logits["teacher"] if role != "teacher" else None
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
            "dataset": data.name,
            "test_samples": len(data.test),
            "method": cfg.distill.method,
            "method_options": cfg.distill.options,
            "class_names": data.class_names,
            "models": models,
            "gap_recovered": None,
            "run_dir": str(self.run_dir),
        }
        if "baseline" in models:
            summary["gap_recovered"] = gap_recovered(
                models["teacher"]["accuracy"], models["baseline"]["accuracy"], models["student"]["accuracy"])
        summary["compression"] = models["teacher"]["params"] / models["student"]["params"]
        return summary


def run_experiment(cfg: ExperimentConfig, out: Path | None = None, resume: bool = False, quiet: bool = False,
                   callbacks=None) -> dict:
    if out is None:
        out = latest_run_dir(cfg) if resume else new_run_dir(cfg)
    return Experiment(cfg, Path(out), resume=resume, quiet=quiet, callbacks=callbacks).run()
