"""Method combinations: the weighted sum of separate methods, the union of needs, adapters trained
and checkpointed, and the one-form config rule."""

import pytest
import torch
import yaml

from distill.config import load_config
from distill.config.load import dump_config
from distill.config.schema import TrainConfig
from distill.data.batches import InMemoryBatches
from distill.errors import ConfigError
from distill.knowledge.teacher import LiveTeacher
from distill.methods import Batch, Outputs, build_method
from distill.methods.combined import method_from_config
from distill.train.checkpoint import load_tensors
from distill.train.trainer import Trainer

from .methods_support import NUM_CLASSES, fixed, tiny_data, tiny_models

KD = {"method": "kd", "weight": 0.7, "options": {"temperature": 2.0, "alpha": 0.8}}
AT = {"method": "at", "weight": 0.3, "options": {"student_layer": "s", "teacher_layer": "t", "beta": 10.0}}


def outputs():
    student = Outputs(fixed(5, NUM_CLASSES, seed=1) * 3, {"s": fixed(5, 4, 6, 6, seed=2)})
    teacher = Outputs(fixed(5, NUM_CLASSES, seed=3) * 3, {"t": fixed(5, 8, 6, 6, seed=4)})
    return student, teacher, Batch(torch.zeros(5, 1), torch.tensor([0, 1, 2, 3, 1]))


def test_combined_loss_is_the_weighted_sum_of_the_separate_methods():
    student, teacher, batch = outputs()
    combined = build_method("combined", {"methods": [KD, AT]})
    got = combined.losses(student, teacher, batch)
    expected = {}
    for spec in (KD, AT):
        for term, value in build_method(spec["method"], spec["options"]).losses(student, teacher, batch).items():
            expected[f"{spec['method']}.{term}"] = spec["weight"] * value
    assert set(got) == {"kd.soft", "at.attention"} == set(expected)  # no label term: the trainer adds it once
    for key in expected:
        torch.testing.assert_close(got[key], expected[key])
    assert got["at.attention"] > 0 and got["kd.soft"] > 0  # the comparison is not 0 == 0


def test_needs_are_the_union_and_repeated_methods_get_distinct_names():
    fit = {"method": "fitnets", "options": {"student_layer": "features.1", "teacher_layer": "layer3"}}
    at = {"method": "at", "options": {"student_layer": ["features.0", "features.1"],
                                      "teacher_layer": ["layer2", "layer3"]}}
    needs = build_method("combined", {"methods": [fit, at]}).needs()
    assert needs.teacher
    assert needs.student_modules == ("features.1", "features.0")
    assert needs.teacher_modules == ("layer3", "layer2")
    twice = build_method("combined", {"methods": [KD, KD]})
    student, teacher, batch = outputs()
    assert set(twice.losses(student, teacher, batch)) == {"kd.soft", "kd#2.soft"}


def test_sub_method_adapters_are_trained_and_checkpointed(tmp_path):
    student, teacher = tiny_models()
    data = tiny_data()
    spec = [{"method": "kd"}, {"method": "fitnets", "weight": 0.5,
                               "options": {"student_layer": "features.1", "teacher_layer": "layer3"}}]
    method = build_method("combined", {"methods": spec})
    live = LiveTeacher(teacher, method.needs().teacher_modules)
    trainer = Trainer("student", student, TrainConfig(epochs=1, batch_size=16), method, teacher=live, checkpoint_dir=tmp_path)
    trainer._probe(data.val.inputs)
    before = method.state_dict()["parts.1.regressors.0.0.weight"].clone()
    trainer.fit(InMemoryBatches(data.train.inputs, data.train.targets, 16), data.val.inputs, data.val.targets)
    live.close()
    after = method.state_dict()["parts.1.regressors.0.0.weight"]
    assert not torch.equal(before, after)
    tensors, _ = load_tensors(tmp_path / "student-last.safetensors")
    assert torch.equal(tensors["method.parts.1.regressors.0.0.weight"], after)


def test_config_takes_exactly_one_form_and_reloads():
    cfg = load_config(data={"distill": {"methods": [KD, AT]}})
    assert cfg.distill.method == "combined" and len(cfg.distill.methods) == 2
    assert isinstance(method_from_config(cfg.distill), type(build_method("combined", {"methods": [KD]})))
    again = load_config(data=yaml.safe_load(dump_config(cfg)))  # a saved run's config.yaml reloads as-is
    assert again == cfg
    with pytest.raises(ConfigError, match="not both"):
        load_config(data={"distill": {"method": "kd", "methods": [KD]}})
    with pytest.raises(ConfigError, match="not both"):
        load_config(data={"distill": {"options": {"temperature": 2}, "methods": [KD]}})
    with pytest.raises(ConfigError, match="at least one"):
        load_config(data={"distill": {"methods": []}})
    with pytest.raises(ConfigError, match="no option"):
        method_from_config(load_config(data={"distill": {"methods": [{"method": "kd", "options": {"T": 2}}]}}).distill)


def test_a_combination_counts_the_label_loss_once():
    student, teacher, batch = outputs()
    assert build_method("combined", {"methods": [KD, AT]}).label_weight == 1.0  # the largest: at's 1.0 over kd's 0.1
    logit_only = build_method("combined", {"methods": [KD, {"method": "dkd"}, {"method": "lskd"}]})
    trainer = Trainer("student", torch.nn.Identity(), TrainConfig(), logit_only, teacher=lambda b: teacher)
    losses = trainer._step(Batch(student.logits, batch.targets))  # the identity model returns the logits
    assert [k for k in losses if "label" in k or "hard" in k] == ["label"]
    assert losses["label"].item() == pytest.approx(torch.nn.functional.cross_entropy(student.logits, batch.targets).item())
    configured = method_from_config(load_config(data={"distill": {"methods": [KD, AT], "label_weight": 0.3}}).distill)
    assert configured.label_weight == 0.3


def test_old_label_options_are_read_or_refused_with_their_new_name():
    assert build_method("kd", {"beta": 0.4}).label_weight == 0.4
    assert build_method("at", {"student_layer": "s", "teacher_layer": "t", "hard_weight": 0.0}).label_weight == 0.0
    assert build_method("tfkd", {"a": 0.8}).correct_prob == 0.8
    old = {"method": "at", "options": {"student_layer": "s", "teacher_layer": "t", "hard_weight": 0.0}}
    with pytest.raises(ConfigError, match="counts the label loss once.*distill.label_weight"):
        build_method("combined", {"methods": [KD, old]})
    with pytest.raises(ConfigError, match="old name of distill.label_weight"):
        method_from_config(load_config(data={"distill": {"method": "kd", "options": {"beta": 0.2},
                                                         "label_weight": 0.5}}).distill)
    assert method_from_config(load_config(data={"distill": {"method": "kd", "options": {"beta": 0.2}}}).distill
                              ).label_weight == 0.2


def test_cli_lists_the_new_methods(capsys):
    from distill.cli import main

    assert main(["methods"]) == 0
    listing = capsys.readouterr().out
    for name in ("combined", "dml", "mse_kd", "mae_kd", "supervised_regression"):
        assert name in listing
    assert main(["methods", "dml"]) == 0
    assert "temperature = 1.0" in capsys.readouterr().out
