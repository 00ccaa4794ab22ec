"""Local weights for models from other libraries: read safely, fitted to the data's classes and channels.

A ``weights:`` file is safetensors, or a ``.pt``/``.pth``/``.bin`` read with
``torch.load(weights_only=True)`` (tensors only, no pickled code). Wrappers that training scripts
add are taken off (``{"state_dict": ...}``, ``{"model": ...}``, a DDP ``module.`` prefix, a
distill last checkpoint). Two mismatches are expected and fixed, each said in one info line:

* the **head** (the classifier) of a checkpoint trained on other classes (ImageNet's 1000) is
  dropped and the model's fresh head kept, to be trained on the data's classes;
* the **first convolution** of a 3-channel (RGB) checkpoint on 1-channel data is summed over its
  input channels (timm's ``adapt_input_conv``; other counts repeat the RGB filters, scaled by 3/C).

Any other missing, unexpected or mis-shaped tensor is a one-line error naming the keys.
"""

from __future__ import annotations

import math
from pathlib import Path

from torch import Tensor, nn

from distill.checkpoint import read_state_dict, state_mismatch
from distill.errors import CheckpointError
from distill.terminal import info


def adapt_input_conv(channels: int, weight: Tensor) -> Tensor:
    """An RGB first-convolution kernel for ``channels`` input channels (the rule of timm's adapt_input_conv)."""
    if channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeat = math.ceil(channels / weight.shape[1])
    return weight.repeat(1, repeat, 1, 1)[:, :channels] * (weight.shape[1] / channels)


def replace_first_conv(model: nn.Module, channels: int, path: str | None = None) -> str | None:
    """Give the model's first convolution ``channels`` inputs (fresh weights); returns its module path.

    ``path`` names it (timm's ``first_conv``); otherwise it is the first ``Conv2d`` of the model,
    which for the classification models of torchvision is its stem.
    """
    modules = dict(model.named_modules())
    if path is None:
        path = next((n for n, m in modules.items() if isinstance(m, nn.Conv2d)), None)
    conv = modules.get(path) if path else None
    if not isinstance(conv, nn.Conv2d) or conv.in_channels == channels:
        return path
    new = nn.Conv2d(channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    1 if conv.groups == conv.in_channels else conv.groups, conv.bias is not None, conv.padding_mode)
    parent, _, leaf = path.rpartition(".")
    setattr(modules[parent] if parent else model, leaf, new)
    return path


def head_paths(model: nn.Module, num_classes: int, declared: str | tuple[str, ...] | None = None) -> tuple[str, ...]:
    """Module paths of the classifier head: the library's own name for it (timm's ``classifier``), else
    the last Linear (or 1x1 convolution, SqueezeNet's) that outputs ``num_classes`` values."""
    if declared:
        return (declared,) if isinstance(declared, str) else tuple(declared)
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module.out_features == num_classes:
            last = name
        elif isinstance(module, nn.Conv2d) and module.out_channels == num_classes and module.kernel_size == (1, 1):
            last = name
    return (last,) if last else ()


def _under(key: str, paths: tuple[str, ...]) -> bool:
    return any(key.startswith(f"{p}.") for p in paths)


def load_into(model: nn.Module, path: str | Path, label: str, num_classes: int,
              head: tuple[str, ...] = (), first_conv: str | None = None) -> None:
    """Load a local weights file into ``model``: the head replaced and the first conv adapted as needed,
    anything else that does not fit a one-line CheckpointError."""
    state = read_state_dict(path, label)
    own = model.state_dict()
    stale = [k for k in own if _under(k, head) and k in state and state[k].shape != own[k].shape]
    if stale:
        old = state[stale[0]].shape[0]
        info(f"{label}: the head in {Path(path).name} ({', '.join(head)}: {old} outputs) does not fit "
             f"{num_classes} classes; it is replaced by a new one, trained from scratch")
        state.update({k: own[k] for k in stale})
    key = f"{first_conv}.weight" if first_conv else None
    if key in state and key in own and state[key].dim() == 4 and state[key].shape[1] != own[key].shape[1] \
            and state[key].shape[0] == own[key].shape[0] and state[key].shape[2:] == own[key].shape[2:]:
        info(f"{label}: {first_conv} in {Path(path).name} takes {state[key].shape[1]} channels, the data "
             f"{own[key].shape[1]}: its filters are adapted (summed or repeated over the channels)")
        state[key] = adapt_input_conv(own[key].shape[1], state[key]).to(own[key].dtype)
    problem = state_mismatch(model, state)
    if problem:
        raise CheckpointError(f"{label}: weights {path} do not fit the model: {problem}; give weights of "
                              f"this architecture (only the head and the first convolution may differ)")
    model.load_state_dict(state)
