"""Reading config YAML safely: a safe loader with YAML 1.2 numbers, no duplicate keys, bounded size.

Every problem is a one-line ConfigError naming the file (or the ``--set`` value) and the fix:
a file that is not UTF-8 text, characters YAML does not allow, duplicate keys, anchors and
aliases that expand to more than ``MAX_VALUES`` values, nesting deeper than ``MAX_DEPTH``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from distill.errors import ConfigError

MAX_VALUES = 100_000  # values a config may expand to, aliases counted each time they are used
MAX_DEPTH = 64  # nesting levels; real configs use fewer than 8
MAX_BYTES = 4 << 20

# YAML 1.1 (PyYAML's default) reads 1e-3 as a string; YAML 1.2 reads it as a number, as users expect.
YAML12_FLOAT = re.compile(r"""^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$""")


class ConfigLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate keys in a mapping (the second would silently win)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in seen:
                        line = key_node.start_mark.line + 1
                        raise ConfigError(f"duplicate key '{key}' at line {line} (first at line {seen[key]}); "
                                          f"keep one of them")
                    seen[key] = key_node.start_mark.line + 1
                except TypeError:  # an unhashable key; the constructor reports it below
                    pass
        return super().construct_mapping(node, deep=deep)


ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", YAML12_FLOAT, list("-+0123456789"))


def _check_size(node: yaml.Node) -> None:
    """Refuse documents that expand (through aliases) to too many values, or nest too deep."""
    stack, count = [(node, 1)], 0
    while stack:
        current, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise ConfigError(f"it expands to more than {MAX_VALUES} values (anchors and aliases '*' counted "
                              f"each time they are used); a config is much smaller: remove the repeated aliases")
        if depth > MAX_DEPTH:
            raise ConfigError(f"it nests more than {MAX_DEPTH} levels deep; a config has a few levels of sections")
        if isinstance(current, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in current.value)
        elif isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack += [(key, depth + 1), (value, depth + 1)]


def _one_line(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.reader.ReaderError):
        return (f"character {exc.character!r} at position {exc.position} is not allowed in YAML text "
                f"(control characters such as NUL); remove it")
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return f"invalid YAML{where}: {' '.join(str(problem).split())}"


def parse_yaml(text: str) -> Any:
    """``text`` parsed with :class:`ConfigLoader`, size-checked; errors are one-line ConfigErrors."""
    try:
        loader = ConfigLoader(text)  # the reader checks the characters here
    except yaml.YAMLError as exc:
        raise ConfigError(_one_line(exc)) from None
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise ConfigError(f"it nests more than {MAX_DEPTH} levels deep; a config has a few levels of "
                              f"sections") from None
        if node is None:
            return None
        _check_size(node)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(_one_line(exc)) from None
    finally:
        loader.dispose()


def decode_text(raw: bytes) -> str:
    """The file's text, which must be UTF-8 (a UTF-8 byte-order mark is allowed)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError("it is UTF-16 text; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"it is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                          f"save it as UTF-8") from None


def read_yaml_file(path: str | Path) -> Any:
    """A config file's contents (None for an empty file), with one-line errors that name the file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    if not path.is_file():
        raise ConfigError(f"{path} is not a file; give the experiment's YAML file")
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"{path}: {path.stat().st_size} bytes is too large for a config "
                              f"(at most {MAX_BYTES}); is it the right file?")
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return parse_yaml(decode_text(raw))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def describe_kind(value: Any) -> str:
    """'a list', 'a string', ... for messages about what was found where a mapping belongs."""
    for kind, name in ((bool, "a boolean"), (int, "a number"), (float, "a number"), (str, "a string"),
                       (list, "a list"), (dict, "a mapping")):
        if isinstance(value, kind):
            return name
    return type(value).__name__
