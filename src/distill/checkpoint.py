"""Safetensors checkpoints, written atomically (temp file, fsync, rename).

``<name>-best.safetensors`` holds the model weights alone. ``<name>-last.safetensors`` holds
everything needed to resume (model, optimizer, method parameters, trainer state) in one file,
so weights and state can never disagree after a crash; ``<name>-trainer-state.json`` is a
readable copy of that state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from distill.errors import CheckpointError
from distill.io import atomic_write


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None) -> None:
    # safetensors refuses shared or non-contiguous storage; a contiguous clone is cheap for these sizes.
    tensors = {k: v.detach().contiguous().clone() for k, v in tensors.items()}
    meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            raw_meta = f.metadata() or {}
        meta = {k: json.loads(v) for k, v in raw_meta.items()}
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a safetensors file ({exc}); delete it and train again, "
            f"or resume from another checkpoint"
        ) from None
    return tensors, meta


def model_weights(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Model weights from either a best (plain) or a last (prefixed 'model.') checkpoint."""
    if any(k.startswith("model.") for k in tensors) and any(k.startswith("optim.") for k in tensors):
        return {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    return tensors


def load_weights_into(model: torch.nn.Module, path: str | Path) -> dict[str, Any]:
    tensors, meta = load_tensors(path)
    try:
        model.load_state_dict(model_weights(tensors))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(
            f"checkpoint {path} does not fit this model: {first[1].strip() if len(first) > 1 else first[0]}; "
            f"check that the config's model matches the one that was trained"
        ) from None
    return meta


def flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, plain = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, entries in state["state"].items():
        plain["state"][str(pid)] = {}
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                plain["state"][str(pid)][key] = value
    return tensors, plain


def unflatten_optimizer(tensors: dict[str, torch.Tensor], plain: dict) -> dict:
    state: dict[int, dict] = {int(pid): dict(entries) for pid, entries in plain["state"].items()}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": plain["param_groups"]}
