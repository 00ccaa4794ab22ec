"""Name -> factory registries with helpful errors for unknown names."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from distill.errors import ConfigError, DistillError
from distill.plugins import load_entry_points

T = TypeVar("T")


def nearest(name: str, choices: list[str]) -> str:
    """A ' (did you mean X?)' hint, or '' when nothing is close."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_options(kind: str, name: str, given: dict, allowed: dict) -> None:
    """Refuse option keys a factory does not take, with the nearest valid key as a hint."""
    for key in given:
        if key not in allowed:
            raise ConfigError(
                f"{kind} '{name}' has no option '{key}'{nearest(key, list(allowed))}; "
                f"its options are: {', '.join(allowed) or 'none'}"
            )


class UnknownNameError(DistillError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is already registered; pick another name")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        if name not in self._items:
            load_entry_points()  # installed plugins register their names on first need
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items))
            raise UnknownNameError(
                f"unknown {self.kind} '{name}'{nearest(name, list(self._items))}; known: {known}"
            ) from None

    def names(self) -> list[str]:
        load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
