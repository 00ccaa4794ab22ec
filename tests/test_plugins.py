"""Own models and methods from the CLI and YAML: explicit imports, entry points, nothing implicit."""

from __future__ import annotations

import importlib.metadata
import json
import textwrap
from pathlib import Path

import pytest

from distill import cli
from distill.config import load_config
from distill.errors import ConfigError
from distill.models.registry import MODELS
from tests.tiny_run import TINY

PLUGIN = textwrap.dedent('''
    from torch import nn
    from torch.nn import functional as F

    from distill import Method, Needs, register_method, register_model

    @register_model("{name}_net")
    def my_net(input_shape, num_classes, width: int = 8):
        """A flat two-layer net."""
        size = 1
        for d in input_shape:
            size *= d
        return nn.Sequential(nn.Flatten(), nn.Linear(size, width), nn.ReLU(), nn.Linear(width, num_classes))

    @register_method("{name}_kd")
    class MyKD(Method):
        summary = "mean squared error between logits"

        def needs(self):
            return Needs(teacher=True)

        def losses(self, student, teacher, batch):
            return {{"soft": F.mse_loss(student.logits, teacher.logits)}}  # the trainer adds the label loss
''')


@pytest.fixture(autouse=True)
def _restore_registries():
    """Names a test's plugin registers are removed afterwards (other tests compare the registries)."""
    from distill.data.registry import DATASETS
    from distill.methods import METHODS

    saved = {registry: dict(registry._items) for registry in (MODELS, METHODS, DATASETS)}
    yield
    for registry, items in saved.items():
        registry._items.clear()
        registry._items.update(items)


