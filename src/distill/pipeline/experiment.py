"""One experiment, end to end: set up -> the mode's stages -> evaluation -> export -> summary and report.

This module only wires the steps together; the stages are in ``pipeline/stages.py``, the modes
(offline, online, born_again, takd, reverse, ...) in ``pipeline/modes/``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape

from distill import distributed as dist
from distill import preflight, rundir
from distill.config.load import dump_config
from distill.config.schema import ExperimentConfig, tokenizer_home
from distill.data.bundle import load_data
from distill.data.registry import dataset_spec
from distill.data.speech_bundle import write_preprocessing
from distill.evaluate.cost import model_cost, multiply_adds
from distill.evaluate.lm_metrics import generations, lm_metrics, memory
from distill.evaluate.metrics import classification_metrics
from distill.evaluate.regression import regression_metrics
from distill.export.run_hook import export_student
from distill.io import atomic_write_text
from distill.methods.combined import method_from_config
from distill.models.causal_lm import load_lm_tokenizer
from distill.models.predict import input_preparer, predict
from distill.models.registry import count_parameters
from distill.pipeline import stages as st
from distill.pipeline.building import build_from_spec, check_compatible
from distill.pipeline.modes import load_modes, run_mode
from distill.pipeline.run_folder import check_same_config, latest_run_dir, new_run_dir
from distill.pipeline.stages import Stage
from distill.report.html import report_after_run
from distill.report.soft_tree_section import explain_trees
from distill.report.summary import gap_recovered, print_summary, size_warnings, write_summary
from distill.terminal import output_console
from distill.train.environment import run_environment
from distill.train.progress import NullProgress, RichProgress
from distill.train.trackers import EPOCH_CALLBACKS, check_trackers, open_trackers
from distill.train.trainer import MetricsLog


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Experiment:
    """What every stage reads: the config, run folder, device, data, metrics log, progress and console."""

    def __init__(self, cfg: ExperimentConfig, run_dir: Path, resume: bool = False, console: Console | None = None,
                 quiet: bool = False, callbacks=None, overwrite: bool = False, check_only: bool = False):
        self.cfg, self.run_dir, self.resume, self.overwrite = cfg, Path(run_dir), resume, overwrite
        self.check_only = check_only  # stop once config, data and models have been checked
        self.lock = None
        self.console = console or Console(stderr=True, quiet=quiet)
        self.progress = NullProgress() if quiet else RichProgress(self.console)
        self.callbacks = [*(callbacks or []), *EPOCH_CALLBACKS]  # the latter: @distill.on_epoch in imports
        self.trackers: list = []

    def check_names(self) -> None:
        """Unknown dataset or mode names fail here, before anything is written."""
        dataset_spec(self.cfg.data.dataset)
        load_modes().get(self.cfg.distill.mode)

    def setup(self) -> None:
        cfg = self.cfg
        self.check_names()
        preflight.check_config(cfg)
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
        if cfg.runtime.parallel == "fsdp" and not dist.active():
            self.console.print("[yellow]runtime.parallel: fsdp in one process trains the student unsharded; "
                               "run with --nproc N (or torchrun) to shard it[/yellow]", highlight=False)
        if self.resume:
            check_same_config(self.run_dir, cfg)
        if dist.is_main():  # nothing is written before the config and the data have been checked
            rundir.check_out_folder(self.run_dir, self.resume, self.overwrite)
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl")
        check_trackers(cfg.report_to)  # a missing tensorboard/mlflow package stops the run before anything is written

        self.console.print(f"[bold]distill[/bold] run folder: {self.run_dir}")
        self.data = data = load_data(cfg.data, teacher_path=tokenizer_home(cfg.teacher.model.name,
                                                                        cfg.teacher.model.options))
        self.data.train.inputs = data.train.inputs.to(self.device)
        self.data.train.targets = data.train.targets.to(self.device)
        self.console.print(f"data: {data.name}, train {len(data.train)}, val {len(data.val)}, test {len(data.test)}")
        preflight.check_data(cfg, data)

    def run(self) -> dict:
        self.setup()
        cfg, data = self.cfg, self.data
        teacher = build_from_spec(cfg.teacher.model, data, cfg.seed)
        student = build_from_spec(cfg.student.model, data, cfg.seed)
        check_compatible(teacher, student, data)
        method = method_from_config(cfg.distill)  # config errors before any training
        self.warn_about_sizes(teacher, student)
        if self.check_only:
            if cfg.distill.mode == "offline":  # the other modes probe their pairs as they train them
                st.check_pair(self, teacher, student, method)
            self.console.print("check: the config, the data and the models fit together; nothing was written")
            return {}
        self.open_run_dir()
        return self.finish(run_mode(cfg.distill.mode, self, teacher, student, method))

    def warn_about_sizes(self, teacher, student) -> None:
        """The summary's "student not smaller / cheaper than its teacher" warnings, before anything trains."""
        if self.cfg.distill.mode == "born_again":  # the teacher: section is not used
            return
        example = self.data.val.inputs[:1]
        models = {role: {"params": count_parameters(model), "macs": multiply_adds(model, example)}
                  for role, model in (("teacher", teacher), ("student", student))}
        for warning in size_warnings({"mode": self.cfg.distill.mode, "models": models}):
            self.console.print(f"[yellow]{escape(warning)}[/yellow]", highlight=False)

    def open_run_dir(self) -> None:
        """Lock, tidy and start the run folder (see distill/rundir.py) once everything has been checked."""
        if dist.is_main():
            self.lock = rundir.open_run_folder(self.run_dir, self.resume, self.overwrite)
            atomic_write_text(self.run_dir / "config.yaml", dump_config(self.cfg))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if dist.is_main():  # trackers write into the run folder, so they open once it is ours
            self.trackers = open_trackers(self.cfg.report_to, self.run_dir, self.cfg.model_dump(mode="json"))
            self.callbacks.extend(self.trackers)

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def finish(self, stages: dict[str, Stage]) -> dict:
        if not dist.is_main():
            return {}
        summary = self.evaluate(stages)
        explain_trees(stages, self.data, self.run_dir)  # soft decision trees: filters and paths for the report
        write_preprocessing(self.data, self.run_dir)  # speech: the log-mel settings an exported student needs
        final = stages.get("student") or list(stages.values())[-1]  # born-again runs end in their last generation
        export_student(self.cfg.export, final.model, self.data, self.run_dir, summary)
        write_summary(self.run_dir / "summary.json", summary)
        print_summary(summary, output_console())
        report_after_run(self.run_dir, self.console)
        for tracker in self.trackers:
            tracker.finish(summary)
        return summary

    def evaluate_lm(self, stages: dict[str, Stage]) -> dict:
        """causal_lm: token metrics on the test references, greedy generations side by side, speed and memory."""
        cfg, data = self.cfg, self.data
        lm = data.meta["lm"]
        self.progress.start("evaluating on the test split", 2)
        models = {role: stage.model for role, stage in stages.items()}
        teacher = "teacher" if "teacher" in models else None
        inputs, targets = data.test.inputs.to(self.device), data.test.targets.to(self.device)
        entries = lm_metrics(models, inputs, targets, teacher, batch_size=min(cfg.evaluate.eval_batch_size, 64))
        self.progress.advance("token metrics")
        tokenizer = load_lm_tokenizer(lm["tokenizer"])
        rows, scores = generations(models, tokenizer, inputs, targets, cfg.evaluate.generations,
                                   cfg.evaluate.max_new_tokens, lm["eos_id"], lm["pad_id"], teacher or "")
        self.progress.stop()
        for role, stage in stages.items():
            entries[role].update(scores[role])
            entries[role].update(memory(stage.model))
            entries[role].update({"train_seconds": stage.seconds, "best_epoch": stage.best_epoch})
        out = {"generations": rows, "models": entries, "train_response_tokens": lm.get("response_tokens"),
               "teacher_cache": getattr(self, "token_cache", None),
               "teacher_sequences": getattr(self, "teacher_sequences", None), "on_policy": getattr(self, "on_policy", None)}
        if {"teacher", "student"} <= set(entries):
            out["compression"] = entries["teacher"]["params"] / entries["student"]["params"]
        return out

    def evaluate(self, stages: dict[str, Stage]) -> dict:
        cfg, data = self.cfg, self.data
        if cfg.task == "causal_lm":
            return {**self.summary_head(stages), **self.evaluate_lm(stages)}
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
        summary = {**self.summary_head(stages), "models": models, "gap_recovered": None}
        key = "r2" if cfg.task == "regression" else "accuracy"  # regression: the gap in test R^2
        if {"teacher", "baseline", "student"} <= set(models):
            summary["gap_recovered"] = gap_recovered(
                models["teacher"][key], models["baseline"][key], models["student"][key])
        summary["gap_metric"] = key
        if {"teacher", "student"} <= set(models):
            summary["compression"] = models["teacher"]["params"] / models["student"]["params"]
        return summary

    def summary_head(self, stages: dict[str, Stage]) -> dict:
        cfg, data = self.cfg, self.data
        return {
            "name": cfg.name,
            "task": cfg.task,
            "mode": cfg.distill.mode,
            "dataset": data.name,
            "test_samples": len(data.test),
            "method": cfg.distill.method,
            "method_options": cfg.distill.options,
            "methods": [m.model_dump() for m in cfg.distill.methods] if cfg.distill.methods else None,
            "class_names": data.class_names,
            "run_dir": str(self.run_dir),
            "environment": run_environment(self.device),
        }


def run_experiment(cfg: ExperimentConfig, out: Path | None = None, resume: bool = False, quiet: bool = False,
                   callbacks=None, overwrite: bool = False, check_only: bool = False) -> dict:
    if out is None:
        out = latest_run_dir(cfg) if resume else new_run_dir(cfg)
    experiment = Experiment(cfg, Path(out), resume=resume, quiet=quiet, callbacks=callbacks, overwrite=overwrite,
                            check_only=check_only)
    try:
        return experiment.run()
    finally:
        experiment.close()
        dist.teardown()
