"""Skew reverse KL (DistiLLM, Ko et al. 2024): KL(q || alpha q + (1 - alpha) p) per token."""

from torch import Tensor

from distill.methods.base import register_method
from distill.methods.token_distributions import SkewedDivergence, kl, log_mixture


@register_method("skew_reverse_kl")
class SkewReverseKL(SkewedDivergence):
    """loss = mean over loss tokens of KL(q || alpha q + (1 - alpha) p); p teacher, q student.

    DistiLLM's ``skewed_reverse_kl`` (``lam`` = alpha, default 0.1); alpha = 0 is reverse KL.
    """

    summary = "causal LM: skew reverse KL(q || a q + (1-a) p) with alpha (DistiLLM)"
    paper = "Ko, Kim, Chen, Yun 2024, DistiLLM: Towards Streamlined Distillation for Large Language Models, arXiv:2402.03898"
    term = "skew_reverse_kl"
    top_k_cache_fits = False  # weighs the student's own mass: cache.mode auto uses the live teacher

    def divergence(self, log_q: Tensor, log_p: Tensor) -> Tensor:
        return kl(log_q, log_mixture(log_q, log_p, self.alpha))
