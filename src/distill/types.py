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
class TokenTopK:
    """A teacher's next-token distribution kept as its k most likely tokens plus one tail bucket.

    One row per loss token (the N rows of ``Outputs.logits`` for ``task: causal_lm``).
    ``logprobs`` are log-probabilities under the teacher's FULL softmax at ``temperature`` (not
    renormalised over the k), and ``tail_logprob`` is the log of the remaining mass, computed from
    the full log-sum-exp, so the k + 1 buckets are an exact coarsening of the teacher's
    distribution (``-inf`` tail when k is the whole vocabulary). ``temperature`` is the one the
    distribution was taken at: a method at another temperature refuses it (no exact re-tempering).
    """

    indices: Tensor  # (N, k) token ids (long from the cache; int32 as encoded for storage)
    logprobs: Tensor  # (N, k) float
    tail_logprob: Tensor  # (N,) float
    temperature: float = 1.0


@dataclass
class Outputs:
    # (N, C) class logits; for task: causal_lm (N, V) next-token logits at the N loss positions of
    # the batch, flattened row-major. None when a cached teacher gives only ``topk``.
    logits: Tensor | None = None
    features: dict[str, Tensor] = field(default_factory=dict)
    topk: TokenTopK | None = None


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
