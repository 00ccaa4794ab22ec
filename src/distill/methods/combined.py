"""Several methods' losses summed with weights, e.g. KD + AT.

Config: ``distill: {methods: [{method: kd, weight: 1.0, options: {...}}, {method: at, ...}]}``.
The sub-methods live in an ``nn.ModuleList`` so their adapters are optimised and checkpointed
with the student, exactly as a single method's would be.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from distill.errors import ConfigError
from distill.methods.base import (
    METHODS,
    Batch,
    Method,
    Needs,
    Outputs,
    build_method,
    register_method,
    renamed_label_option,
)


@register_method("combined")
class Combined(Method):
    """total = label_weight * label loss + sum_i weight_i * (sum of method_i's terms).

    Each distillation term is logged as ``<method>.<term>``; the label loss is added once, by the
    trainer, never per method. Its default weight is the largest of the methods' own defaults
    (kd 0.1 + at 1.0 -> 1.0, RepDistiller's ``-r 1`` for a feature method with KD), unless
    ``distill.label_weight`` sets it; a method's old label-weight option (kd's ``beta``, ``hard_weight``)
    is refused here. Every sub-method sees the same student and teacher outputs; the tapped modules
    are the union of what they ask for. Two entries of the same method are named ``kd``, ``kd#2``, ...
    """

    summary = "a weighted sum of several methods' losses, e.g. kd + at (config: distill.methods)"
    paper = ""

    def __init__(self, methods: list[dict[str, Any]] | None = None):
        super().__init__()
        if not methods:
            raise ConfigError("method 'combined' needs a non-empty list 'methods' of {method, weight, options}")
        self.parts = nn.ModuleList()
        self.weights: list[float] = []
        self.labels: list[str] = []
        for spec in methods:
            name = spec["method"]
            if name == "combined":
                raise ConfigError("distill.methods cannot contain 'combined' itself")
            old = renamed_label_option(METHODS.get(name), spec.get("options") or {})
            if old is not None:
                raise ConfigError(f"distill.methods: {name}'s option '{old}' weighted its own label loss; a combination "
                                  f"counts the label loss once: remove '{old}' and set distill.label_weight")
            self.parts.append(build_method(name, spec.get("options")))
            self.weights.append(float(spec.get("weight", 1.0)))
            count = sum(1 for label in self.labels if label.split("#")[0] == name)
            self.labels.append(name if count == 0 else f"{name}#{count + 1}")
        self.label_weight = max(part.label_weight for part in self.parts)
        # One label loss for the whole combination: a regression part's choice (l1) is kept.
        self.label_loss = next((p.label_loss for p in self.parts if p.label_loss), None)

    def needs(self) -> Needs:
        parts = [m.needs() for m in self.parts]

        def union(paths):  # keep first-seen order so taps are registered deterministically
            return tuple(dict.fromkeys(p for group in paths for p in group))

        return Needs(teacher=any(n.teacher for n in parts),
                     student_modules=union(n.student_modules for n in parts),
                     teacher_modules=union(n.teacher_modules for n in parts))

    def setup(self, student: Outputs, teacher: Outputs | None) -> None:
        for part in self.parts:
            part.setup(student, teacher)

    def setup_data(self, targets: Tensor | None) -> None:
        for part in self.parts:
            part.setup_data(targets)

    def start_epoch(self, epoch: int) -> None:
        for part in self.parts:
            part.start_epoch(epoch)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for label, weight, part in zip(self.labels, self.weights, self.parts, strict=True):
            for term, value in part.losses(student, teacher, batch).items():
                out[f"{label}.{term}"] = weight * value
        return out


def method_from_config(distill_cfg) -> Method:
    """The method a ``distill:`` section asks for (one method, or the ``methods:`` combination), with its label weight.

    ``distill.label_weight`` (null = the method's default) sets the weight of the one label term the
    trainer adds; an older config's per-method label option must not contradict it.
    """
    if getattr(distill_cfg, "methods", None):
        method = build_method("combined", {"methods": [m.model_dump() for m in distill_cfg.methods]})
    else:
        method = build_method(distill_cfg.method, distill_cfg.options)
        old = renamed_label_option(METHODS.get(distill_cfg.method), distill_cfg.options or {})
        configured = getattr(distill_cfg, "label_weight", None)
        if old is not None and configured is not None and float(configured) != method.label_weight:
            raise ConfigError(f"distill.options.{old} ({distill_cfg.options[old]}) is the old name of distill.label_weight "
                              f"({configured}); give only distill.label_weight")
    configured = getattr(distill_cfg, "label_weight", None)
    if configured is not None:
        method.label_weight = float(configured)
    return method
