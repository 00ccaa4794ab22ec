"""Total variation distance between next-token distributions (DistiLLM's ``tv_distance``)."""

from torch import Tensor

from distill.methods.base import register_method
from distill.methods.token_distributions import TokenDivergence, total_variation


@register_method("tvd")
class TVD(TokenDivergence):
    """loss = mean over loss tokens of 0.5 * sum |p - q|; p teacher, q student (bounded in [0, 1]).

    DistiLLM's ``tv_distance``; with a top-k teacher, the total variation on the k + 1 buckets
    (a lower bound of the full one).
    """

    summary = "causal LM: total variation 0.5 sum |p - q| per token (DistiLLM's tv_distance)"
    paper = "Wen, Li, Du, Mou 2023, f-Divergence Minimization for Sequence-Level Knowledge Distillation, arXiv:2307.15190"
    term = "tvd"

    def divergence(self, log_q: Tensor, log_p: Tensor) -> Tensor:
        return total_variation(log_q, log_p)
