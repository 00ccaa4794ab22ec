"""report_to: [tensorboard, mlflow] and @distill.on_epoch callbacks from imported modules."""

from __future__ import annotations

import json
import sys
import types

import pytest

from distill import cli
from distill.errors import ConfigError
from distill.pipeline.experiment import run_experiment
from distill.train import trackers
from tests.tiny_run import TINY, tiny_config


class FakeWriter:
    def __init__(self, log_dir):
        self.log_dir, self.scalars, self.closed = log_dir, [], False
        FakeWriter.last = self

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def add_text(self, *args):
        pass

    def flush(self):
        pass

    def close(self):
        self.closed = True


def fake_mlflow(calls: list) -> types.ModuleType:
    module = types.ModuleType("mlflow")
    module.start_run = lambda run_name=None: calls.append(("start", run_name))
    module.log_params = lambda params: calls.append(("params", params))
    module.log_metrics = lambda metrics, step=None: calls.append(("metrics", metrics, step))
    module.log_artifact = lambda path: calls.append(("artifact", path))
    module.end_run = lambda: calls.append(("end",))
    return module


def test_trackers_get_every_epoch_and_the_summary(tmp_path, monkeypatch, fashion_mnist_root):
    board = types.ModuleType("torch.utils.tensorboard")
    board.SummaryWriter = FakeWriter
    calls: list = []
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", board)
    monkeypatch.setitem(sys.modules, "tensorboard", types.ModuleType("tensorboard"))
    monkeypatch.setitem(sys.modules, "mlflow", fake_mlflow(calls))
    summary = run_experiment(tiny_config(extra=["report_to=[tensorboard, mlflow]"]), tmp_path / "run", quiet=True)

    writer = FakeWriter.last
    assert writer.log_dir == str(tmp_path / "run" / "tensorboard") and writer.closed
    tags = {(tag, step) for tag, _, step in writer.scalars}
    for model, epochs in (("teacher", 1), ("baseline", 2), ("student", 2)):
        for epoch in range(1, epochs + 1):
            for name in ("train_loss", "lr", "val_accuracy", "val_loss"):
                assert (f"{model}/{name}", epoch) in tags
    assert ("student/loss/soft", 2) in tags
    values = {tag: value for tag, value, _ in writer.scalars}
    assert values["test/student/accuracy"] == summary["models"]["student"]["accuracy"]

    assert calls[0] == ("start", "quick") and calls[-1] == ("end",)
    assert dict(calls[1][1])["distill.method"] == "kd"
    epochs = [c for c in calls if c[0] == "metrics" and c[2] is not None]
    assert any("student.val_accuracy" in c[1] and c[2] == 2 for c in epochs)
    final = [c for c in calls if c[0] == "metrics" and c[2] is None][0][1]
    assert final["test.student.accuracy"] == summary["models"]["student"]["accuracy"]
    assert ("artifact", str(tmp_path / "run" / "summary.json")) in calls


def test_a_missing_tracker_package_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'distill\[mlflow\]'"):
        trackers.open_trackers(["mlflow"], ".", {})
    with pytest.raises(ConfigError, match=r"pip install 'distill\[mlflow\]'"):  # before anything is written
        run_experiment(tiny_config(extra=["report_to=[mlflow]"]), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_epoch_callbacks_from_an_imported_module(tmp_path, monkeypatch, fashion_mnist_root):
    monkeypatch.setattr(trackers, "EPOCH_CALLBACKS", [])
    monkeypatch.setattr("distill.pipeline.experiment.EPOCH_CALLBACKS", trackers.EPOCH_CALLBACKS)
    (tmp_path / "hooks.py").write_text(
        "import json\nimport distill\n\n@distill.on_epoch\ndef log(trainer, record):\n"
        "    with open('epochs.jsonl', 'a') as f:\n        f.write(json.dumps([record['model'], record['epoch']]) + '\\n')\n")
    (tmp_path / "exp.yaml").write_text("name: hooked\n")
    rc = cli.main(["run", "exp.yaml", "--import", "./hooks.py", "--out", "runs/h", "--quiet",
                   *[f"--set={t}" for t in TINY]])
    assert rc == 0
    lines = [json.loads(line) for line in (tmp_path / "epochs.jsonl").read_text().splitlines()]
    assert lines == [["teacher", 1], ["baseline", 1], ["baseline", 2], ["student", 1], ["student", 2]]


def test_real_tensorboard_event_files(tmp_path, fashion_mnist_root):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    summary = run_experiment(tiny_config(extra=["report_to=[tensorboard]"]), tmp_path / "run", quiet=True)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("student/val_accuracy")] == [1, 2]
    assert events.Scalars("test/student/accuracy")[0].value == pytest.approx(summary["models"]["student"]["accuracy"])


def test_real_mlflow_run(tmp_path, monkeypatch, fashion_mnist_root):
    mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    summary = run_experiment(tiny_config(extra=["report_to=[mlflow]"]), tmp_path / "run", quiet=True)
    client = mlflow.tracking.MlflowClient()
    run = client.search_runs([client.get_experiment_by_name("Default").experiment_id])[0]
    assert run.data.metrics["test.student.accuracy"] == pytest.approx(summary["models"]["student"]["accuracy"])
    history = client.get_metric_history(run.info.run_id, "student.val_accuracy")
    assert [m.step for m in history] == [1, 2]
