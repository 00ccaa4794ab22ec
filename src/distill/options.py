"""Typed options for every registered factory (models, methods, datasets), derived from its signature.

A factory's parameters and annotations are the declaration of its options: ``options_model``
turns them into a pydantic model (unknown keys refused, types checked, no NaN or infinity), and
``validate_options`` checks a config's options with it before anything is built. Constraints
that a plain type cannot say are declared in the signature too, with ``typing.Annotated``::

    def mlp(input_shape, num_classes,
            hidden: Sequence[Annotated[int, Field(ge=1)]] = (256, 128),
            dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0): ...

or, for checks across several options, listed in the factory's ``option_checks`` (functions of
the validated options that raise ``ValueError``). Errors have the config's one-line format:
where, the key, what was expected, what was given.
"""

from __future__ import annotations

import collections.abc
import inspect
import re
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from distill.errors import ConfigError


class OptionError(ConfigError, ValueError):
    """A factory's options do not fit its declaration (a ValueError too, for callers that caught those)."""


# Parameters a model factory gets from the data, never from the options.
DATA_PARAMETERS = ("self", "input_shape", "num_classes")
MAX_SIZE = 1 << 20  # a width, filter count or similar beyond this is a typo, not a model that fits in memory

# Reusable declarations for factory signatures.
Size = Annotated[int, Field(ge=1, le=MAX_SIZE, description="a positive size")]
OptionalSize = Annotated[int | None, Field(ge=1, le=MAX_SIZE)]
Count = Annotated[int, Field(ge=0, le=MAX_SIZE, description="a count, 0 allowed")]
Probability = Annotated[float, Field(ge=0, lt=1, description="a probability in [0, 1)")]
Positive = Annotated[float, Field(gt=0)]
Sizes = Annotated[Sequence[Size], Field(min_length=1)]  # at least one
NonNegative = Annotated[float, Field(ge=0)]


def _parameters(factory: Callable) -> tuple[Callable, list[inspect.Parameter]]:
    func = factory.__init__ if inspect.isclass(factory) else factory
    return func, list(inspect.signature(func).parameters.values())


def _annotations(func: Callable) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception:  # an annotation that does not resolve: those options are checked by the factory alone
        return {}


@cache
def options_model(factory: Callable, skip: tuple[str, ...] = DATA_PARAMETERS) -> type[BaseModel]:
    """The pydantic model of ``factory``'s keyword options (cached per factory)."""
    func, params = _parameters(factory)
    hints = _annotations(func)
    fields: dict[str, Any] = {}
    extra = "forbid"
    for p in params:
        if p.name in skip or p.kind is p.VAR_POSITIONAL:
            continue
        if p.kind is p.VAR_KEYWORD:
            extra = "allow"
            continue
        default = ... if p.default is p.empty else p.default
        fields[p.name] = (hints.get(p.name, Any), default)
    validators = {"_int64": model_validator(mode="after")(_after(_fits_int64))}
    for i, check in enumerate(getattr(factory, "option_checks", ())):
        validators[f"_check{i}"] = model_validator(mode="after")(_after(check))
    return create_model(
        f"Options_{getattr(factory, '__name__', 'factory')}",
        __config__=ConfigDict(extra=extra, allow_inf_nan=False, arbitrary_types_allowed=True,
                              protected_namespaces=()),
        __validators__=validators, **fields)


INT64 = 2**63 - 1


def _fits_int64(values: dict) -> None:
    """Integers beyond 64 bits reach torch as an overflow; refuse them whatever the annotation."""
    stack = list(values.items())
    while stack:
        key, value = stack.pop()
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > INT64:
            raise ValueError(f"'{key}' is {short_repr(value)}, beyond a 64-bit integer")
        if isinstance(value, list | tuple):
            stack += [(key, v) for v in value]
        elif isinstance(value, dict):
            stack += [(f"{key}.{k}", v) for k, v in value.items()]


def _after(check: Callable[[dict], None]):
    def run(model: BaseModel) -> BaseModel:
        check(dict(model))
        return model

    return run


