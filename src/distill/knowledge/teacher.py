"""A frozen teacher: eval mode, no gradients, its BatchNorm statistics never change."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from distill.knowledge.taps import Taps
from distill.types import Batch, Outputs


def freeze(model: nn.Module) -> nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class LiveTeacher:
    """Runs the teacher on each batch under ``inference_mode``."""

    def __init__(self, model: nn.Module, modules: tuple[str, ...] = (), prepare=None):
        self.model = freeze(model)
        self.taps = Taps(model, modules, role="teacher") if modules else None
        self.prepare = prepare or (lambda x: x)

    def __call__(self, batch: Batch) -> Outputs:
        self.model.eval()  # guard against a caller having switched it back to train mode
        with torch.inference_mode():
            if getattr(self.model, "is_causal_lm", False):  # (N, V) at the batch's loss positions
                logits = self.model(batch.inputs, batch.targets, batch.attention_mask)
            else:
                logits = self.model(self.prepare(batch.inputs))
            features = self.taps.pop() if self.taps else {}
        # Inference tensors cannot be saved for the student's backward pass; clone makes normal ones.
        return Outputs(_plain(logits), {k: _plain(v) for k, v in features.items()})

    def close(self) -> None:
        if self.taps:
            self.taps.close()


def _plain(t: Tensor) -> Tensor:
    return t.clone()
