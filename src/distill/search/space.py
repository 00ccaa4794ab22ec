"""The search space: config field specs -> Optuna suggestions, grids, and configs with a trial's values."""

from __future__ import annotations

from typing import Any

from distill.config.load import load_config
from distill.config.schema import ExperimentConfig, ParamSpec
from distill.errors import ConfigError
from distill.methods.base import build_method


def suggest(trial, name: str, spec: ParamSpec) -> Any:
    if spec.choices is not None:
        return trial.suggest_categorical(name, spec.choices)
    if spec.type == "int":
        return trial.suggest_int(name, int(spec.low), int(spec.high), step=int(spec.step or 1), log=spec.log)
    return trial.suggest_float(name, spec.low, spec.high, step=spec.step, log=spec.log)


def grid_values(name: str, spec: ParamSpec) -> list:
    if spec.choices is not None:
        return list(spec.choices)
    if spec.type == "int":
        return list(range(int(spec.low), int(spec.high) + 1, int(spec.step or 1)))
    if spec.step is None:
        raise ConfigError(f"search.space.{name}: the grid sampler needs 'choices' or a 'step' for a float range")
    count = int(round((spec.high - spec.low) / spec.step))
    return [round(spec.low + i * spec.step, 12) for i in range(count + 1)]


def grid_space(space: dict[str, ParamSpec]) -> dict[str, list]:
    return {name: grid_values(name, spec) for name, spec in space.items()}


def with_params(cfg: ExperimentConfig, params: dict[str, Any], **fields) -> ExperimentConfig:
    """A copy of ``cfg`` with each dotted field set to its value (and top-level ``fields`` replaced)."""
    data = cfg.model_dump(mode="json")
    data.update(fields)
    for dotted, value in params.items():
        _assign(data, dotted.split("."), value, dotted)
    return load_config(data=data)


def _assign(node: dict, parts: list[str], value: Any, dotted: str) -> None:
    if len(parts) == 1:
        node[parts[0]] = value
        return
    child = node.get(parts[0]) or {}
    if not isinstance(child, dict):
        raise ConfigError(f"'{dotted}': '{parts[0]}' is not a config section")
    node[parts[0]] = child
    _assign(child, parts[1:], value, dotted)


def sample_value(spec: ParamSpec) -> Any:
    return spec.choices[0] if spec.choices is not None else (int(spec.low) if spec.type == "int" else spec.low)


def check_space(cfg: ExperimentConfig) -> None:
    """Refuse an empty space, or fields that the config or the method does not have, before any training."""
    space = cfg.search.space if cfg.search else {}
    if not space:
        raise ConfigError("search: the config has no search.space; see examples/search.yaml")
    from distill.preflight import check_config

    for name, spec in space.items():
        for value in bounds(spec):  # both ends of a range, every choice: typed like any config value
            try:
                trial_cfg = with_params(cfg, {name: value})
                check_config(trial_cfg, "trial")
                build_method(trial_cfg.distill.method, trial_cfg.distill.options)
            except ConfigError as exc:
                raise ConfigError(f"search.space.{name} = {value!r}: {exc}") from None


def bounds(spec: ParamSpec) -> list:
    if spec.choices is not None:
        return list(spec.choices)
    cast = int if spec.type == "int" else float
    return [cast(spec.low), cast(spec.high)]
