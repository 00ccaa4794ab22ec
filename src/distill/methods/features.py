"""Shared plumbing for feature-based methods: which layers to tap, fetching them, shape errors.

``student_layer`` / ``teacher_layer`` are dotted module paths (``features.1``, ``layer2``); methods
that compare several pairs of layers take equal-length lists.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor
from torch.nn import functional as F

from distill.errors import CompatibilityError, ConfigError
from distill.methods.base import Method, Needs, Outputs

Layers = str | Sequence[str] | None


def _as_paths(value: Layers, option: str, method: str) -> tuple[str, ...]:
    paths = (value,) if isinstance(value, str) else tuple(value or ())
    if not paths or not all(isinstance(p, str) and p for p in paths):
        raise ConfigError(
            f"method '{method}' needs option '{option}': a dotted module path such as 'features.1' or 'layer2'"
        )
    return paths


def flat(x: Tensor) -> Tensor:
    """(N, ...) -> (N, D); reshape, not view, because channels-last maps are not contiguous."""
    return x.reshape(len(x), -1)


def pool_to_common(s: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """Average-pool the larger of two (N, C, H, W) maps down to the smaller spatial size."""
    size = (min(s.shape[2], t.shape[2]), min(s.shape[3], t.shape[3]))
    if tuple(s.shape[2:]) != size:
        s = F.adaptive_avg_pool2d(s, size)
    if tuple(t.shape[2:]) != size:
        t = F.adaptive_avg_pool2d(t, size)
    return s, t


class FeatureMethod(Method):
    """A method that compares the outputs of student and teacher modules, pair by pair."""

    # False for methods defined on one embedding (rkd, pkt, crd): a list of several pairs is an error.
    several_pairs = True

    def __init__(self, student_layer: Layers, teacher_layer: Layers):
        super().__init__()
        name = getattr(self, "name", type(self).__name__)
        students = _as_paths(student_layer, "student_layer", name)
        teachers = _as_paths(teacher_layer, "teacher_layer", name)
        if len(students) != len(teachers):
            raise ConfigError(f"method '{name}': student_layer has {len(students)} paths but teacher_layer "
                              f"has {len(teachers)}; give one teacher layer per student layer")
        if len(students) > 1 and not self.several_pairs:
            raise ConfigError(f"method '{name}' compares one pair of layers; got {len(students)}")
        self.pairs = list(zip(students, teachers, strict=True))

    def needs(self) -> Needs:
        return Needs(teacher=True, student_modules=tuple(s for s, _ in self.pairs),
                     teacher_modules=tuple(t for _, t in self.pairs))

    def mismatch(self, pair: tuple[str, str], s: Tensor, t: Tensor, why: str) -> CompatibilityError:
        return CompatibilityError(
            f"{self.name}: student '{pair[0]}' output {tuple(s.shape)} and teacher '{pair[1]}' output "
            f"{tuple(t.shape)} cannot be matched: {why}"
        )

    def feature_pairs(self, student: Outputs, teacher: Outputs | None) -> list[tuple[Tensor, Tensor]]:
        """The tapped (student, teacher) tensors of every pair, checked to share the batch size."""
        if teacher is None:
            raise ValueError(f"method '{self.name}' needs the teacher's outputs")
        out = []
        for pair in self.pairs:
            for role, outputs, path in (("student", student, pair[0]), ("teacher", teacher, pair[1])):
                if path not in outputs.features:
                    raise CompatibilityError(f"{self.name}: {role} module '{path}' produced no output in the "
                                             f"forward pass; tap a module that the model's forward() calls")
            s, t = student.features[pair[0]], teacher.features[pair[1]]
            if s.dim() < 2 or t.dim() < 2 or s.shape[0] != t.shape[0]:
                raise self.mismatch(pair, s, t, "both need a leading batch dimension of the same size")
            out.append((s, t))
        return out

    def check(self, pair: tuple[str, str], s: Tensor, t: Tensor) -> None:
        """Raise ``mismatch`` when this method cannot compare ``s`` and ``t``; the default accepts any."""

    def setup(self, student: Outputs, teacher: Outputs | None) -> None:
        for pair, (s, t) in zip(self.pairs, self.feature_pairs(student, teacher), strict=True):
            self.check(pair, s, t)
