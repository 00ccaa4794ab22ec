"""The distilled GBDT student on a fixed small problem: the torch walk of the trees against
scikit-learn's own predictions, fitting to teacher logits, the checkpoint round trip, a YAML run."""

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor  # noqa: E402

from distill.models import build_model  # noqa: E402
from distill.train.checkpoint import load_weights_into, save_tensors  # noqa: E402

from .test_modes import run  # noqa: E402

SETTINGS = {"max_iter": 15, "max_leaf_nodes": 6, "learning_rate": 0.2, "min_samples_leaf": 5}


def problem(n=120, classes=3, seed=0):
    g = np.random.default_rng(seed)
    x = g.normal(size=(n, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int) + (classes > 2) * (x[:, 2] > 0.8)
    return x, y


@pytest.mark.parametrize("classes", [2, 3])
def test_trees_trained_on_labels_predict_what_scikit_learn_predicts(classes):
    x, y = problem(classes=classes)
    model = build_model("gbdt", (4,), classes, **SETTINGS)
    model.fit_labels(torch.from_numpy(x), torch.from_numpy(y), "classification")
    ref = HistGradientBoostingClassifier(**SETTINGS, early_stopping=False, random_state=0).fit(x.astype(float), y)
    raw = model.raw(torch.from_numpy(x)).numpy()
    expected = ref.decision_function(x.astype(float))
    np.testing.assert_allclose(raw[:, 1] - raw[:, 0] if classes == 2 else raw, expected, atol=1e-9)
    assert (model(torch.from_numpy(x)).argmax(1).numpy() == ref.predict(x.astype(float))).all()


def test_distilled_trees_fit_the_teacher_logits_one_regressor_per_class():
    x, _ = problem()
    logits = np.stack([x[:, 0] * 2, x[:, 1] - x[:, 2], np.sin(x[:, 3])], axis=1)
    model = build_model("gbdt", (4,), 3, **SETTINGS)
    model.fit_targets(torch.from_numpy(x), torch.from_numpy(logits))
    for k in range(3):
        ref = HistGradientBoostingRegressor(**SETTINGS, early_stopping=False, random_state=0).fit(x.astype(float),
                                                                                                logits[:, k])
        np.testing.assert_allclose(model.raw(torch.from_numpy(x))[:, k].numpy(), ref.predict(x.astype(float)),
                                   atol=1e-9)
    assert model.feature.shape[0] == 3 * 15 and sum(p.numel() for p in model.parameters()) > 0


def test_probability_targets_give_log_probabilities_and_the_checkpoint_round_trips(tmp_path):
    x, _ = problem()
    probs = torch.softmax(torch.from_numpy(np.stack([x[:, 0], -x[:, 0], x[:, 1]], 1)), 1)
    model = build_model("gbdt", (4,), 3, target="probabilities", **SETTINGS)
    model.fit_targets(torch.from_numpy(x), probs)
    out = model(torch.from_numpy(x))
    assert torch.allclose(out.exp().sum(1), torch.ones(len(x)), atol=1e-5)
    save_tensors(tmp_path / "m.safetensors", model.state_dict(), {"model": {}})
    fresh = build_model("gbdt", (4,), 3, target="probabilities", **SETTINGS)
    load_weights_into(fresh, tmp_path / "m.safetensors")
    assert torch.equal(fresh(torch.from_numpy(x)), out)


def test_gbdt_student_runs_from_yaml_with_trees_as_the_baseline(tmp_path):
    summary, ckpt = run(tmp_path, {"method": "kd"}, data={"dataset": "breast_cancer", "val_size": 60, "augment": None},
                        teacher={"model": {"name": "mlp", "hidden": [16]}, "train": {"epochs": 3, "batch_size": 32}},
                        student={"model": {"name": "gbdt", "max_iter": 10}})
    models = summary["models"]
    assert models["student"]["accuracy"] > 0.85 and models["baseline"]["accuracy"] > 0.85
    assert (ckpt / "student-best.safetensors").is_file() and (ckpt / "baseline-best.safetensors").is_file()


def test_a_constant_output_gets_no_trees_so_a_binary_margin_costs_one_regressor():
    x, _ = problem()
    margin = np.stack([np.zeros(len(x)), x[:, 0] - x[:, 1]], axis=1)
    model = build_model("gbdt", (4,), 2, **SETTINGS)
    model.fit_targets(torch.from_numpy(x), torch.from_numpy(margin))
    assert model.feature.shape[0] == 15 and set(model.tree_output.tolist()) == {1}
    assert torch.equal(model.raw(torch.from_numpy(x))[:, 0], torch.zeros(len(x), dtype=torch.float64))
