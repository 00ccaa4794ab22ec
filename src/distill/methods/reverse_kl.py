"""Reverse KL for causal language models: KL(student || teacher) per token (MiniLLM's objective)."""

from torch import Tensor

from distill.methods.base import register_method
from distill.methods.token_distributions import TokenDivergence, kl


@register_method("reverse_kl")
class ReverseKL(TokenDivergence):
    """loss = mean over loss tokens of KL(p_student || p_teacher), p = softmax(logits / temperature).

    TRL's ``generalized_jsd_loss`` with beta = 1 and DistiLLM's ``reverse_kl``; mode-seeking, the
    divergence MiniLLM minimises (here token-level, without its policy-gradient sequence term).
    """

    summary = "causal LM: reverse KL(student || teacher) per token (mode-seeking, TRL GKD beta=1)"
    paper = "Gu, Dong, Wei, Huang 2024, MiniLLM: Knowledge Distillation of Large Language Models, arXiv:2306.08543"
    term = "reverse_kl"
    top_k_cache_fits = False  # weighs the student's own mass: cache.mode auto uses the live teacher

    def divergence(self, log_q: Tensor, log_p: Tensor) -> Tensor:
        return kl(log_q, log_p)
