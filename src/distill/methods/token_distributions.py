"""Token-level divergences for causal language models: the student's and the teacher's next-token
distributions at the N loss positions of a batch, as aligned log-probability rows.

The teacher comes either as full logits (``Outputs.logits``, (N, V)) or as a top-k cache
(``Outputs.topk``, see ``distill.types.TokenTopK``). With a top-k teacher both distributions are
compared on k + 1 buckets: the k teacher tokens and one tail bucket holding the rest of the
mass. The student's tail is the log-sum-exp of its log-probabilities outside the k tokens, which
stays exact when the k tokens hold nearly all of the mass (unlike ``log(1 - sum p)``).

Every divergence here takes ``(log_q, log_p)`` = (student, teacher) log-probabilities of shape
(N, M) and returns one value per row; ``TokenDivergence.losses`` averages the rows (TRL's
``batchmean`` over the masked tokens: sum over tokens / token count).
"""

from __future__ import annotations

import math
from typing import Annotated, ClassVar

import torch
from pydantic import Field
from torch import Tensor

from distill.errors import ConfigError
from distill.methods.base import Batch, Method, Needs, Outputs
from distill.types import TokenTopK

CAUSAL_LM = "causal_lm"


def _work_dtype(t: Tensor) -> torch.dtype:
    # bf16/fp16 logits are compared in float32 (as DistiLLM's softmax(..., dtype=float32)).
    return t.dtype if t.dtype in (torch.float32, torch.float64) else torch.float32


def _floor(log_probs: Tensor) -> Tensor:
    """-inf (a zero-mass bucket, a masked token) as the most negative finite value, so that
    0 * log 0 terms are 0 and gradients stay finite instead of nan."""
    return log_probs.clamp_min(torch.finfo(log_probs.dtype).min)


def bucket_student(log_q: Tensor, indices: Tensor) -> Tensor:
    """(N, V) student log-probabilities -> (N, k + 1): the k given tokens, then the tail bucket."""
    indices = indices.long()
    top = log_q.gather(1, indices)
    rest = log_q.scatter(1, indices, torch.finfo(log_q.dtype).min)
    return torch.cat([top, torch.logsumexp(rest, dim=-1, keepdim=True)], dim=1)


def bucket_teacher(topk: TokenTopK, dtype: torch.dtype) -> Tensor:
    """(N, k + 1) teacher log-probabilities from a top-k cache, renormalised (fp16 storage rounds
    the stored log-probabilities, so the k + 1 buckets may miss 1 by a few ulps)."""
    log_p = _floor(torch.cat([topk.logprobs.to(dtype), topk.tail_logprob.to(dtype)[:, None]], dim=1))
    return log_p - torch.logsumexp(log_p, dim=-1, keepdim=True)


def paired_log_probs(student_logits: Tensor, teacher: Outputs, temperature: float, method: str) -> tuple[Tensor, Tensor]:
    """(student, teacher) log-probabilities at ``temperature``, both (N, V) or both (N, k + 1).

    Full teacher logits are used when present; otherwise the top-k cache, which must have been
    built at this temperature (a cached distribution cannot be re-tempered exactly).
    """
    if student_logits is None or student_logits.dim() != 2:
        raise ValueError(f"method '{method}' needs the student's (N, V) logits at the loss tokens")
    dtype = _work_dtype(student_logits)
    log_q = torch.log_softmax(student_logits.to(dtype) / temperature, dim=-1)
    if teacher.logits is not None:
        if teacher.logits.shape != student_logits.shape:
            raise ValueError(f"method '{method}': teacher logits {tuple(teacher.logits.shape)} and student logits "
                             f"{tuple(student_logits.shape)} differ; both must be (N, V) at the same loss tokens")
        log_p = torch.log_softmax(teacher.logits.detach().to(dtype) / temperature, dim=-1)
        return _floor(log_q), _floor(log_p)
    topk = teacher.topk
    if topk is None:
        raise ValueError(f"method '{method}' needs the teacher's logits or its top-k tokens (Outputs.topk)")
    if not math.isclose(topk.temperature, temperature, rel_tol=1e-6):
        raise ConfigError(f"method '{method}': temperature is {temperature:g} but the teacher's top-k cache holds "
                          f"probabilities at temperature {topk.temperature:g}; rebuild the cache at {temperature:g} "
                          f"or set the method's temperature to {topk.temperature:g}")
    if topk.indices.shape[0] != student_logits.shape[0]:
        raise ValueError(f"method '{method}': the top-k cache gives {topk.indices.shape[0]} tokens but the student "
                         f"{student_logits.shape[0]}; the cache and the batch disagree on the loss tokens")
    return _floor(bucket_student(log_q, topk.indices)), bucket_teacher(topk, dtype)