def short_repr(value: Any, limit: int = 60) -> str:
    """repr() cut to ``limit`` characters: a config may expand to something huge."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dotted(loc: Iterable) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


TYPE_TAGS = re.compile(r"[\[\]()]|^(str|int|float|bool|none|list|tuple|dict|set|function-\w+)$")


def type_name(annotation: Any) -> str:
    """A reader's name for an option's type: 'a list of integers', 'a number or null'."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(type_name(a) for a in args))
    if annotation is type(None):
        return "null"
    if origin in (list, tuple, set, Sequence, collections.abc.Sequence) and args:
        return f"a list of {type_name(args[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict or annotation is dict:
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


def first_error(exc: ValidationError, prefix: str = "", known: Callable[[tuple], list[str]] | None = None,
                annotations: dict[str, Any] | None = None) -> str:
    """One line for a pydantic error: ``'key': what was expected, got value`` (+ how many more)."""
    from distill.registry import nearest

    errors = exc.errors()
    err = errors[0]
    # union branches appear as location parts ("str", "list[...]"): keep only the user's keys
    loc = tuple(p for p in err["loc"] if isinstance(p, int) or not TYPE_TAGS.search(str(p)))
    branches = [e for e in errors if e["loc"][:1] == err["loc"][:1]]
    key = ".".join(x for x in (prefix, dotted(loc)) if x)
    rest = len(errors) - (len(branches) if len(branches) > 1 else 1)
    more = f" (and {rest} more problem{'s' * (rest > 1)})" if rest > 0 else ""
    if err["type"] == "extra_forbidden":
        hint = nearest(str(loc[-1]), known(loc[:-1])) if known and loc else ""
        return f"unknown key '{key}'{hint}{more}"
    if err["type"] == "missing":
        return f"'{key}' is required{more}"
    field = err["loc"][0] if err["loc"] else None
    container = err["type"] in ("is_instance_of", "list_type", "tuple_type", "dict_type", "set_type")
    if annotations and field in annotations and (len(branches) > 1 or (container and len(err["loc"]) == 1)):
        key = ".".join(x for x in (prefix, str(field)) if x)
        message, given = f"expected {type_name(annotations[field])}", branches[0].get("input")
    else:
        message, given = str(err["msg"]).replace("\n", " "), err.get("input")
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        message = message[:1].lower() + message[1:]
    where = f"'{key}': " if key else ""
    return f"{where}{message}, got {short_repr(given)}{more}"


def validate_options(kind: str, name: str, factory: Callable, options: dict[str, Any] | None,
                     where: str | None = None, skip: tuple[str, ...] = DATA_PARAMETERS) -> dict[str, Any]:
    """``options`` checked against ``factory``'s declaration; returns them with their validated values.

    Only the given keys are returned: the factory's own defaults stay the factory's.
    ``where`` names the config section in the message (``student.model``); default: the factory.
    """
    options = dict(options or {})
    model = options_model(factory, skip)
    label = where or f"{kind} '{name}'"
    for key in options:
        if not isinstance(key, str):
            raise OptionError(f"{label}: option names are words, got {short_repr(key)}")
    try:
        validated = model.model_validate(options)
    except ValidationError as exc:
        fields = list(model.model_fields)
        err = exc.errors()[0]
        if err["type"] == "extra_forbidden":
            from distill.registry import nearest

            key = str(err["loc"][0])
            raise OptionError(f"{label}: {kind} '{name}' has no option '{key}'{nearest(key, fields)}; "
                              f"its options are: {', '.join(fields) or 'none'}") from None
        hints = {k: f.annotation for k, f in model.model_fields.items()}
        hints.update(_annotations(_parameters(factory)[0]))
        suffix = f" ({kind} '{name}')" if where else ""
        raise OptionError(f"{label}: {first_error(exc, annotations=hints)}{suffix}") from None
    values = dict(validated)
    values.update(validated.model_extra or {})
    return {k: values[k] for k in options}


def check(predicate: Callable[[Any], bool], message: str) -> AfterValidator:
    """A declared constraint for ``Annotated[...]``: ``check(lambda d: (d - 2) % 6 == 0, 'depth is 6n+2')``."""

    def run(value: Any) -> Any:
        if not predicate(value):
            raise ValueError(message)
        return value

    return AfterValidator(run)
