"""Skew forward KL (DistiLLM, Ko et al. 2024): KL(p || alpha p + (1 - alpha) q) per token."""

from torch import Tensor

from distill.methods.base import register_method
from distill.methods.token_distributions import SkewedDivergence, kl, log_mixture


@register_method("skew_forward_kl")
class SkewForwardKL(SkewedDivergence):
    """loss = mean over loss tokens of KL(p || alpha p + (1 - alpha) q); p teacher, q student.

    DistiLLM's ``skewed_forward_kl`` (``lam`` = alpha, default 0.1), whose code returns the cross
    entropy -sum p log m; this is the same minus the teacher's entropy (a constant: equal
    gradients), so the loss is 0 when the student matches the teacher and alpha = 0 is forward KL.
    """

    summary = "causal LM: skew forward KL(p || a p + (1-a) q) with alpha (DistiLLM)"
    paper = "Ko, Kim, Chen, Yun 2024, DistiLLM: Towards Streamlined Distillation for Large Language Models, arXiv:2402.03898"
    term = "skew_forward_kl"

    def divergence(self, log_q: Tensor, log_p: Tensor) -> Tensor:
        return kl(log_p, log_mixture(log_p, log_q, self.alpha))
