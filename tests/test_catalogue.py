"""`distill methods` / `distill models` read catalogue.json (no torch import); it must match the registries."""

import json
import os
import subprocess
import sys
from pathlib import Path

from distill import catalogue
from distill.methods import METHODS
from distill.models import MODELS
from distill.pipeline.modes import MODES


def test_catalogue_json_is_fresh_and_matches_the_registries():
    index = json.loads(catalogue.INDEX.read_text())
    fix = "regenerate it: PYTHONPATH=src python -m distill.catalogue --write"
    assert index.pop("sources") == catalogue.sources_hash(), f"catalogue.json is stale; {fix}"
    live = catalogue.live()
    # other test modules register test-only methods and models while pytest collects them
    live["methods"] = {n: e for n, e in live["methods"].items() if METHODS.get(n).__module__.startswith("distill.")}
    live["models"] = {n: e for n, e in live["models"].items() if MODELS.get(n).__module__.startswith("distill.")}
    live["modes"] = {n: e for n, e in live["modes"].items() if MODES.get(n).__module__.startswith("distill.")}
    # how many names torchvision and timm offer depends on the installed versions (recorded beside the count)
    for families in (index["families"], live["families"]):
        for entry in families.values():
            entry.pop("count"), entry.pop("version")
    assert index == live, f"catalogue.json differs from the registries; {fix}"


def test_listing_methods_and_models_does_not_import_torch():
    code = ("import sys; from distill.cli import main; main(['methods']); main(['models']); main(['methods', 'kd']);"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    env = {**os.environ, "PYTHONPATH": str(Path(catalogue.__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert "kd" in out and "resnet20" in out and "temperature = 4.0" in out
    assert "torchvision:<name>" in out and "timm:<name>" in out and "hf:<directory>" in out


def test_a_stale_catalogue_falls_back_to_the_registries(monkeypatch, tmp_path):
    stale = tmp_path / "catalogue.json"
    stale.write_text(json.dumps({"sources": "old", "methods": {}, "models": {}}))
    monkeypatch.setattr(catalogue, "INDEX", stale)
    assert "kd" in catalogue.catalogue()["methods"]


def test_import_distill_is_light_and_every_public_name_resolves():
    import distill

    for name in distill.__all__:
        assert getattr(distill, name) is not None, name
    env = {**os.environ, "PYTHONPATH": str(Path(catalogue.__file__).resolve().parents[1])}
    code = "import sys, distill, distill.cli; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
