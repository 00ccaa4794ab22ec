"""YAML loading (safe_load only), --set overrides and one-line error messages."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from distill.config.schema import ExperimentConfig, long_model_form
from distill.config.yaml_io import describe_kind, parse_yaml, read_yaml_file
from distill.errors import ConfigError
from distill.options import first_error, short_repr


def _fields_at(path: tuple, root: type[BaseModel] = ExperimentConfig) -> list[str]:
    """The valid keys of the config section at ``path`` (for 'did you mean' hints)."""
    model: Any = root
    for part in path:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)


def format_validation_error(exc: ValidationError, source: str = "config") -> str:
    """One line: the first problem (key, what was expected, what was given) and how many more there are."""
    return f"{source}: {first_error(exc, known=_fields_at)}"


def parse_value(text: str, key: str = "") -> Any:
    """``--set`` values are YAML scalars or flow collections: 4, 0.5, 1e-3, true, [8, 16], {a: 1}."""
    if text == "":
        return ""
    try:
        return parse_yaml(text)
    except ConfigError as exc:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ConfigError(f"--set {key}={shown}: the value is not valid YAML ({exc}); "
                          f"quote text that contains ':', '#', '[' or '{{', e.g. --set name='\"a: b\"'") from None


MODEL_SECTION = "model"


def _is_name_change(assignment: str) -> bool:
    key = assignment.split("=", 1)[0].strip().split(".")
    return key[-1:] == [MODEL_SECTION] or key[-2:] == [MODEL_SECTION, "name"]


def apply_override(data: dict, assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got '{short_repr(assignment, 40)}' "
                          f"(e.g. --set distill.options.temperature=4)")
    key, value = assignment.split("=", 1)
    parts = key.strip().split(".")
    if not all(part.strip() for part in parts):
        raise ConfigError(f"--set {short_repr(key, 40)}: a key is dotted section names, e.g. student.train.epochs")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif isinstance(child, str) and part == MODEL_SECTION:  # the short form `model: cnn`
            child = node[part] = {"name": child}
        if part == MODEL_SECTION and parts[i + 1] == "options":
            # `model.options.hidden=...` on a short-form `model: {name: cnn, channels: [...]}`: the long form,
            # keeping the file's options (else its channels would sit beside `options` as an unknown key)
            child = node[part] = long_model_form(child)
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: '{part}' is not a section (it is {describe_kind(child)})")
        node = child
    new = parse_value(value, key)
    if parts[-2:] == [MODEL_SECTION, "name"] and node.get("name", "cnn") != new:
        # Another model takes other options: the file's options belonged to the old model.
        node.clear()
    node[parts[-1]] = new


def config_data(path: str | Path) -> dict:
    """The mapping at the top of a config file ({} when the file is empty)."""
    data = read_yaml_file(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values (e.g. 'name: my-run'), "
                          f"got {describe_kind(data)}")
    return data


def is_empty_config(path: str | Path | None) -> bool:
    """True for a config file with no settings at all (every default applies: say so)."""
    return path is not None and Path(path).is_file() and config_data(path) == {}


def import_config_modules(imports: Any, base_dir: Path | None, source: str) -> list[str]:
    """Import the config's ``imports:`` list; file paths are stored absolute, so a saved config reloads."""
    from distill.plugins import import_user_code, resolve_import

    if not isinstance(imports, list) or not all(isinstance(i, str) for i in imports):
        raise ConfigError(f"{source}: 'imports' is a list of module names or .py paths, got {imports!r}")
    import_user_code(imports, base_dir)
    return [resolve_import(i, base_dir) for i in imports]


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                data: dict | None = None) -> ExperimentConfig:
    """Read a YAML file (or a dict), apply ``key=value`` overrides, validate.

    Overrides that change a model's name are applied first (they replace that model's options), so
    ``--set student.model.channels=[8] --set student.model.name=cnn`` keeps the channels.
    """
    source = str(path) if path else "config"
    if path is not None:
        data = config_data(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys to values, got {describe_kind(data)}")
    data = copy.deepcopy(data)
    ordered = sorted(overrides or [], key=lambda a: not _is_name_change(a))
    for assignment in ordered:
        apply_override(data, assignment)
    if data.get("imports"):  # the user's own registrations must exist before names are checked
        data["imports"] = import_config_modules(data["imports"], Path(path).parent if path is not None else None,
                                                source)
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply") from None


def dump_config(config: ExperimentConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
