"""Batched inference, shared by validation during training and by evaluation, and how inputs are laid out."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


@torch.inference_mode()
def predict(model: nn.Module, inputs: Tensor, batch_size: int = 1000,
            prepare: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """Logits for ``inputs`` in eval mode; the model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    prepare = prepare or (lambda x: x)
    try:
        out = [model(prepare(inputs[i : i + batch_size])).float() for i in range(0, len(inputs), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)


def uses_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def input_preparer(model: nn.Module, channels_last: bool) -> Callable[[Tensor], Tensor]:
    """Inputs in the memory layout the model runs fastest with: NHWC (channels last) for conv models."""
    if channels_last and uses_conv(model):
        return lambda x: x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x
    return lambda x: x
