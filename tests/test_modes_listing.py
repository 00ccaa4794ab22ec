"""`distill modes` lists the training modes like `distill methods` lists the methods (issue 22)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from distill import catalogue
from distill.cli import main
from distill.config.schema import ExperimentConfig
from distill.pipeline.modes import load_modes

BUILT_IN = {"offline", "online", "born_again", "takd", "reverse", "two_way"}


def config_keys(reads_key: str) -> list[str]:
    """'teacher.model / checkpoint / train' -> teacher.model, teacher.checkpoint, teacher.train."""
    keys, parent = [], ""
    for part in (p.strip() for p in reads_key.split("/")):
        if "." in part or not parent:
            parent = part.rsplit(".", 1)[0] if "." in part else ""
            keys.append(part)
        else:
            keys.append(f"{parent}.{part}")
    return keys


def is_config_key(key: str) -> bool:
    model = ExperimentConfig
    for name in key.split("."):
        fields = getattr(model, "model_fields", {})
        if name not in fields:
            return False
        annotation = fields[name].annotation
        # Optional[X] / X | None: the pydantic model inside
        model = next((a for a in getattr(annotation, "__args__", (annotation,)) if hasattr(a, "model_fields")),
                     annotation)
    return True


def test_every_built_in_mode_is_listed_with_a_summary_a_paper_and_real_config_keys(capsys):
    assert main(["modes"]) == 0
    out = capsys.readouterr().out
    for name in BUILT_IN:
        assert name in out
    registry = load_modes()
    for name in BUILT_IN:
        fn = registry.get(name)
        assert fn.mode_summary and fn.mode_paper and fn.mode_reads, name
        for reads_key in fn.mode_reads:
            for key in config_keys(reads_key):
                assert is_config_key(key), f"mode {name} names '{key}', which is not a config key"


@pytest.mark.parametrize("name, expected", [
    ("takd", ["arXiv:1902.03393", "distill.assistant.model", "distill.assistant.train"]),
    ("born_again", ["arXiv:1805.04770", "distill.generations"]),
    ("two_way", ["distill.teacher_lr"]),
    ("online", ["arXiv:1706.00384", "distill.peers"]),
])
def test_one_mode_shows_its_paper_and_the_keys_it_reads(name, expected, capsys):
    assert main(["modes", name]) == 0
    out = capsys.readouterr().out
    for text in expected:
        assert text in out, text


def test_an_unknown_mode_is_one_line_with_the_nearest_name(capsys):
    assert main(["modes", "born-again"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did you mean 'born_again'" in err


def test_listing_modes_does_not_import_torch():
    code = ("import sys; from distill.cli import main; main(['modes']); main(['modes', 'takd']);"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    env = {**os.environ, "PYTHONPATH": str(Path(catalogue.__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert "born_again" in out and "distill.assistant.model" in out