def write_plugin(folder: Path, name: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(PLUGIN.format(name=name))
    return path


def test_yaml_imports_a_file_relative_to_the_yaml(tmp_path):
    folder = tmp_path / "exp"
    folder.mkdir()
    write_plugin(folder, "yamlplug")
    (folder / "exp.yaml").write_text("imports: [./yamlplug.py]\nstudent:\n  model: {name: yamlplug_net, width: 4}\n"
                                     "distill: {method: yamlplug_kd}\n")
    assert "yamlplug_net" not in MODELS
    cfg = load_config(folder / "exp.yaml")
    assert "yamlplug_net" in MODELS
    # stored absolute, so the run folder's config.yaml reloads from anywhere (and does not register twice)
    assert cfg.imports == [str((folder / "yamlplug.py").resolve())]
    assert load_config(data=cfg.model_dump()).imports == cfg.imports


def test_run_with_cli_import_trains_an_own_model_and_method(tmp_path, fashion_mnist_root, capsys):
    write_plugin(tmp_path, "cliplug")
    (tmp_path / "exp.yaml").write_text("name: own\nstudent:\n  model: {name: cliplug_net, width: 8}\n"
                                       "distill: {method: cliplug_kd}\n")
    tiny = [t for t in TINY if not t.startswith(("student.model", "distill.options"))]  # its own method
    rc = cli.main(["run", "exp.yaml", "--import", "./cliplug.py", "--out", "runs/own", "--quiet",
                   *[f"--set={t}" for t in tiny], "--set=student.model={name: cliplug_net, width: 8}"])
    assert rc == 0
    summary = json.loads((tmp_path / "runs/own/summary.json").read_text())
    assert summary["method"] == "cliplug_kd"
    assert "cliplug.py" in (tmp_path / "runs/own/config.yaml").read_text()  # the run remembers its imports


def test_models_lists_an_imported_model(tmp_path, capsys):
    write_plugin(tmp_path, "listplug")
    assert cli.main(["models", "listplug_net", "--import", str(tmp_path / "listplug.py")]) == 0
    assert "listplug_net" in capsys.readouterr().out


def test_module_name_import_from_the_current_folder(tmp_path, capsys):
    write_plugin(tmp_path, "modplug")  # tests run in tmp_path; the console script has no '' on sys.path
    assert cli.main(["methods", "--import", "modplug"]) == 0
    assert "modplug_kd" in capsys.readouterr().out


@pytest.mark.parametrize("spec, message", [
    ("./missing_file.py", "no such file"),
    ("no_such_module_xyz", "no module named 'no_such_module_xyz'"),
])
def test_bad_imports_are_one_line_errors(spec, message, capsys):
    assert cli.main(["models", "--import", spec]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_failing_plugin_names_the_file_and_line(tmp_path):
    (tmp_path / "broken.py").write_text("x = 1\nraise RuntimeError('oops')\n")
    with pytest.raises(ConfigError, match=r"RuntimeError: oops \(broken.py line 2\)"):
        load_config(data={"imports": [str(tmp_path / "broken.py")]})


def test_yaml_without_imports_executes_nothing(tmp_path):
    (tmp_path / "evil.py").write_text("raise SystemExit('must not run')\n")
    (tmp_path / "exp.yaml").write_text("name: plain\n")
    assert load_config(tmp_path / "exp.yaml").imports == []


def test_entry_points_are_loaded_on_first_unknown_name(tmp_path, monkeypatch):
    write_plugin(tmp_path, "epplug")
    monkeypatch.syspath_prepend(str(tmp_path))
    from distill import plugins

    entry = importlib.metadata.EntryPoint(name="epplug", value="epplug", group=plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: [entry] if group == plugins.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(plugins, "_entry_points_loaded", False)
    assert callable(MODELS.get("epplug_net"))


def test_evaluate_and_bench_on_checkpoints_of_own_modules(tmp_path, capsys):
    import distill
    from tests.helpers import blobs

    plugin = write_plugin(tmp_path, "ckptplug")
    data = blobs(n=128)
    load_config(data={"imports": [str(plugin)]})  # registers ckptplug_net
    model = MODELS.get("ckptplug_net")(input_shape=(1, 8, 8), num_classes=4, width=8)
    train = {"epochs": 1, "batch_size": 32}
    distill.train_model(model, data, train=train, checkpoint_dir=tmp_path / "plain")
    distill.train_model(model, data, train=train, checkpoint_dir=tmp_path / "named",
                        model_spec={"name": "ckptplug_net", "options": {"width": 8}})
    plain, named = tmp_path / "plain/model-best.safetensors", tmp_path / "named/model-best.safetensors"

    assert cli.main(["evaluate", str(plain), "--no-latency"]) == 2
    err = capsys.readouterr().err
    assert "own module" in err and "registered model name" in err and "Traceback" not in err

    # bench times the file it can rebuild and says why it skips the other
    rc = cli.main(["bench", str(plain), str(named), "--repeats", "2", "--batch", "4", "--json", "bench.json",
                   "--import", str(plugin)])
    out = capsys.readouterr()
    assert rc == 2 and "skipped" in out.err and "own module" in out.err
    rows = json.loads(Path("bench.json").read_text())["rows"]
    assert [r["model"] for r in rows] == [str(named)]


def test_an_imported_dataset_works_by_name(tmp_path):
    (tmp_path / "mydata.py").write_text(textwrap.dedent('''
        import torch
        from distill.data import Split, from_tensors, register_dataset

        @register_dataset("plugdata", kind="image")
        def load(cfg, teacher_path=None):
            """Blobs: four Gaussian classes of 1x8x8 images."""
            g = torch.Generator().manual_seed(0)
            centers = torch.randn(4, 1, 8, 8, generator=g)
            y = torch.randint(0, 4, (320,), generator=g)
            x = centers[y] + 0.5 * torch.randn(320, 1, 8, 8, generator=g)
            return from_tensors("plugdata", (x[:256], y[:256]), (x[256:], y[256:]), val_size=64)
    '''))
    (tmp_path / "exp.yaml").write_text("name: own-data\nimports: [./mydata.py]\ndata: {dataset: plugdata}\n"
                                       "teacher: {model: {name: mlp, hidden: [32]}, train: {epochs: 1}}\n"
                                       "student: {model: {name: mlp, hidden: [8]}, train: {epochs: 1}}\n"
                                       "evaluate: {latency_repeats: 1}\nruntime: {threads: 1}\n")
    assert cli.main(["run", "exp.yaml", "--out", "runs/d", "--quiet"]) == 0
    summary = json.loads((tmp_path / "runs/d/summary.json").read_text())
    assert summary["dataset"] == "plugdata" and summary["test_samples"] == 64
