import pytest
import yaml

from distill.config import load_config
from distill.errors import CompatibilityError, ConfigError


def test_defaults_are_complete():
    cfg = load_config(data={})
    assert cfg.distill.method == "kd" and cfg.student.train.epochs >= 1 and cfg.data.val_size > 0


def test_unknown_key_suggests_nearest():
    with pytest.raises(ConfigError, match=r"unknown key 'student.train.epocs' \(did you mean 'epochs'\?\)"):
        load_config(data={"student": {"train": {"epocs": 3}}})
    with pytest.raises(ConfigError, match=r"unknown key 'teachr' \(did you mean 'teacher'\?\)"):
        load_config(data={"teachr": {}})


def test_wrong_type_names_key_and_expectation():
    with pytest.raises(ConfigError) as err:
        load_config(data={"student": {"train": {"lr": "fast"}}})
    assert "'student.train.lr'" in str(err.value) and "valid number" in str(err.value)
    with pytest.raises(ConfigError, match="'teacher.train.optimizer'"):
        load_config(data={"teacher": {"train": {"optimizer": "adam9"}}})


def test_set_overrides_and_short_model_form(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("student:\n  model: mlp\n")
    cfg = load_config(path, ["distill.options.temperature=2.5", "student.model.hidden=[8, 4]", "seed=7"])
    assert cfg.distill.options == {"temperature": 2.5}
    assert cfg.student.model.name == "mlp" and cfg.student.model.options == {"hidden": [8, 4]}
    assert cfg.seed == 7
    with pytest.raises(ConfigError, match="expects key=value"):
        load_config(path, ["seed"])


def test_set_long_form_option_on_a_short_form_model_keeps_the_files_options(tmp_path):
    # `model: {name: cnn, channels: ...}` in the file, `--set student.model.options.hidden=256` on the command
    # line: both spellings of a model option work (this one used to fail on 'student.model.channels')
    path = tmp_path / "c.yaml"
    path.write_text("student:\n  model: {name: cnn, channels: [4, 8], flatten: true}\n")
    for key in ("student.model.options.hidden", "student.model.hidden"):
        cfg = load_config(path, [f"{key}=256"])
        assert cfg.student.model.name == "cnn"
        assert cfg.student.model.options == {"channels": [4, 8], "flatten": True, "hidden": 256}


def test_yaml_is_parsed_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(path)
    assert not (tmp_path / "pwned").exists()


def test_missing_file():
    with pytest.raises(ConfigError, match="config file not found: nope.yaml"):
        load_config("nope.yaml")


def test_model_option_typo_refused_before_training(tmp_path, fashion_mnist_root):
    from distill.pipeline.experiment import run_experiment

    cfg = load_config(data={"student": {"model": {"name": "cnn", "chanels": [4]}}, "data": {"train_subset": 100}})
    with pytest.raises(ConfigError, match=r"model 'cnn' has no option 'chanels' \(did you mean 'channels'\?\)"):
        run_experiment(cfg, tmp_path / "run", quiet=True)


def test_class_count_mismatch_refused_before_training(tmp_path, fashion_mnist_root):
    from distill.pipeline.experiment import run_experiment

    cfg = load_config(data={
        "data": {"train_subset": 200, "val_size": 100, "test_subset": 100},
        "teacher": {"model": {"name": "mlp", "hidden": [8]}},
        "student": {"model": {"name": "cnn", "channels": [4], "num_classes": 7}},
    })
    with pytest.raises(CompatibilityError, match=r"the student outputs \(7,\) per sample but fashion_mnist has 10"):
        run_experiment(cfg, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run" / "checkpoints").exists()  # refused before any training


def test_teacher_student_output_mismatch_is_caught():
    import torch

    from distill.data.bundle import Split, from_tensors
    from distill.pipeline.building import check_compatible

    data = from_tensors("t", Split(torch.randn(20, 1, 4, 4), torch.randint(0, 3, (20,))),
                        Split(torch.randn(4, 1, 4, 4), torch.randint(0, 3, (4,))), num_classes=3, val_size=4)
    teacher = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    student = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 5))
    with pytest.raises(CompatibilityError, match=r"the student outputs \(5,\) per sample but t has 3 classes"):
        check_compatible(teacher, student, data)
    wrong_input = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(9, 3))
    with pytest.raises(CompatibilityError, match=r"the student cannot take inputs of shape \(1, 4, 4\)"):
        check_compatible(teacher, wrong_input, data)


def test_resolved_config_round_trips():
    from distill.config import dump_config

    cfg = load_config(data={"student": {"model": {"name": "mlp", "hidden": [16]}}})
    again = load_config(data=yaml.safe_load(dump_config(cfg)))
    assert again == cfg


def test_bad_layer_path_refused_before_teacher_training(tmp_path, fashion_mnist_root):
    from distill.pipeline.experiment import run_experiment

    cfg = load_config(data={
        "data": {"train_subset": 200, "val_size": 100, "test_subset": 100},
        "teacher": {"model": {"name": "resnet8"}},
        "student": {"model": {"name": "cnn", "channels": [4, 8]}},
        "distill": {"method": "at", "options": {"student_layer": "features.9", "teacher_layer": "layer2"}},
    })
    with pytest.raises(CompatibilityError, match="student has no module 'features.9'"):
        run_experiment(cfg, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_yaml_on_off_for_cache(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("cache: {mode: off}\n")
    assert load_config(path).cache.mode == "off"
    path.write_text("cache: off\n")
    assert load_config(path).cache.mode == "off"
    path.write_text("cache: {mode: on, views: 3}\n")
    cfg = load_config(path)
    assert cfg.cache.mode == "on" and cfg.cache.views == 3
