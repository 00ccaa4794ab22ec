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
    return {"methods": methods, "models": models, "modes": modes, "families": live_families()}


def live_families() -> dict:
    """Each model family (torchvision:, timm:, hf:): what it is, how to install it, how many names its
    library offers (counted when this file is written; ``distill models PREFIX`` lists them live)."""
    from importlib.metadata import PackageNotFoundError, version

    from distill.models.families import FAMILIES

    families = {}
    for prefix, family in FAMILIES.items():
        entry = {"summary": family.summary, "module": family.module, "install": family.install,
                 "count": None, "version": None}
        if family.installed():
            try:
                entry["version"] = version(family.module)
            except PackageNotFoundError:
                pass
            entry["count"] = len(family.names()) or None
        families[prefix] = entry
    return families


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


def family_state(prefix: str, entry: dict) -> str:
    """'80 names (torchvision 0.29.1)', or how to install the missing library (no import: no torch)."""
    import importlib.util

    if importlib.util.find_spec(entry["module"]) is None:
        return f"not installed: {entry['install']}"
    if prefix == "hf":
        return "a local directory of your own (config.json, weights optional); nothing is downloaded"
    counted = f" (counted for {entry['module']} {entry['version']})" if entry.get("version") else ""
    return f"{entry['count']} names{counted}: `distill models {prefix}` lists them" if entry.get("count") \
        else f"`distill models {prefix}` lists the names"


def show_families(families: dict, console) -> None:
    if not families:
        return
    console.print("\nmodels of other libraries (model: {name: PREFIX:NAME, weights: FILE}, docs/models.md):")
    for prefix, entry in families.items():
        form = f"{prefix}:<{'directory' if prefix == 'hf' else 'name'}>"
        console.print(f"[bold]{form:<18}[/bold] {entry['summary']}; {family_state(prefix, entry)}")


def show_family(name: str, entry: dict, console) -> int:
    """``distill models torchvision`` (the names), ``'timm:*vit*'`` (those that match), ``torchvision:resnet18``
    (what it is and its options). Imports the library."""
    from fnmatch import fnmatch

    from distill.models.families import FAMILIES, class_options

    prefix, _, rest = name.partition(":")
    family = FAMILIES[prefix]
    family.require()
    if prefix == "hf":
        console.print(f"hf:<directory>: {entry['summary']}. Give a local directory written by save_pretrained, "
                      f"e.g. model: {{name: 'hf:models/my-vit'}}; options: weights (a local file), task "
                      f"(image, text or audio; default from config.json), or fields of its config")
        return 0
    if rest and not any(c in rest for c in "*?["):
        family.resolve(rest)
        from distill.models.vision_libs import model_builder

        options = class_options(model_builder(prefix, rest))
        console.print(f"[bold]{name}[/bold]: {entry['summary']} (model: {{name: '{name}', OPTION: VALUE}})")
        console.print("  [bold]weights[/bold] (a local .safetensors, .pt or .pth file, default none): its head "
                      "is replaced when its classes differ from the data's")
        console.print(f"  options of its class: {', '.join(options) or 'none'}")
        return 0
    names = [n for n in family.names() if fnmatch(n, rest or "*")]
    console.print(" ".join(names) if names else f"no {prefix} model matches '{rest}'")
    console.print(f"{len(names)} of the {len(family.names())} {prefix} names; use one as model: "
                  f"{{name: '{prefix}:NAME'}} (`distill models {prefix}:NAME` for its options)")
    return 0


def write() -> Path:
    INDEX.write_text(json.dumps({"sources": sources_hash(), **live()}, indent=1) + "\n")
    return INDEX


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m distill.catalogue --write")
    print(f"wrote {write()}")
