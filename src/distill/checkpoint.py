"""Safetensors checkpoints, written atomically (temp file, fsync, rename).

``<name>-best.safetensors`` holds the model weights alone. ``<name>-last.safetensors`` holds
everything needed to resume (model, optimizer, method parameters, trainer state) in one file,
so weights and state can never disagree after a crash; ``<name>-trainer-state.json`` is a
readable copy of that state.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from distill.errors import CheckpointError
from distill.io import atomic_write

ALIASES = "_aliases"  # metadata key: {name: name of the identical tensor stored once}


def _view_key(t: torch.Tensor) -> tuple:
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)


def save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None) -> None:
    """Write ``tensors`` and ``metadata`` atomically. A tensor that is the very same view as an earlier one (a
    tied embedding and LM head) is stored once and recorded as an alias, which load_tensors restores."""
    stored, aliases, seen = {}, {}, {}
    for name, tensor in tensors.items():
        key = _view_key(tensor) if tensor.numel() else None
        if key is not None and key in seen:
            aliases[name] = seen[key]
            continue
        if key is not None:
            seen[key] = name
        # safetensors refuses shared or non-contiguous storage; a contiguous clone is cheap for these sizes.
        stored[name] = tensor.detach().contiguous().clone()
    meta = {k: json.dumps(v) for k, v in (metadata or {}).items()}
    if aliases:
        meta[ALIASES] = json.dumps(aliases)
    atomic_write(path, lambda tmp: save_file(stored, tmp, metadata=meta))


def load_tensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            raw_meta = f.metadata() or {}
        meta = {k: json.loads(v) for k, v in raw_meta.items()}
        for name, original in meta.pop(ALIASES, {}).items():  # tied tensors, stored once
            tensors[name] = tensors[original]
    except (SafetensorError, OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
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


def _names(keys: list[str], limit: int = 3) -> str:
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def state_mismatch(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    """What keeps ``state`` from loading into ``module`` (first missing, unexpected, mis-shaped tensors)."""
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shaped = [f"{k} is {list(state[k].shape)} in the checkpoint, {list(own[k].shape)} in the model"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    problems = []
    if missing:
        problems.append(f"missing {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected {_names(unexpected)}")
    if shaped:
        problems.append(_names(shaped, 2))
    return "; ".join(problems) or None


def describe_model(spec: dict | None) -> str:
    """'mlp {hidden: [64]}' from a checkpoint's model description."""
    if not isinstance(spec, dict) or not spec.get("name"):
        return "an unrecorded model"
    options = spec.get("options") or {}
    shown = ", ".join(f"{k}: {json.dumps(v)}" for k, v in list(options.items())[:4] if k != "teacher_path")
    return f"model '{spec['name']}'" + (f" {{{shown}}}" if shown else "")


def load_checked(module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | Path,
                 spec: dict | None = None, target: str = "the config's model") -> None:
    """``module.load_state_dict(state)``, or a one-line CheckpointError naming the checkpoint, the model it
    was built for, and the first tensors that do not fit."""
    try:
        # Tried first: a module with its own loader (a fitted tree ensemble takes the sizes it is given)
        # may accept tensors that differ from its fresh state_dict.
        module.load_state_dict(state)
    except RuntimeError as exc:
        problem = state_mismatch(module, state) or str(exc).strip().splitlines()[0]
        raise CheckpointError(f"checkpoint {path} (built for {describe_model(spec)}) does not fit {target}: "
                              f"{problem}; give the model it was trained as, or another checkpoint") from None


def load_weights_into(model: torch.nn.Module, path: str | Path, target: str = "the config's model") -> dict[str, Any]:
    """Load a distill checkpoint, or a torch state_dict (.pt/.pth, read with weights_only=True), strictly."""
    if Path(path).suffix.lower() in TORCH_SUFFIXES:
        load_checked(model, read_state_dict(path, "teacher.checkpoint"), path, None, target)
        return {}
    tensors, meta = load_tensors(path)
    load_checked(model, model_weights(tensors), path, meta.get("model"), target)
    return meta


TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
WRAPPERS = ("state_dict", "model_state_dict", "model", "module", "net")


def read_state_dict(path: str | Path, label: str) -> dict[str, Tensor]:
    """The tensors of a local weights file, wrappers taken off; one-line errors naming the file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{label}: weights file not found: {path} (distill never downloads weights; "
                              f"give a local .safetensors, .pt or .pth file)")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{label}: {path} is not a readable safetensors file ({_first_line(exc)})") from None
    elif suffix in TORCH_SUFFIXES:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError) as exc:
            raise CheckpointError(
                f"{label}: {path} cannot be read with torch.load(weights_only=True) ({_first_line(exc)}); "
                f"a pickled model object is refused for safety: save its state_dict() (or safetensors) "
                f"instead") from None
    else:
        raise CheckpointError(f"{label}: weights file {path} has suffix '{path.suffix}'; "
                              f"expected .safetensors, or .pt/.pth (a torch state_dict)")
    return _unwrap(state, path, label)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]


def _unwrap(state, path: Path, label: str) -> dict[str, Tensor]:
    while isinstance(state, dict) and not any(isinstance(v, Tensor) for v in state.values()):
        inner = next((state[k] for k in WRAPPERS if isinstance(state.get(k), dict)), None)
        if inner is None:
            break
        state = inner
    if not isinstance(state, dict) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        kind = type(state).__name__ if not isinstance(state, dict) else f"a mapping with keys {list(state)[:4]}"
        raise CheckpointError(f"{label}: {path} holds {kind}, not a state_dict of tensors; save "
                              f"model.state_dict() to it")
    state = model_weights(dict(state))  # a distill last checkpoint: its model.* tensors
    if all(k.startswith("module.") for k in state):  # saved from DistributedDataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of floating-point tensors holding NaN or infinity (weights of a diverged run)."""
    return [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]


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