# -- divergences between rows of log-probabilities (student q, teacher p) --------------------------------
def kl(log_a: Tensor, log_b: Tensor) -> Tensor:
    """KL(a || b) per row: sum a (log a - log b)."""
    return (log_a.exp() * (log_a - log_b)).sum(-1)


def log_mixture(log_a: Tensor, log_b: Tensor, weight_a: float) -> Tensor:
    """log(w a + (1 - w) b), elementwise in log space."""
    if weight_a == 0:
        return log_b
    if weight_a == 1:
        return log_a
    return torch.logaddexp(log_a + math.log(weight_a), log_b + math.log1p(-weight_a))


def total_variation(log_q: Tensor, log_p: Tensor) -> Tensor:
    return 0.5 * (log_p.exp() - log_q.exp()).abs().sum(-1)


class TokenDivergence(Method):
    """A divergence between the teacher's and the student's next-token distributions, averaged over
    the loss tokens; both logits are divided by ``temperature`` (as TRL's GKD, no T^2 factor).

    The divergence is the whole objective by default (label weight 0, as TRL's GKDTrainer and
    DistiLLM's ``--kd-ratio 1.0``); ``distill.label_weight`` adds the token cross-entropy.
    """

    tasks: ClassVar[tuple[str, ...]] = (CAUSAL_LM,)
    label_weight = 0.0
    term = "divergence"
    # Whether a top-k teacher cache (k tokens + one tail bucket) serves this divergence well. A divergence
    # that weighs the student's own distribution (reverse KL, JSD's student side) sees the student's mass
    # outside the teacher's top k as one bucket, so that mass is barely corrected (benchmarks/llm_topk.py:
    # reverse-KL gradient cosine 0.22 at k = 32; benchmarks/llm.py: JSD from the cache ends 18% further
    # from the teacher than from the live one): with cache.mode auto such methods use the live teacher.
    top_k_cache_fits: ClassVar[bool] = True

    def __init__(self, temperature: Annotated[float, Field(gt=0)] = 1.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def needs(self) -> Needs:
        return Needs(teacher=True)

    def divergence(self, log_q: Tensor, log_p: Tensor) -> Tensor:
        raise NotImplementedError

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        assert teacher is not None
        log_q, log_p = paired_log_probs(student.logits, teacher, self.temperature, self.name)
        per_token = self.divergence(log_q, log_p)
        # An empty batch (every response truncated away) gives 0 with a gradient path, as TRL's clamp_min(1).
        return {self.term: per_token.sum() / max(per_token.shape[0], 1)}


class SkewedDivergence(TokenDivergence):
    """A KL against a mixture of the two distributions; ``alpha`` is DistiLLM's skew ``lam`` (default 0.1)."""

    def __init__(self, alpha: Annotated[float, Field(ge=0, lt=1)] = 0.1,
                 temperature: Annotated[float, Field(gt=0)] = 1.0):
        super().__init__(temperature)
        if not 0 <= alpha < 1:
            raise ValueError(f"{self.name} alpha must be in [0, 1), got {alpha}")
        self.alpha = alpha
