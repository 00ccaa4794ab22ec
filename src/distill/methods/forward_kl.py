"""Forward KL for causal language models: KL(teacher || student) per token (word-level KD)."""

from torch import Tensor

from distill.methods.base import register_method
from distill.methods.token_distributions import TokenDivergence, kl


@register_method("forward_kl")
class ForwardKL(TokenDivergence):
    """loss = mean over loss tokens of KL(p_teacher || p_student), p = softmax(logits / temperature).

    TRL's ``generalized_jsd_loss`` with beta = 0 (Kim & Rush's word-level KD); mode-covering. With
    a top-k teacher the two distributions are compared on the k teacher tokens plus one tail bucket.
    """

    summary = "causal LM: forward KL(teacher || student) per token (word-level KD, TRL GKD beta=0)"
    paper = "Kim, Rush 2016, Sequence-Level Knowledge Distillation, arXiv:1606.07947"
    term = "forward_kl"

    def divergence(self, log_q: Tensor, log_p: Tensor) -> Tensor:
        return kl(log_p, log_q)
