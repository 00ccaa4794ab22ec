"""distill search on a tiny config: interrupted and resumed, the grid covered exactly, pruning, outputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from distill.cli import main
from distill.errors import ConfigError

from .tiny_run import ROOT, TINY, tiny_config

optuna = pytest.importorskip("optuna", reason="the search extra (optuna) is not installed")

from distill.search.objective import pruning_callback  # noqa: E402
from distill.search.space import check_space  # noqa: E402
from distill.search.study import run_search  # noqa: E402

GRID = "search.space={distill.options.temperature: {choices: [2.0, 4.0]}, distill.options.alpha: {choices: [0.5, 0.9]}}"


class Recorder:
    """Epoch callback: remembers which trial folders trained, and raises KeyboardInterrupt in the Nth trial."""

    def __init__(self, interrupt_trial: int | None = None):
        self.interrupt_trial, self.trained, self.teacher_epochs = interrupt_trial, [], 0

    def __call__(self, trainer, record):
        if record["model"] == "teacher":
            self.teacher_epochs += 1
        if record["model"] == "student" and record["epoch"] == 1:
            self.trained.append(trainer.checkpoint_dir.parent.name)
            if len(self.trained) == self.interrupt_trial:
                raise KeyboardInterrupt


def finished(folder: Path) -> dict[int, tuple]:
    rows = json.loads((folder / "trials.json").read_text())
    return {r["number"]: (r["state"], r["value"], r["params"]) for r in rows if r["state"] in ("COMPLETE", "PRUNED")}


def test_interrupted_search_resumes_without_repeating_finished_trials(tmp_path):
    cfg = tiny_config("examples/search.yaml")
    first = Recorder(interrupt_trial=3)
    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, tmp_path, trials=4, quiet=True, callbacks=[first])
    before = finished(tmp_path)
    assert sorted(before) == [0, 1] and first.trained == ["trial-0000", "trial-0001", "trial-0002"]
    stamps = {n: (tmp_path / f"trials/trial-{n:04d}/metrics.jsonl").stat().st_mtime_ns for n in before}
    study = optuna.load_study(study_name=cfg.name, storage=f"sqlite:///{tmp_path / 'study.db'}")
    interrupted = study.trials[2]
    assert interrupted.state.name == "FAIL"

    second = Recorder()
    meta = run_search(cfg, tmp_path, trials=4, quiet=True, callbacks=[second])
    after = finished(tmp_path)
    assert len(after) == 4 and {n: after[n] for n in before} == before
    assert "trial-0000" not in second.trained and "trial-0001" not in second.trained and len(second.trained) == 2
    assert {n: (tmp_path / f"trials/trial-{n:04d}/metrics.jsonl").stat().st_mtime_ns for n in before} == stamps
    assert interrupted.params in [p for _, _, p in after.values()]  # the interrupted trial's values ran again
    # the teacher was trained once, in the first trial, and loaded by every later trial
    assert first.teacher_epochs == 1 and second.teacher_epochs == 0
    assert yaml.safe_load((tmp_path / "trials/trial-0003/config.yaml").read_text())["teacher"]["checkpoint"] == \
        str((tmp_path / "teacher.safetensors").resolve())

    best = max((v for s, v, _ in after.values() if s == "COMPLETE"))
    assert meta["best"]["value"] == best
    best_cfg = yaml.safe_load((tmp_path / "best.yaml").read_text())
    for key, value in meta["best"]["params"].items():
        section, option = key.rsplit(".", 1)
        node = best_cfg
        for part in section.split("."):
            node = node[part]
        assert node[option] == value
    assert best_cfg["search"] is None and best_cfg["baseline"] is True
    with open(tmp_path / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["state"] for r in rows].count("FAIL") == 1 and len(rows) == 5
    html = (tmp_path / "report.html").read_text()
    for needle in ('id="trials-table"', 'aria-label="Optimisation history"', 'aria-label="Parameter importances"',
                   'id="summary-table"', f"best trial {meta['best']['number']}"):
        assert needle in html


def test_grid_sampler_covers_its_grid_exactly_across_an_interruption(tmp_path):
    cfg = tiny_config("examples/search.yaml", [GRID, "search.sampler=grid", "search.pruner=false"])
    with pytest.raises(KeyboardInterrupt):
        run_search(cfg, tmp_path, quiet=True, callbacks=[Recorder(interrupt_trial=2)])
    run_search(cfg, tmp_path, quiet=True)
    points = sorted((p["distill.options.temperature"], p["distill.options.alpha"])
                    for state, _, p in finished(tmp_path).values())
    assert points == [(2.0, 0.5), (2.0, 0.9), (4.0, 0.5), (4.0, 0.9)]
    # run again from the command line: the grid is done, so nothing more runs
    args = ["search", str(ROOT / "examples" / "search.yaml"), "--sampler", "grid", "--out", str(tmp_path), "--quiet"]
    for override in [*TINY, GRID, "search.pruner=false"]:
        args += ["--set", override]
    assert main(args) == 0
    assert len(finished(tmp_path)) == 4


class FakeTrial:
    def __init__(self, prune: bool):
        self.prune, self.reports = prune, []

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return self.prune


def test_pruning_callback_reports_student_scores_and_prunes():
    scores = []
    keep = FakeTrial(prune=False)
    callback = pruning_callback(keep, "val_accuracy", scores)
    callback(None, {"model": "teacher", "epoch": 1, "val_accuracy": 0.9})
    callback(None, {"model": "student", "epoch": 1, "val_accuracy": 0.5})
    assert keep.reports == [(1, 0.5)] and scores == [0.5]
    with pytest.raises(optuna.TrialPruned):
        pruning_callback(FakeTrial(prune=True), "val_accuracy", [])(None, {"model": "student", "epoch": 2,
                                                                          "val_accuracy": 0.1})


def test_search_space_errors_come_before_any_training(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tiny_config("examples/search.yaml", ["search.space={distill.options.temprature: {low: 1, high: 4}}"])
    with pytest.raises(ConfigError, match="temprature"):
        check_space(cfg)
    with pytest.raises(ConfigError, match="search.space"):
        tiny_config("examples/search.yaml", ["search.space={distill.options.alpha: {type: float}}"])
    with pytest.raises(ConfigError, match="step"):
        run_search(tiny_config("examples/search.yaml", ["search.sampler=grid"]), quiet=True)
    assert list(tmp_path.iterdir()) == []  # refused before the search folder was made


def fabricated_study() -> optuna.Study:
    """Six complete trials whose value is decided by 'a' alone ('b' is noise), one pruned, one failed."""
    study = optuna.create_study(direction="maximize")
    dists = {"distill.options.a": optuna.distributions.FloatDistribution(0.0, 1.0),
             "distill.options.b": optuna.distributions.FloatDistribution(0.0, 1.0)}
    for i, (a, b) in enumerate([(0.1, 0.9), (0.2, 0.1), (0.35, 0.5), (0.6, 0.3), (0.8, 0.7), (0.95, 0.2)]):
        study.add_trial(optuna.trial.create_trial(params={"distill.options.a": a, "distill.options.b": b},
                                                  distributions=dists, value=a + 0.001 * i))
    study.add_trial(optuna.trial.create_trial(params={"distill.options.a": 0.123456789, "distill.options.b": 0.5},
                                              distributions=dists, state=optuna.trial.TrialState.PRUNED,
                                              intermediate_values={1: 0.1234567, 2: 0.2345678}))
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    return study


def test_importances_are_optunas_and_follow_the_deciding_parameter():
    from distill.search.results import study_importances

    importances = study_importances(fabricated_study())
    assert max(importances, key=importances.get) == "distill.options.a"
    # the hand-written eta squared gave each of three parameters 1/3 with three complete trials, by construction
    three = optuna.create_study(direction="maximize")
    dists = {k: optuna.distributions.FloatDistribution(0.0, 1.0) for k in "abc"}
    for point in [(0.1, 0.5, 0.3), (0.5, 0.2, 0.9), (0.9, 0.8, 0.5)]:
        three.add_trial(optuna.trial.create_trial(params=dict(zip("abc", point, strict=True)), distributions=dists,
                                                  value=point[0]))
    shares = study_importances(three)
    assert sum(shares.values()) == pytest.approx(1.0) and max(shares.values()) - min(shares.values()) > 0.05


def test_trial_lines_are_rounded_and_the_heading_counts_failed_trials():
    from distill.report.search_section import search_section
    from distill.search.results import trial_line, trial_row

    study = fabricated_study()
    line = trial_line(study.trials[6], "val_accuracy")
    assert line == "trial 6 pruned after epoch 2: val_accuracy 0.2346  distill.options.a=0.1235, distill.options.b=0.5"
    html = search_section({"trials": [trial_row(t) for t in study.trials], "study_name": "s", "sampler": "tpe",
                           "importances": {"distill.options.temperature": 0.5, "student.train.lr": 0.5}})
    assert "8 trials (6 complete, 1 pruned, 1 failed)" in html
    assert ">distill.options.temperature<" in html  # importance labels are not cut


class Cfg:
    epochs = 2


class FakeTrainer:
    cfg = Cfg()


def test_a_trial_that_trained_every_epoch_is_not_pruned():
    trial = FakeTrial(prune=True)
    on_epoch = pruning_callback(trial, "val_accuracy", [])
    with pytest.raises(optuna.TrialPruned):
        on_epoch(FakeTrainer(), {"model": "student", "epoch": 1, "val_accuracy": 0.5})
    on_epoch(FakeTrainer(), {"model": "student", "epoch": 2, "val_accuracy": 0.5})  # the last epoch: complete
    assert trial.reports == [(1, 0.5), (2, 0.5)]


def test_cli_takes_a_study_name(tmp_path):
    cfg = ["--set", "search.space={distill.options.temperature: {choices: [2.0]}}", "--sampler", "grid"]
    args = ["search", str(ROOT / "examples" / "search.yaml"), "--out", str(tmp_path), "--quiet",
            "--study-name", "my-study", *cfg]
    for override in TINY:
        args += ["--set", override]
    assert main(args) == 0
    study = optuna.load_study(study_name="my-study", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert study.trials and study.metric_names == ["val_accuracy"]  # optuna-dashboard shows the metric's name
    assert json.loads((tmp_path / "search.json").read_text())["study_name"] == "my-study"


def test_a_repeated_point_reuses_its_score_instead_of_training_again(tmp_path):
    """TPE proposes the best point again and again on a small categorical space: a run is a function
    of its config and seed, so the repeat costs nothing and scores what the first one scored."""
    cfg = tiny_config("examples/search.yaml",
                      ["search.space={distill.options.temperature: {choices: [2.0]}}", "search.pruner=false"])
    recorder = Recorder()
    run_search(cfg, tmp_path, trials=3, sampler="random", quiet=True, callbacks=[recorder])
    assert recorder.trained == ["trial-0000"]
    rows = json.loads((tmp_path / "trials.json").read_text())
    assert [r["state"] for r in rows] == ["COMPLETE"] * 3
    assert rows[1]["value"] == rows[2]["value"] == rows[0]["value"]
    assert rows[1]["note"] == rows[2]["note"] == "same values as trial 0" and rows[0]["note"] is None
    assert rows[2]["run_dir"] == rows[0]["run_dir"] == "trials/trial-0000"


def test_ctrl_c_in_a_search_prints_one_line_and_no_traceback(tmp_path, monkeypatch, capfd, caplog):
    import distill.search.objective as objective

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(objective, "run_experiment", interrupted)
    args = ["search", str(ROOT / "examples" / "search.yaml"), "--out", str(tmp_path), "--quiet",
            "--set", "search.space={distill.options.temperature: {choices: [2.0]}}"]
    for override in TINY:
        args += ["--set", override]
    assert main(args) == 130
    err = capfd.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert not [record for record in caplog.records if record.exc_info]  # optuna's log of the failed trial
    assert "interrupted; run the same command again to resume the search" in err
