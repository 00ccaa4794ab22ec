"""Bad inputs generated from the declarations: every config field, every registered model and method option.

A case is (label, argv builder, allowed exit codes). The generator reads the pydantic schema and the
factories' options models (distill/options.py) for types and declared bounds, so a new field or a
new option is fuzzed without touching this file.
"""

from __future__ import annotations

import copy
import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel

from distill.config.schema import ExperimentConfig
from distill.methods import METHODS
from distill.models import MODELS
from distill.options import options_model

BAD_INPUT = 2
BASE: dict[str, Any] = {
    "name": "fuzz",
    "data": {"train_subset": 96, "val_size": 32, "test_subset": 32, "augment": None},
    "teacher": {"model": {"name": "mlp", "hidden": [8]}, "train": {"epochs": 1, "batch_size": 32}},
    "student": {"model": {"name": "mlp", "hidden": [4]}, "train": {"epochs": 1, "batch_size": 32}},
    "evaluate": {"latency": False},
    "runtime": {"threads": 1, "device": "cpu"},
}


@dataclass
class Case:
    label: str
    config: dict | None = None  # written to a YAML file (or passed with --set when ``via_set``)
    set_key: str | None = None
    set_value: Any = None
    via_set: bool = False
    set_base: dict | None = None  # the file next to --set (default BASE)
    allowed: tuple[int, ...] = (BAD_INPUT,)
    extra: list[str] = field(default_factory=list)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(the annotation without None and Annotated, whether None is allowed)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _unwrap(args[0])
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = rest[0] if len(rest) == 1 else annotation
        return (_unwrap(inner)[0] if len(rest) == 1 else inner), len(rest) < len(args)
    return annotation, False


def wrong_types(annotation: Any) -> list[Any]:
    """Values no field of this type accepts."""
    kind, _ = _unwrap(annotation)
    origin = typing.get_origin(kind)
    if kind is bool:
        return ["maybe so", 7, [True]]
    if kind in (int, float):
        return ["abc", [1], {"a": 1}] + ([4.5] if kind is int else [])
    if kind is str:
        return [[1], {"a": 1}]
    if origin is Literal:
        return ["no-such-choice", 12345]
    if origin in (list, tuple, Sequence, typing.get_origin(Sequence[int])):
        inner = typing.get_args(kind)[0] if typing.get_args(kind) else Any
        return [12345, "abc"] + [[v] for v in wrong_types(inner)[:1]]
    if origin is dict or kind is dict:
        return [12345, "abc", [1, 2]]
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return [12345, [1, 2]]
    return []  # Any, unions of several kinds: nothing is wrong by type alone


def out_of_range(annotation: Any, metadata: list) -> list[Any]:
    """Values just outside the declared bounds, NaN and infinity for numbers, a too-large integer."""
    kind, _ = _unwrap(annotation)
    metadata = list(metadata) + list(_annotated_metadata(annotation))
    values: list[Any] = []
    for m in metadata:
        if isinstance(m, Ge):
            values.append(m.ge - 1)
        elif isinstance(m, Gt):
            values.append(m.gt if kind is float else m.gt)
        elif isinstance(m, Le):
            values.append(m.le + 1)
        elif isinstance(m, Lt):
            values.append(m.lt)
        elif isinstance(m, MinLen) and m.min_length > 0:
            values.append([])
        elif isinstance(m, MaxLen):
            values.append([1] * (m.max_length + 1))
    if kind is float:
        values += [math.nan, math.inf]
    if kind is int:
        values.append(2**70)
    return values


def _annotated_metadata(annotation: Any) -> list:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        found = list(args[1:])
        for a in args[1:]:
            found += list(getattr(a, "metadata", []))
        return found + _annotated_metadata(args[0])
    if origin in (typing.Union, types.UnionType):
        return [m for a in args for m in _annotated_metadata(a)]
    return []


def typo(key: str) -> str:
    """A near miss of a valid key (the 'did you mean' path)."""
    return key[:-1] if len(key) > 3 else key + "x"


def set_path(config: dict, path: list[str], value: Any) -> dict:
    out = copy.deepcopy(config)
    node = out
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value
    return out


def schema_cases(model: type[BaseModel] = ExperimentConfig, prefix: tuple[str, ...] = ()) -> list[Case]:
    cases = []
    for name, info in model.model_fields.items():
        path = [*prefix, name]
        dotted = ".".join(path)
        near = [*prefix, typo(name)]
        cases.append(Case(f"schema unknown key {dotted} -> {typo(name)}", set_path(BASE, near, 1),
                          set_key=".".join(near), set_value=1))
        for value in wrong_types(info.annotation):
            cases.append(Case(f"schema wrong type {dotted}={value!r}", set_path(BASE, path, value),
                              set_key=dotted, set_value=value))
        for value in out_of_range(info.annotation, info.metadata):
            cases.append(Case(f"schema out of range {dotted}={value!r}", set_path(BASE, path, value),
                              set_key=dotted, set_value=value))
        kind, _ = _unwrap(info.annotation)
        if isinstance(kind, type) and issubclass(kind, BaseModel) and name not in ("model",):
            cases += schema_cases(kind, tuple(path))
    return cases


def option_cases(kind: str, names: list[str], factory_of, section: list[str]) -> list[Case]:
    """For every option of every registered factory: wrong types, declared bounds, a near-miss key."""
    cases = []
    for name in names:
        factory = factory_of(name)
        fields = options_model(factory).model_fields
        base = set_path(BASE, section, {"name": name} if kind == "model" else name)
        options_path = section if kind == "model" else ["distill", "options"]
        for option, info in fields.items():
            bad = [*wrong_types(info.annotation), *out_of_range(info.annotation, info.metadata)]
            for value in bad:
                config = copy.deepcopy(base)
                target = config
                for part in options_path:
                    target = target.setdefault(part, {})
                target[option] = value
                cases.append(Case(f"{kind} {name}.{option}={value!r}", config, set_base=base,
                                  set_key=".".join([*options_path, option]), set_value=value))
            config = copy.deepcopy(base)
            target = config
            for part in options_path:
                target = target.setdefault(part, {})
            target[typo(option)] = 1
            cases.append(Case(f"{kind} {name} unknown option {typo(option)}", config, set_base=base,
                              set_key=".".join([*options_path, typo(option)]), set_value=1))
    return cases


def config_cases() -> list[Case]:
    cases = schema_cases()
    cases += option_cases("model", MODELS.names(), MODELS.get, ["student", "model"])
    cases += option_cases("method", [m for m in METHODS.names() if m != "combined"], METHODS.get,
                          ["distill", "method"])
    for i, case in enumerate(cases):  # every third case goes through --set instead of the file
        case.via_set = i % 3 == 0 and case.set_key is not None
    # good inputs that once failed: each must pass the checks
    cases.append(Case("--set model name replaces its options", BASE, via_set=True, set_key="student.model.name",
                      set_value="cnn", allowed=(0,)))
    cases.append(Case("YAML 1.2 float 1e-3", set_path(BASE, ["distill", "options"], {"temperature": "1e-3"}),
                      allowed=(0,)))
    return cases


def flow(value: Any) -> str:
    """A value as --set text (a YAML flow scalar or collection)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("...").strip()

