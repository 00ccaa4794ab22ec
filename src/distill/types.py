"""The contract types every layer shares: what a method needs, what models output, what a batch holds.

They sit at the bottom of the package (see docs/architecture.md) so that data, knowledge,
methods and the trainer can all speak them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


@dataclass(frozen=True)
class Needs:
    """What the trainer must collect for a method.

    ``student_modules``/``teacher_modules`` are dotted module paths (``layer2``,
    ``encoder.layer.3``) whose outputs are captured with forward hooks.
    ``teacher`` is False for methods that learn from labels alone.
    """

    teacher: bool = True
    student_modules: tuple[str, ...] = ()
    teacher_modules: tuple[str, ...] = ()


@dataclass
class Outputs:
    logits: Tensor
    features: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class Batch:
    inputs: Tensor
    targets: Tensor
    # Position of each sample in its dataset; lets a teacher cache look up stored outputs.
    index: Tensor | None = None
    # The augmentation draws that produced ``inputs`` (None when not augmented).
    view: Any = None
    # causal_lm: 1 for real tokens, 0 for padding (None: right padding, which a causal model never attends to).
    attention_mask: Tensor | None = None
