"""Run folders: refused when used, written only after the checks, locked, tidied, metrics kept whole."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from distill.cli import main
from distill.config import TrainConfig
from distill.errors import NonFiniteLossError
from distill.methods import Method
from distill.rundir import RunFolderBusy, RunLock, append_missing_records, open_run_folder
from distill.train.checkpoint import load_tensors
from distill.train.trainer import MetricsLog, Trainer
from tests.fuzz_cases import BASE
from tests.helpers import blobs, subprocess_env


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(BASE))
    return path


def run(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def test_used_folder_refused_unless_resume_or_overwrite(tmp_path, config, capsys, tiny_fashion_mnist):
    out = tmp_path / "run"
    assert run(["run", str(config), "--out", str(out), "--quiet"], capsys)[0] == 0
    first = (out / "metrics.jsonl").read_text()
    (out / "student.onnx").write_bytes(b"old export")
    (out / "export.json").write_text("{}")
    code, err = run(["run", str(config), "--out", str(out), "--quiet"], capsys)
    assert code == 2 and "already holds files of a run" in err and "--overwrite" in err
    assert (out / "metrics.jsonl").read_text() == first  # untouched
    assert run(["run", str(config), "--out", str(out), "--quiet", "--overwrite"], capsys)[0] == 0
    assert not (out / "student.onnx").exists() and not (out / "export.json").exists()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert sorted((r["model"], r["epoch"]) for r in records) == [("baseline", 1), ("student", 1), ("teacher", 1)]
    assert not (out / ".lock").exists()  # released at the end


def test_nothing_written_before_config_and_data_are_checked(tmp_path, config, capsys, tiny_fashion_mnist):
    out = tmp_path / "never"
    for bad in (["--set", "student.model.hidden=[-16]"], ["--set", "data.val_size=100000"],
                ["--set", "task=regression"], ["--set", "student.model={name: cnn, channels: [4], flatten: 7}"]):
        code, err = run(["run", str(config), "--out", str(out), "--quiet", *bad], capsys)
        assert code == 2 and err.count("\n") == 1, err
        assert not out.exists(), bad
    assert not (tmp_path / "runs").exists()


def test_resume_with_nothing_to_resume_says_so(tmp_path, config, capsys, tiny_fashion_mnist):
    (tmp_path / "empty").mkdir()
    for folder in ("empty", "missing"):
        code, err = run(["run", str(config), "--out", str(tmp_path / folder), "--resume", "--quiet"], capsys)
        assert code == 2 and "nothing to resume" in err
    assert not (tmp_path / "missing").exists() and not any((tmp_path / "empty").iterdir())


def test_second_process_on_a_run_folder_is_refused(tmp_path, config, capsys, tiny_fashion_mnist):
    out = tmp_path / "shared"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from distill.rundir import RunLock; "
         "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)", str(out)],
        stdout=subprocess.PIPE, text=True, env=subprocess_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        code, err = run(["run", str(config), "--out", str(out), "--quiet"], capsys)
        assert code == 2 and f"pid {holder.pid}" in err and "in use by another distill run" in err
        with pytest.raises(RunFolderBusy):
            RunLock(out).acquire()
    finally:
        holder.kill()
        holder.wait()
    # the kernel dropped the dead owner's lock: the folder is usable again, the stale file is taken over
    assert RunLock(out).holder() is None
    assert run(["run", str(config), "--out", str(out), "--quiet"], capsys)[0] == 0


def test_lock_in_one_process_and_stale_temporaries(tmp_path):
    folder = tmp_path / "r"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "student-last.safetensors").write_bytes(b"x")
    stale = folder / "checkpoints" / ".student-last.safetensors.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    (folder / ".summary.json.x.tmp").write_text("{")
    lock = open_run_folder(folder, resume=True)
    try:
        assert not stale.exists() and not (folder / ".summary.json.x.tmp").exists()
        assert (folder / ".lock").read_text().strip().isdigit()
        with pytest.raises(RunFolderBusy):
            RunLock(folder).acquire()
    finally:
        lock.release()
    RunLock(folder).acquire().release()


class _Interrupt(BaseException):
    pass


def test_metrics_record_and_checkpoint_are_committed_together(tmp_path, monkeypatch):
    """A kill between an epoch's checkpoint and its metrics line: the line comes back on resume."""
    metrics = MetricsLog(tmp_path / "metrics.jsonl")
    original = MetricsLog.write

    def write_then_die(self, record):
        if record["epoch"] == 2:
            raise _Interrupt  # the checkpoint of epoch 2 is on disk, its line is not
        original(self, record)

    data = blobs(n=128)
    cfg = TrainConfig(epochs=3, batch_size=32)

    def trainer():
        import torch

        from distill.methods.supervised import Supervised
        from distill.models import build_model

        torch.manual_seed(0)
        model = build_model("mlp", data.input_shape, data.num_classes, hidden=[8])
        return Trainer("student", model, cfg, Supervised(), checkpoint_dir=tmp_path / "checkpoints",
                       metrics_log=metrics)

    monkeypatch.setattr(MetricsLog, "write", write_then_die)
    with pytest.raises(_Interrupt):
        trainer().fit(_batches(data, cfg), data.val.inputs, data.val.targets)
    monkeypatch.setattr(MetricsLog, "write", original)
    with open(metrics.path, "a") as f:
        f.write('{"model": "student", "ep')  # and a torn line from the kill
    trainer().fit(_batches(data, cfg), data.val.inputs, data.val.targets, resume=True)
    records = [json.loads(line) for line in metrics.path.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    _, meta = load_tensors(tmp_path / "checkpoints" / "student-last.safetensors")
    assert [r["epoch"] for r in meta["trainer_state"]["history"]] == [1, 2, 3]
    assert append_missing_records(metrics.path, "student", meta["trainer_state"]["history"]) == 0


def _batches(data, cfg):
    from distill.data.batches import InMemoryBatches

    return InMemoryBatches(data.train.inputs, data.train.targets, cfg.batch_size, shuffle=True, seed=0)


class BlowsUpSoft(Method):
    """A distillation term with a huge weight (alpha 1e30) makes the loss infinite from the first step."""

    def needs(self):
        from distill.methods import Needs

        return Needs(teacher=False)

    def losses(self, student, teacher, batch):
        return {"soft": student.logits.pow(2).mean() * 1e30 * 1e30}  # the trainer adds the label loss


def test_nan_guard_says_what_exists_and_names_the_largest_term(tmp_path, monkeypatch):
    from distill.methods import METHODS

    BlowsUpSoft.name = "test_blows_up_soft"
    monkeypatch.setitem(METHODS._items, "test_blows_up_soft", BlowsUpSoft)  # for this test only
    from distill.api import train_model
    from distill.models import build_model

    data = blobs(n=128)
    with pytest.raises(NonFiniteLossError) as err:
        train_model(build_model("mlp", data.input_shape, data.num_classes, hidden=[8]), data,
                    method="test_blows_up_soft", train=TrainConfig(epochs=2, batch_size=32),
                    checkpoint_dir=tmp_path / "checkpoints")
    message = str(err.value)
    assert "the largest term is 'soft'" in message and "lower the weight of 'soft'" in message
    assert "no checkpoint of" in message and "last good checkpoint" not in message
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


def test_resume_checkpoint_of_another_model_names_it(tmp_path, config, capsys, tiny_fashion_mnist):
    out = tmp_path / "run"
    assert run(["run", str(config), "--out", str(out), "--quiet", "--set", "baseline=false"], capsys)[0] == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    saved["student"]["model"] = {"name": "mlp", "options": {"hidden": [6]}}
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(saved))
    (out / "config.yaml").write_text(yaml.safe_dump(saved))  # as if the folder's config had been edited
    code, err = run(["run", str(changed), "--out", str(out), "--resume", "--quiet"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "student-last.safetensors (built for model 'mlp' {hidden: [4]})" in err and "[4, 784]" in err

