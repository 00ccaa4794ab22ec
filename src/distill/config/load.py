"""YAML loading (safe_load only), --set overrides and one-line error messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from distill.config.schema import ExperimentConfig
from distill.errors import ConfigError
from distill.registry import nearest


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
    lines = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join(loc)
        if err["type"] == "extra_forbidden":
            hint = nearest(loc[-1], _fields_at(loc[:-1]))
            lines.append(f"{source}: unknown key '{key}'{hint}")
        elif err["type"] == "missing":
            lines.append(f"{source}: '{key}' is required")
        else:
            lines.append(f"{source}: '{key}': {err['msg'].lower()}, got {err.get('input')!r}")
    return "\n".join(lines)


def parse_value(text: str) -> Any:
    """``--set`` values are YAML scalars or flow collections: 4, 0.5, true, [8, 16], {a: 1}."""
    return yaml.safe_load(text) if text != "" else ""


def apply_override(data: dict, assignment: str) -> None:
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got '{assignment}' (e.g. --set distill.options.temperature=4)")
    key, value = assignment.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif isinstance(child, str) and part == "model":  # the short form `model: cnn`
            child = node[part] = {"name": child}
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: '{part}' is not a section")
        node = child
    node[parts[-1]] = parse_value(value)


def import_config_modules(imports: Any, base_dir: Path | None, source: str) -> list[str]:
    """Import the config's ``imports:`` list; file paths are stored absolute, so a saved config reloads."""
    from distill.plugins import import_user_code, resolve_import

    if isinstance(imports, str):
        imports = [imports]
    if not isinstance(imports, list) or not all(isinstance(i, str) for i in imports):
        raise ConfigError(f"{source}: 'imports' is a list of module names or .py paths, got {imports!r}")
    import_user_code(imports, base_dir)
    return [resolve_import(i, base_dir) for i in imports]


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                data: dict | None = None) -> ExperimentConfig:
    """Read a YAML file (or a dict), apply ``key=value`` overrides, validate."""
    source = str(path) if path else "config"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    data = dict(data or {})
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys to values")
    for assignment in overrides or []:
        apply_override(data, assignment)
    if data.get("imports"):  # the user's own registrations must exist before names are checked
        data["imports"] = import_config_modules(data["imports"], path.parent if path is not None else None, source)
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def dump_config(config: ExperimentConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
