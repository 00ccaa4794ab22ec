"""Generalized Jensen-Shannon divergence (GKD, Agarwal et al. 2024), as TRL's ``generalized_jsd_loss``."""

from typing import Annotated

from pydantic import Field
from torch import Tensor

from distill.methods.base import register_method
from distill.methods.token_distributions import TokenDivergence, kl, log_mixture


@register_method("gkd")
class GKD(TokenDivergence):
    """loss = mean over loss tokens of JSD_beta: beta KL(p || m) + (1 - beta) KL(q || m), m = beta p + (1 - beta) q.

    p is the teacher's and q the student's softmax(logits / temperature). As TRL's
    ``GKDTrainer.generalized_jsd_loss``: beta = 0 is forward KL(p || q) and beta = 1 reverse
    KL(q || p) exactly (not the limits of the formula, which vanish); TRL's default beta 0.5.
    This is the token loss only; on-policy sampling (lmbda) is the training mode's business.
    """

    summary = "causal LM: generalized JSD with beta (0 forward KL, 1 reverse KL), TRL GKD's loss"
    paper = "Agarwal et al. 2024, On-Policy Distillation of Language Models: Learning from Self-Generated Mistakes, arXiv:2306.13649"
    term = "jsd"

    def __init__(self, beta: Annotated[float, Field(ge=0, le=1)] = 0.5,
                 temperature: Annotated[float, Field(gt=0)] = 1.0):
        super().__init__(temperature)
        if not 0 <= beta <= 1:
            raise ValueError(f"gkd beta must be in [0, 1], got {beta}")
        self.beta = beta

    @property
    def top_k_cache_fits(self) -> bool:  # beta > 0 weighs the student's own mass (token_distributions.py)
        return self.beta == 0

    def divergence(self, log_q: Tensor, log_p: Tensor) -> Tensor:
        if self.beta == 0:
            return kl(log_p, log_q)
        if self.beta == 1:
            return kl(log_q, log_p)
        log_m = log_mixture(log_p, log_q, self.beta)
        return self.beta * kl(log_p, log_m) + (1 - self.beta) * kl(log_q, log_m)
