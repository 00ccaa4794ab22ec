"""Regression: losses against hand-computed values, metrics against NumPy formulas, best-checkpoint
selection on the lowest validation MSE, and the diabetes example end to end."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from distill.cli import main
from distill.config.schema import TrainConfig
from distill.data.batches import InMemoryBatches
from distill.data.bundle import Split, from_tensors
from distill.errors import ConfigError
from distill.evaluate.regression import regression_metrics
from distill.methods import Batch, Outputs, build_method
from distill.models import build_model
from distill.train.label_loss import label_loss
from distill.train.trainer import Trainer
from distill.train.validation import validation_metrics

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "regression_diabetes.yaml"
S = torch.tensor([[1.0], [2.0], [4.0]])
T = torch.tensor([[0.0], [2.0], [5.0]])
Y = torch.tensor([1.5, 2.0, 3.0])  # (N,) targets are reshaped to the (N, 1) predictions


@pytest.mark.parametrize("name,hard_loss,soft,hard", [
    ("mse_kd", "mse", (1 + 0 + 1) / 3, (0.25 + 0 + 1) / 3),
    ("mse_kd", "l1", (1 + 0 + 1) / 3, (0.5 + 0 + 1) / 3),
    ("mae_kd", "mse", (1 + 0 + 1) / 3, (0.25 + 0 + 1) / 3),
    ("mae_kd", "l1", (1 + 0 + 1) / 3, (0.5 + 0 + 1) / 3),
])
def test_regression_kd_losses_match_hand_computed_values(name, hard_loss, soft, hard):
    method = build_method(name, {"alpha": 0.3, "beta": 2.0, "hard_loss": hard_loss})  # beta: the old label weight
    losses = method.losses(Outputs(S), Outputs(T), Batch(torch.zeros(3, 1), Y))
    assert set(losses) == {"soft"} and losses["soft"].item() == pytest.approx(0.3 * soft)
    trainer = Trainer("s", torch.nn.Identity(), TrainConfig(), method, teacher=lambda b: Outputs(T), task="regression")
    label = trainer._step(Batch(S, Y))["label"]
    assert label.item() == pytest.approx(2.0 * hard)


def test_mse_and_mae_differ_where_errors_are_not_all_one():
    t = torch.tensor([[0.0], [2.0], [7.0]])  # errors 1, 0, 3
    mse = build_method("mse_kd", {"alpha": 1.0}).losses(Outputs(S), Outputs(t), Batch(S, Y))
    mae = build_method("mae_kd", {"alpha": 1.0}).losses(Outputs(S), Outputs(t), Batch(S, Y))
    assert mse["soft"].item() == pytest.approx(10 / 3) and mae["soft"].item() == pytest.approx(4 / 3)


def test_supervised_regression_and_bad_hard_loss():
    method = build_method("supervised_regression", {"loss": "l1"})
    assert method.losses(Outputs(S), None, Batch(S, Y)) == {}
    loss = Trainer("s", torch.nn.Identity(), TrainConfig(), method, task="regression")._step(Batch(S, Y))
    assert loss["label"].item() == pytest.approx(0.5)
    nan = torch.tensor([1.5, float("nan"), 3.0])  # a row without a target is masked
    assert label_loss(S, nan, "regression", "l1").item() == pytest.approx((0.5 + 1.0) / 2)
    with pytest.raises(ConfigError, match="'hard_loss': input should be 'mse' or 'l1'"):
        build_method("mse_kd", {"hard_loss": "huber"})


def test_metrics_match_numpy_formulas():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(50, 1))
    p = y + rng.normal(scale=0.5, size=(50, 1))
    r = p + rng.normal(scale=0.1, size=(50, 1))
    got = regression_metrics(torch.tensor(p), torch.tensor(y), scale=3.0, reference=torch.tensor(r))
    assert got["mae"] == pytest.approx(np.mean(np.abs(p - y)) * 3)
    assert got["mse"] == pytest.approx(np.mean((p - y) ** 2) * 9)
    assert got["r2"] == pytest.approx(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))
    assert got["teacher_mse"] == pytest.approx(np.mean((p - r) ** 2) * 9)
    val = validation_metrics(torch.tensor(p), torch.tensor(y[:, 0]), "regression")
    assert val["val_mse"] == pytest.approx(np.mean((p - y) ** 2)) and val["val_loss"] == val["val_mse"]


def test_trainer_keeps_the_epoch_with_the_lowest_validation_mse(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(160, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]]) + 0.1 * torch.randn(160, 1, generator=g)
    data = from_tensors("lin", Split(x[:120], y[:120]), Split(x[120:], y[120:]), num_classes=1, val_size=30)
    torch.manual_seed(0)
    model = build_model("mlp", (4,), 1, hidden=[16])
    # A large constant learning rate makes validation MSE go up and down, so "best" is not "last".
    cfg = TrainConfig(epochs=6, batch_size=16, lr=0.2, schedule="constant", momentum=0.0)
    trainer = Trainer("reg", model, cfg, build_method("supervised_regression"), checkpoint_dir=tmp_path,
                      task="regression")
    result = trainer.fit(InMemoryBatches(data.train.inputs, data.train.targets, 16), data.val.inputs,
                         data.val.targets)
    mses = [r["val_mse"] for r in result.history]
    assert result.best_epoch == int(np.argmin(mses)) + 1 != len(mses)
    assert trainer.validate(data.val.inputs, data.val.targets)["val_mse"] == pytest.approx(min(mses), rel=1e-5)


def test_diabetes_example_runs_end_to_end(tmp_path, capsys):
    pytest.importorskip("sklearn")
    out = tmp_path / "run"
    args = ["run", str(EXAMPLE), "--out", str(out), "--quiet",
            "--set", "teacher.train.epochs=3", "--set", "student.train.epochs=3", "--set", "evaluate.latency=false"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == "regression" and summary["dataset"] == "diabetes" and summary["gap_metric"] == "r2"
    models = summary["models"]
    assert set(models) == {"teacher", "baseline", "student"}
    for entry in models.values():
        assert entry["mse"] > 0 and entry["mae"] > 0 and entry["r2"] <= 1
        assert entry["mse"] >= entry["mae"] ** 2 - 1e-6  # Jensen: mean(e^2) >= mean(|e|)^2
    t, b, s = (models[r]["r2"] for r in ("teacher", "baseline", "student"))
    assert summary["gap_recovered"] == pytest.approx((s - b) / (t - b))
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all({"val_mse", "val_mae", "val_r2"} <= set(r) for r in lines)
    assert (out / "checkpoints" / "student-best.safetensors").is_file()

    # `distill evaluate` rebuilds the run's split and scaling from its config.yaml: regression metrics
    capsys.readouterr()
    assert main(["evaluate", str(out / "checkpoints" / "student-best.safetensors"), "--no-latency"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "regression" and result["samples"] == summary["test_samples"]
    for key in ("mae", "mse", "r2"):
        assert result[key] == pytest.approx(models["student"][key]), key


def test_diabetes_split_is_seeded_and_standardised_on_train():
    pytest.importorskip("sklearn")
    from distill.config.schema import DataConfig
    from distill.data.bundle import load_data

    a, b = load_data(DataConfig(dataset="diabetes", val_size=66)), load_data(DataConfig(dataset="diabetes", val_size=66))
    assert (len(a.train), len(a.val), len(a.test)) == (288, 66, 88)
    assert torch.equal(a.test.inputs, b.test.inputs)
    torch.testing.assert_close(a.train.inputs.mean(0), torch.zeros(10), atol=1e-5, rtol=0)
    torch.testing.assert_close(a.train.targets.std(), torch.tensor(1.0), atol=1e-5, rtol=0)
    c = load_data(DataConfig(dataset="diabetes", val_size=66, split_seed=1))
    assert not torch.equal(a.test.inputs, c.test.inputs)


def test_train_model_api_takes_the_regression_task():
    from distill.api import train_model

    g = torch.Generator().manual_seed(1)
    x = torch.randn(80, 3, generator=g)
    y = x.sum(1, keepdim=True)
    data = from_tensors("sum", Split(x[:60], y[:60]), Split(x[60:], y[60:]), num_classes=1, val_size=20)
    torch.manual_seed(0)
    model = build_model("mlp", (3,), 1, hidden=[8])
    result = train_model(model, data, method="supervised_regression", train={"epochs": 3, "batch_size": 8,
                         "optimizer": "adamw", "lr": 0.01}, device="cpu", task="regression")
    assert result.best_epoch == int(np.argmin([r["val_mse"] for r in result.history])) + 1
    assert all("val_r2" in r and "val_accuracy" not in r for r in result.history)
