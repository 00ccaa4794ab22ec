"""What `distill methods`, `distill models` and `distill modes` list, without importing torch.

``catalogue.json`` (next to this file) records every built-in method's summary, paper, docstring
and options, every model's options and every mode's summary, paper and config keys, with a hash
of the ``methods/``, ``models/`` and ``pipeline/modes/`` source files. When the hash matches the
files on disk the listing comes from it; when it does not (a method was added or edited and the file not regenerated), or when methods or models were already
imported (plugins may have registered more), the registries themselves are asked, which is
correct, only slower. ``tests/test_catalogue.py`` fails while the file is stale; regenerate with

    PYTHONPATH=src python -m distill.catalogue --write
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
INDEX = PACKAGE / "catalogue.json"
SOURCES = ("methods", "models", "pipeline/modes")


def sources_hash() -> str:
    h = hashlib.sha256()
    for folder in SOURCES:
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            h.update(str(path.relative_to(PACKAGE)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def live() -> dict:
    """The catalogue from the registries (imports every method and model, and torch)."""
    from distill.methods import METHODS, method_options
    from distill.models import MODELS, model_options

    methods = {}
    for name in METHODS.names():
        cls = METHODS.get(name)
        methods[name] = {"summary": cls.summary, "paper": cls.paper,
                         "doc": inspect.cleandoc(cls.__doc__) if cls.__doc__ else "",
                         "label_weight": getattr(cls, "label_weight", None),
                         "options": {k: repr(v) for k, v in method_options(cls).items()}}
    from distill.models.describe import describe_model, yaml_value

    models = {}
    for name in MODELS.names():
        summary, details = describe_model(name)
        models[name] = {"options": {k: repr(v) for k, v in model_options(name).items()}, "summary": summary,
                        "details": [{"name": d.name, "kind": d.kind, "default": yaml_value(d.default),
                                     "meaning": d.meaning} for d in details]}
    from distill.pipeline.modes import describe_mode, load_modes

    registry = load_modes()
    modes = {name: describe_mode(registry.get(name)) for name in registry.names()}
    return {"methods": methods, "models": models, "modes": modes}


def catalogue() -> dict:
    from distill.plugins import has_entry_points

    imported = any(f"distill.{folder.replace('/', '.')}" in sys.modules for folder in SOURCES)
    if not imported and not has_entry_points() and INDEX.is_file():  # plugins may register more names
        try:
            index = json.loads(INDEX.read_text())
        except (OSError, ValueError):
            index = {}
        if index.get("sources") == sources_hash():
            return index
    return live()


def write() -> Path:
    INDEX.write_text(json.dumps({"sources": sources_hash(), **live()}, indent=1) + "\n")
    return INDEX


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m distill.catalogue --write")
    print(f"wrote {write()}")
