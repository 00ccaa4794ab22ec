"""What `distill models` says about a model: a summary, and each option's default, type and meaning.

An option's meaning comes from the factory's docstring when it has a line ``option: meaning``
(so own models describe themselves), else from the table below for the zoo's options.
"""

from __future__ import annotations

import collections.abc
import inspect
import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from distill.models.registry import MODELS, model_options

MEANINGS = {
    "mlp.hidden": "hidden layer widths, one Linear+ReLU per entry (a list)",
    "cnn.hidden": "width of a hidden Linear+ReLU before the head (0 = none)",
    "bilstm.hidden": "LSTM units per direction",
    "dropout": "dropout probability before the output layer(s) (0 = off)",
    "channels": "output channels of each stage (a list: one stage per entry, max-pooled between stages)",
    "convs_per_stage": "3x3 conv-BN-ReLU layers per stage",
    "flatten": "head on the whole last feature map instead of its global average (more parameters, keeps "
               "where things are)",
    "soft_tree.depth": "levels of inner nodes (2**depth leaves)",
    "depth": "number of layers, 6n+2 (8, 14, 20, 32, ...): n basic blocks in each of 3 stages",
    "width": "channel multiplier of every stage (16, 32, 64 times width)",
    "fc": "width of the Linear layer after the LSTM",
    "kernel_sizes": "widths of the 1-D convolutions (a list)",
    "filters": "feature maps per convolution width",
    "embedding_dim": "token embedding size (null = the teacher's when copied from it, else 300)",
    "init_embeddings_from_teacher": "start from the teacher's pretrained token embeddings",
    "freeze_embeddings": "keep the embedding table fixed during training",
    "vocab_size": "vocabulary size (null = the tokenizer's; text data fills it in)",
    "pad_id": "padding token id (null = the tokenizer's; text data fills it in)",
    "teacher_path": "the Hugging Face teacher model directory its tokenizer (and embeddings) come from "
                    "(null = the default local model)",
    "path": "local Hugging Face model directory (null = the default all-MiniLM-L6-v2)",
    "trainable_layers": "fine-tune only the top N encoder layers (null = all, embeddings included)",
    "layers": "transformer layers",
    "init_from_teacher": "{layers: [i, j, ...]}: copy these teacher layers (then leave the sizes unset)",
    "hidden_size": "transformer width (null = the teacher's)",
    "heads": "attention heads (null = the teacher's)",
    "intermediate_size": "feed-forward width (null = 4 x hidden_size)",
}


@dataclass
class OptionInfo:
    name: str
    default: Any
    kind: str
    meaning: str


def _doc(factory) -> str:
    doc = inspect.getdoc(factory) or ""
    if not doc and inspect.isclass(getattr(factory, "__wrapped__", None)):
        doc = inspect.getdoc(factory.__wrapped__) or ""
    return doc


def model_summary(name: str) -> str:
    """The first line of the factory's docstring, or its module's, or the factory's name."""
    factory = MODELS.get(name)
    doc = _doc(factory)
    if not doc:
        module = inspect.getmodule(factory)
        doc = inspect.getdoc(module) or "" if module is not None else ""
    return doc.splitlines()[0] if doc else f"{getattr(factory, '__qualname__', name)}"


def _doc_meanings(doc: str, names: list[str]) -> dict[str, str]:
    found = {}
    for line in doc.splitlines():
        match = re.match(r"\s*[`*]*(\w+)[`*]*\s*(?:\([^)]*\))?\s*[:-]\s+(.+)", line)
        if match and match.group(1) in names:
            found[match.group(1)] = match.group(2).strip()
    return found


def yaml_value(value: Any) -> str:
    """A default as it is written in the YAML: [32, 64], null, false."""
    import yaml

    if isinstance(value, tuple):
        value = list(value)
    try:
        text = yaml.safe_dump(value, default_flow_style=True).strip()
    except yaml.YAMLError:
        return repr(value)
    return text.removesuffix("...").strip()


def kind_of(annotation: Any) -> str:
    """A readable type: ``int >= 1``, ``list of int >= 1``, ``float > 0, <= 64``, ``int | None``."""
    if annotation is inspect.Parameter.empty:
        return ""
    if isinstance(annotation, str):
        return annotation
    if typing.get_origin(annotation) is typing.Annotated:
        base, *extras = typing.get_args(annotation)
        bounds = []
        for extra in extras:
            for item in getattr(extra, "metadata", []) or []:
                for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
                    bound = getattr(item, attr, None)
                    if bound is not None and not (attr in ("lt", "le") and bound >= 1e5):  # sanity caps: noise
                        bounds.append(f"{sign} {bound}")
        return kind_of(base) + (" " + ", ".join(bounds) if bounds else "")
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(annotation))
    if origin in (list, tuple, collections.abc.Sequence):
        args = typing.get_args(annotation)
        return f"list of {kind_of(args[0])}" if args else "list"
    if origin in (typing.Union, types.UnionType):
        return " | ".join("None" if a is type(None) else kind_of(a) for a in typing.get_args(annotation))
    return getattr(annotation, "__name__", str(annotation))


def describe_model(name: str) -> tuple[str, list[OptionInfo]]:
    factory = MODELS.get(name)
    options = model_options(name)
    params = inspect.signature(factory).parameters
    try:
        hints = typing.get_type_hints(factory, include_extras=True)
    except Exception:  # noqa: BLE001 - an own factory's annotations may not resolve; show them as written
        hints = {}
    documented = _doc_meanings(_doc(factory), list(options))
    infos = []
    for option, default in options.items():
        kind = kind_of(hints.get(option, params[option].annotation))
        meaning = documented.get(option) or MEANINGS.get(f"{name}.{option}") or MEANINGS.get(option, "")
        infos.append(OptionInfo(option, default, kind, meaning))
    return model_summary(name), infos
