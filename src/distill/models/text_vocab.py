"""Small student vocabularies and low-dimensional embeddings for the text students.

The teacher's tokenizer stays the only tokenizer: students take its token ids, and a
``TokenMap`` (a buffer, so it lives in the checkpoint and in the exported ONNX graph) sends each
id to a row of the student's own, much smaller table. The rows are the tokens that occur in the
training data and the transfer set (``vocabulary: data``); every other token becomes [UNK].
Evaluation, export and deployment therefore tokenise exactly as training did: the same
tokenizer, and the mapping inside the model.

The table's rows can start from the teacher's pretrained embeddings of the same tokens, and
with ``embedding_dim`` below the teacher's width from their PCA: the kept rows, centred and
projected on their top principal directions (the best rank-k linear summary of the teacher's
table, in the least-squares sense).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from distill.errors import ConfigError

VOCABULARIES = ("full", "data")


class TokenMap(nn.Module):
    """Teacher token ids -> rows of the student's vocabulary; ids outside it -> the [UNK] row.

    ``kept[i]`` is the teacher id of row ``i``; ``table[teacher_id]`` is its row.
    """

    def __init__(self, kept_ids: Sequence[int], teacher_vocab_size: int, unk_id: int):
        super().__init__()
        kept = torch.as_tensor(sorted(set(int(i) for i in kept_ids) | {int(unk_id)}), dtype=torch.long)
        if len(kept) and (kept.min() < 0 or kept.max() >= teacher_vocab_size):
            raise ConfigError(f"data_vocabulary holds ids outside the tokenizer's 0..{teacher_vocab_size - 1}")
        unk_row = int((kept == unk_id).nonzero()[0, 0])
        table = torch.full((teacher_vocab_size,), unk_row, dtype=torch.long)
        table[kept] = torch.arange(len(kept))
        self.register_buffer("table", table)
        self.register_buffer("kept", kept)
        self.unk_id = int(unk_id)

    def __len__(self) -> int:
        return len(self.kept)

    def forward(self, ids: Tensor) -> Tensor:
        return self.table[ids]

    def row(self, teacher_id: int) -> int:
        return int(self.table[teacher_id])


def find_token_map(model: nn.Module) -> TokenMap | None:
    return next((m for m in model.modules() if isinstance(m, TokenMap)), None)


def pca(weight: Tensor, dim: int) -> tuple[Tensor, Tensor, Tensor]:
    """(coordinates (V, dim), directions (dim, D), mean (D,)) of ``weight`` (V, D) on its top ``dim``
    principal directions: ``coordinates @ directions + mean`` is its best rank-``dim`` approximation."""
    if not 0 < dim <= weight.shape[1]:
        raise ConfigError(f"embedding_dim must lie in 1..{weight.shape[1]} (the teacher's width) to start "
                          f"from the teacher's embeddings, got {dim}")
    mean = weight.double().mean(0)
    centred = weight.double() - mean
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    directions = vh[:dim]
    return (centred @ directions.T).to(weight.dtype), directions.to(weight.dtype), mean.to(weight.dtype)


def token_map_for(vocabulary: str, data_vocabulary: Sequence[int] | None, vocab_size: int | None,
                  unk_id: int | None) -> TokenMap | None:
    """The student's map for ``vocabulary`` (``full``: none, the tokenizer's own ids)."""
    if vocabulary not in VOCABULARIES:
        raise ConfigError(f"vocabulary must be one of {', '.join(VOCABULARIES)}, got {vocabulary!r}")
    if vocabulary == "full":
        return None
    if data_vocabulary is None or vocab_size is None:
        raise ConfigError("vocabulary: data needs the token ids of the training data (data_vocabulary, filled in "
                          "by distill run from the text data) and the tokenizer's vocab_size")
    return TokenMap(data_vocabulary, vocab_size, 1 if unk_id is None else unk_id)


def student_table(teacher_weight: Tensor | None, token_map: TokenMap | None, embedding_dim: int | None,
                  rows: int) -> Tensor | None:
    """Initial weights of the student's table: the teacher's rows of the kept tokens, PCA-reduced
    to ``embedding_dim`` when it is narrower. None when not starting from the teacher."""
    if teacher_weight is None:
        return None
    weight = teacher_weight[token_map.kept] if token_map is not None else teacher_weight
    if len(weight) != rows:
        raise ConfigError(f"vocab_size {rows} differs from the teacher's {len(weight)}")
    if embedding_dim is None or embedding_dim == weight.shape[1]:
        return weight.clone()
    if embedding_dim > weight.shape[1]:
        raise ConfigError(f"init_embeddings_from_teacher needs embedding_dim <= {weight.shape[1]} (the "
                          f"teacher's width; smaller ones start from its PCA), got {embedding_dim}")
    return pca(weight, embedding_dim)[0]


class MappedEmbedding(nn.Module):
    """Teacher ids -> student rows -> embedding (-> a linear up to the encoder's width): a drop-in
    ``word_embeddings`` for a Hugging Face encoder with a smaller vocabulary and/or a narrower table
    (ALBERT's factorised embeddings when ``width`` differs from the table's)."""

    def __init__(self, token_map: TokenMap | None, embedding: nn.Embedding, width: int):
        super().__init__()
        self.token_map, self.embedding = token_map, embedding
        d = embedding.embedding_dim
        self.projection = nn.Linear(d, width) if d != width else None

    @classmethod
    def from_teacher(cls, teacher_weight: Tensor, token_map: TokenMap | None, dim: int | None, pad_row: int | None,
                     freeze: bool) -> MappedEmbedding:
        """The teacher's rows of the kept tokens; narrower than the teacher, their PCA coordinates and
        a projection starting at the PCA directions and mean (the best rank-``dim`` copy of the rows)."""
        weight = teacher_weight[token_map.kept] if token_map is not None else teacher_weight
        width = weight.shape[1]
        if dim is None or dim == width:
            return cls(token_map, nn.Embedding.from_pretrained(weight.clone(), freeze=freeze, padding_idx=pad_row),
                       width)
        coordinates, directions, mean = pca(weight, dim)
        module = cls(token_map, nn.Embedding.from_pretrained(coordinates, freeze=freeze, padding_idx=pad_row), width)
        with torch.no_grad():
            module.projection.weight.copy_(directions.T)
            module.projection.bias.copy_(mean)
        return module

    @property
    def weight(self) -> Tensor:  # what Hugging Face code reads for the dtype and device
        return self.embedding.weight

    def forward(self, ids: Tensor) -> Tensor:
        x = self.embedding(self.token_map(ids) if self.token_map is not None else ids)
        return self.projection(x) if self.projection is not None else x
