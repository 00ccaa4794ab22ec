"""Typed options from factory signatures, YAML edge cases, compatibility checks: the exact messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import pytest
import torch
from pydantic import Field

from distill.config import load_config
from distill.errors import CompatibilityError, ConfigError, DataError
from distill.methods import Method, Needs, build_method
from distill.models import MODELS, build_model, register_model
from distill.options import check, validate_options
from distill.preflight import check_config, check_data
from tests.helpers import blobs


class AnnotatedKD(Method):
    """A method whose constraints are declared the way methods/ declares them."""

    def __init__(self, temperature: Annotated[float, Field(gt=0)] = 4.0,
                 alpha: Annotated[float, Field(ge=0)] = 0.9, layers: str | Sequence[str] | None = None):
        super().__init__()
        self.temperature, self.alpha = temperature, alpha

    def needs(self) -> Needs:
        return Needs(teacher=False)


@pytest.fixture(autouse=True)
def _test_registrations(monkeypatch):
    """Registered for these tests only (the catalogue test compares the registries with catalogue.json)."""
    from distill.methods import METHODS

    AnnotatedKD.name = "test_annotated_kd"
    monkeypatch.setitem(METHODS._items, "test_annotated_kd", AnnotatedKD)
    monkeypatch.setattr(MODELS, "_items", dict(MODELS._items))


def test_method_annotations_are_honoured():
    for options, message in (({"temperature": 0}, "'temperature': input should be greater than 0, got 0"),
                             ({"alpha": -1}, "'alpha': input should be greater than or equal to 0, got -1"),
                             ({"alpha": float("nan")}, "'alpha': input should be a finite number"),
                             ({"temperature": "hot"}, "'temperature': input should be a valid number"),
                             ({"layers": 5}, "'layers': expected a string or a list of strings or null, got 5"),
                             ({"alhpa": 1}, "has no option 'alhpa' (did you mean 'alpha'?)")):
        with pytest.raises(ConfigError, match=None) as err:
            build_method("test_annotated_kd", options)
        assert message in str(err.value), str(err.value)
    assert build_method("test_annotated_kd", {"temperature": "2.5"}).temperature == 2.5  # YAML text coerced


def test_config_errors_name_the_key_expected_and_given(tmp_path):
    cfg = load_config(data={"distill": {"method": "test_annotated_kd", "options": {"alpha": -1}}})
    with pytest.raises(ConfigError) as err:
        check_config(cfg, "x.yaml")
    assert str(err.value).startswith("x.yaml: distill.options: 'alpha': input should be greater than or equal to 0")
    cfg = load_config(data={"student": {"model": {"name": "resnet", "depth": 10}}})
    with pytest.raises(ConfigError, match=r"x.yaml: student.model: 'depth': resnet depth must be 6n\+2.*got 10"):
        check_config(cfg, "x.yaml")
    cfg = load_config(data={"student": {"model": {"name": "mlp", "hidden": [-16]}}})
    with pytest.raises(ConfigError, match=r"'hidden\[0\]': input should be greater than or equal to 1, got -16"):
        check_config(cfg, "x.yaml")


def test_declared_cross_option_checks():
    def factory(input_shape, num_classes, low: int = 0, high: int = 1,
                width: Annotated[int, check(lambda w: w % 2 == 0, "width must be even")] = 2):
        return torch.nn.Identity()

    factory.option_checks = [lambda o: None if o["low"] <= o["high"] else (_ for _ in ()).throw(
        ValueError("low must not exceed high"))]
    register_model("test_cross_checked")(factory)
    with pytest.raises(ConfigError, match="low must not exceed high"):
        build_model("test_cross_checked", (1,), 2, low=3, high=1)
    with pytest.raises(ConfigError, match="width must be even"):
        validate_options("model", "test_cross_checked", factory, {"width": 3})


def test_yaml_numbers_duplicates_and_model_name_override(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("distill:\n  options: {temperature: 1e-3, alpha: 5E+1}\nstudent:\n  model: {name: mlp, hidden: [32]}\n")
    cfg = load_config(path, ["student.model.name=cnn"])
    assert cfg.distill.options == {"temperature": 0.001, "alpha": 50.0}
    assert cfg.student.model.name == "cnn" and cfg.student.model.options == {}  # mlp's hidden is gone
    cfg = load_config(path, ["student.model.channels=[8]", "student.model.name=cnn"])
    assert cfg.student.model.options == {"channels": [8]}  # order of --set does not matter
    path.write_text("student:\n  train: {epochs: 1}\nstudent:\n  train: {epochs: 2}\n")
    with pytest.raises(ConfigError, match="duplicate key 'student' at line 3 \\(first at line 1\\)"):
        load_config(path)
    with pytest.raises(ConfigError, match="--set student.train.epochs=\\[1,: the value is not valid YAML"):
        load_config(None, ["student.train.epochs=[1,"])


def test_empty_config_is_announced_first(tmp_path, capsys, tiny_fashion_mnist):
    from distill.cli import main

    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n")
    assert main(["run", str(path), "--check", "--set", "data.val_size=100", "--set", "data.train_subset=200",
                 "--set", "runtime.device=cpu"]) == 0
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith(f"note: {path} is empty, so every setting is its default")


def test_task_method_and_data_fit():
    with pytest.raises(CompatibilityError, match="method 'mse_kd' is for regression but task is 'classification'"):
        check_config(load_config(data={"distill": {"method": "mse_kd"}}))
    data = blobs(n=64)
    with pytest.raises(CompatibilityError, match="task: regression but blobs has class labels"):
        check_data(load_config(data={"task": "regression", "distill": {"method": "mse_kd"}}), data)
    data.train.targets = torch.zeros_like(data.train.targets)
    with pytest.raises(DataError, match="every training label is the same"):
        check_data(load_config(data={}), data)


def test_devices_and_precision_checked_before_anything(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:99"):
        with pytest.raises(ConfigError, match="no CUDA device"):
            check_config(load_config(data={"runtime": {"device": device}}))
    with pytest.raises(ConfigError, match="expected auto, cpu, cuda, cuda:N or mps"):
        load_config(data={"runtime": {"device": "gpu"}})
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        check_config(load_config(data={"runtime": {"precision": "fp16"}}))


def test_silently_accepted_values_are_refused():
    for data, key in (({"student": {"train": {"lr": float("inf")}}}, "student.train.lr"),
                      ({"student": {"train": {"epochs": 10**20}}}, "student.train.epochs"),
                      ({"student": {"train": {"batch_size": 10**30}}}, "student.train.batch_size"),
                      ({"evaluate": {"latency_repeats": 10**15}}, "evaluate.latency_repeats"),
                      ({"name": "../../x"}, "name"), ({"name": "x" * 300}, "name"), ({"seed": 2**128}, "seed")):
        with pytest.raises(ConfigError, match=f"'{key}'"):
            load_config(data=data)
    for options, key in (({"dropout": -0.5}, "dropout"), ({"hidden": [0]}, "hidden[0]"),
                         ({"convs_per_stage": -1}, "convs_per_stage"), ({"flatten": "yes please"}, "flatten")):
        name = "mlp" if key.startswith("hidden") else "cnn"
        with pytest.raises(ConfigError, match=f"'{key}'".replace("[", "\\[").replace("]", "\\]")):
            check_config(load_config(data={"student": {"model": {"name": name, **options}}}))


@pytest.mark.parametrize("name, options, message", [
    ("ds_cnn", {"blocks": 0}, "'blocks': input should be greater than or equal to 1, got 0"),
    ("ds_cnn", {"first_kernel": [3]}, "'first_kernel': value should have at least 2 items"),
    ("speech_cnn", {"dropout": 1.5}, "'dropout': input should be less than 1, got 1.5"),
    ("soft_tree", {"depth": 40}, "'depth': input should be less than or equal to 16, got 40"),
    ("soft_tree", {"inference": "argmax"}, "'inference': input should be 'max_path' or 'mixture'"),
    ("gbdt", {"target": "probs"}, "'target': input should be 'logits' or 'probabilities', got 'probs'"),
    ("gbdt", {"max_leaf_nodes": 1}, "'max_leaf_nodes': input should be greater than or equal to 2, got 1"),
])
def test_speech_and_tree_model_options_have_ranges(name, options, message):
    from distill.models.registry import check_model_options

    with pytest.raises(ConfigError) as err:
        check_model_options(name, options, "student.model")
    assert message in str(err.value), str(err.value)
    assert str(err.value).startswith("student.model: ") and "\n" not in str(err.value)


def test_choices_and_own_meanings_are_described():
    from distill.models.describe import describe_model

    options = {o.name: o for o in describe_model("soft_tree")[1]}
    assert options["inference"].kind == "one of max_path, mixture"
    assert options["depth"].kind == "int >= 1, <= 16" and "leaves" in options["depth"].meaning  # not resnet's 6n+2
