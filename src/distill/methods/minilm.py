"""Wang et al. 2020, "MiniLMv2: Multi-Head Self-Attention Relation Distillation for Compressing
Pretrained Transformers" (and MiniLM, Wang et al. 2020, for the value relation).

For a mapped pair of self-attention layers, the queries, keys and values (each the concatenation
of all attention heads, shape (N, L, hidden)) are split into ``relation_heads`` equal chunks; each
chunk gives a token-token relation ``softmax(A A^T / sqrt(d_r))`` over the non-padding keys. The
student's relations are pulled towards the teacher's with KL(teacher || student), summed over the
batch, relation heads and query positions and divided by ``relation_heads x L x N`` (L the padded
length of the batch), as in the widely used reference implementation (PaddleNLP's
``calc_minilm_loss``; the authors released the models, not the distillation code). Relations
are L x L whatever the widths, so teacher and student may differ in hidden size and head count
(only ``relation_heads`` must divide both widths): no projection is learned.

Layers are named 1..K as in ``tinybert``: ``layers: [[2, 6]]`` maps the student's layer 2 to the
teacher's layer 6 (MiniLMv2 distils one upper layer of the teacher into the student's last).
The tensors come from forward hooks on each layer's ``attention.self.query|key|value`` linear
maps, which every BERT-style ``hf_classifier`` / ``text_transformer`` has.

Only the relation term is returned: the trainer adds the label loss (``distill.label_weight``,
default 1). Combine it with soft targets in ``distill.methods``, e.g. ``[{method: kd}, {method:
minilm, weight: 1}]``.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field
from torch import Tensor
from torch.nn import functional as F

from distill.errors import ConfigError
from distill.methods.base import Batch, Method, Needs, Outputs, register_method

RELATIONS = ("query", "key", "value")
MASKED = -1e9  # added to the relation logits of padding keys (their softmax weight becomes 0)


def parse_layer_pairs(layers) -> list[tuple[int, int]]:
    try:
        pairs = [(int(s), int(t)) for s, t in layers]
    except (TypeError, ValueError):
        raise ConfigError(f"minilm layers must be a list of [student, teacher] layer pairs, got {layers!r}") from None
    if not pairs or any(s < 1 or t < 1 for s, t in pairs):
        raise ConfigError(f"minilm layers count from 1 (layer K's self-attention), got {layers!r}")
    return pairs


def module_path(layer: int, relation: str) -> str:
    """The linear map of ``relation`` in transformer layer ``layer`` (1-based) of an HFClassifier."""
    return f"encoder.encoder.layer.{layer - 1}.attention.self.{relation}"


def split_heads(x: Tensor, heads: int) -> Tensor:
    """(N, L, H) -> (N, heads, L, H / heads): consecutive chunks of the concatenated head vectors."""
    n, length, width = x.shape
    if width % heads:
        raise ConfigError(f"minilm relation_heads ({heads}) must divide the attention width {width}")
    return x.reshape(n, length, heads, width // heads).transpose(1, 2)


def relation_log_probs(x: Tensor, heads: int, key_mask: Tensor) -> Tensor:
    """log softmax(A A^T / sqrt(d_r)) per relation head, padding keys masked out: (N, heads, L, L)."""
    a = split_heads(x.float(), heads)
    scores = a @ a.transpose(-1, -2) / math.sqrt(a.shape[-1])
    scores = scores + (~key_mask)[:, None, None, :].to(scores.dtype) * MASKED
    return scores.log_softmax(-1)


def relation_kl(student: Tensor, teacher: Tensor, heads: int, key_mask: Tensor) -> Tensor:
    """KL(teacher relation || student relation), summed, divided by heads x L x N."""
    log_s = relation_log_probs(student, heads, key_mask)
    log_t = relation_log_probs(teacher, heads, key_mask)
    kl = F.kl_div(log_s, log_t, reduction="sum", log_target=True)
    n, length = key_mask.shape
    return kl / (heads * length * n)


@register_method("minilm")
class MiniLM(Method):
    summary = "self-attention relation transfer: query, key and value token relations (Wang et al. 2020)"
    paper = ("Wang et al. 2020, MiniLMv2: Multi-Head Self-Attention Relation Distillation for Compressing "
             "Pretrained Transformers, arXiv:2012.15828")

    def __init__(self, layers=((2, 6),), relation_heads: Annotated[int, Field(ge=1)] = 12, relations=RELATIONS,
                 pad_id: Annotated[int, Field(ge=0)] = 0):
        super().__init__()
        self.pairs = parse_layer_pairs(layers)
        if relation_heads < 1:
            raise ConfigError(f"minilm relation_heads must be >= 1, got {relation_heads}")
        unknown = [r for r in relations if r not in RELATIONS]
        if unknown or not relations:
            raise ConfigError(f"minilm relations are some of {', '.join(RELATIONS)}, got {list(relations)}")
        self.relation_heads, self.relations, self.pad_id = relation_heads, tuple(relations), pad_id

    def needs(self) -> Needs:
        student = tuple(module_path(s, r) for s, _ in self.pairs for r in self.relations)
        teacher = tuple(module_path(t, r) for _, t in self.pairs for r in self.relations)
        return Needs(teacher=True, student_modules=student, teacher_modules=teacher)

    def losses(self, student: Outputs, teacher: Outputs | None, batch: Batch) -> dict[str, Tensor]:
        assert teacher is not None
        total = student.logits.sum() * 0.0
        for s, t in self.pairs:
            for relation in self.relations:
                sx = student.features[module_path(s, relation)]
                tx = teacher.features[module_path(t, relation)]
                # The text models drop all-padding columns: the hooked tensors are that long.
                key_mask = batch.inputs[:, : sx.shape[1]] != self.pad_id
                total = total + relation_kl(sx, tx, self.relation_heads, key_mask.to(sx.device))
        return {"relation": total / len(self.pairs)}
