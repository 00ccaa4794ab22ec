"""Small, fast sentence classifiers to distil a transformer into.

* ``bilstm``: one bidirectional LSTM layer, final states -> ReLU layer -> logits (Tang et al. 2019);
* ``textcnn``: parallel 1-D convolutions with max-over-time pooling (Kim 2014);
* ``text_transformer``: 1-3 layers of the teacher's architecture; ``init_from_teacher:
  {layers: [0, 3, 5]}`` copies the embeddings and the chosen pretrained teacher layers
  (DistilBERT style, Sanh et al. 2019).

All take token ids (N, L) from the teacher's tokenizer; ``pad_id`` marks padding. The
recurrent and convolutional students can start from the teacher's (pretrained) token
embeddings (``init_embeddings_from_teacher``). ``teacher_path``, ``vocab_size`` and ``pad_id``
default to the text data's tokenizer (filled in by the experiment), else the default teacher.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from distill.errors import ConfigError
from distill.models import hf
from distill.models.registry import register_model
from distill.options import OptionalSize, Probability, Size, Sizes

PadId = Annotated[int | None, Field(ge=0, le=1 << 20)]
Layers = Annotated[int, Field(ge=1, le=64)]


def make_embedding(vocab_size: int | None, embedding_dim: int | None, pad_id: int | None,
                   teacher_path: str | None, from_teacher: bool, freeze: bool) -> tuple[nn.Embedding, int]:
    """An embedding table, optionally copied from the teacher's pretrained token embeddings."""
    if from_teacher:
        weight = hf.teacher_embeddings(teacher_path).clone()
        if embedding_dim not in (None, weight.shape[1]):
            raise ConfigError(f"init_embeddings_from_teacher needs embedding_dim {weight.shape[1]} "
                              f"(the teacher's), got {embedding_dim}")
        if vocab_size not in (None, weight.shape[0]):
            raise ConfigError(f"vocab_size {vocab_size} differs from the teacher's {weight.shape[0]}")
        _check_pad(pad_id, weight.shape[0])
        emb = nn.Embedding.from_pretrained(weight, freeze=freeze, padding_idx=pad_id)
    else:
        if vocab_size is None:
            vocab_size = hf.load_config(teacher_path).vocab_size
        _check_pad(pad_id, vocab_size)
        emb = nn.Embedding(vocab_size, embedding_dim or 300, padding_idx=pad_id)
        emb.weight.requires_grad_(not freeze)
    return emb, pad_id


def _check_pad(pad_id: int | None, vocab_size: int) -> None:
    # the vocabulary size is known only here (the teacher's tokenizer), so this cannot be declared
    if pad_id is not None and not 0 <= pad_id < vocab_size:
        raise ConfigError(f"pad_id {pad_id} is not a token id of the {vocab_size}-word vocabulary; "
                          f"leave pad_id unset (the tokenizer's) or give one below vocab_size")


def _pad_id(pad_id: int | None, teacher_path: str | None) -> int:
    if pad_id is not None:
        return pad_id
    value = hf.load_config(teacher_path).pad_token_id
    return 0 if value is None else value


class BiLSTM(nn.Module):
    def __init__(self, embedding: nn.Embedding, pad_id: int, num_classes: int, hidden: int, fc: int,
                 dropout: float):
        super().__init__()
        self.embedding, self.pad_id = embedding, pad_id
        self.lstm = nn.LSTM(embedding.embedding_dim, hidden, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Sequential(nn.Linear(2 * hidden, fc), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.out = nn.Linear(fc, num_classes)

    def forward(self, ids: Tensor) -> Tensor:
        ids = hf.trim(ids, self.pad_id)
        lengths = (ids != self.pad_id).sum(1).clamp_min(1)
        x = self.dropout(self.embedding(ids))
        if torch.onnx.is_in_onnx_export():
            h = _OnnxPackedLSTM.apply(x, lengths, *onnx_lstm_weights(self.lstm))
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            _, (h, _) = self.lstm(packed)
        final = torch.cat([h[0], h[1]], dim=-1)  # forward and backward final states
        return self.out(self.fc(final))


def _onnx_gates(weight: Tensor) -> Tensor:
    """PyTorch's LSTM gate blocks (input, forget, cell, output) in ONNX's order (input, output, forget, cell)."""
    i, f, g, o = weight.chunk(4, 0)
    return torch.cat([i, o, f, g], 0)


def onnx_lstm_weights(lstm: nn.LSTM) -> tuple[Tensor, Tensor, Tensor]:
    """W (2, 4H, D), R (2, 4H, H) and B (2, 8H) of a one-layer bidirectional LSTM, as ONNX's LSTM takes them."""
    directions = ("", "_reverse")
    w = torch.stack([_onnx_gates(getattr(lstm, f"weight_ih_l0{d}")) for d in directions])
    r = torch.stack([_onnx_gates(getattr(lstm, f"weight_hh_l0{d}")) for d in directions])
    b = torch.stack([torch.cat([_onnx_gates(getattr(lstm, f"bias_ih_l0{d}")),
                                _onnx_gates(getattr(lstm, f"bias_hh_l0{d}"))]) for d in directions])
    return w, r, b


class _OnnxPackedLSTM(torch.autograd.Function):
    """Final hidden states (2, N, H) of a one-layer bidirectional LSTM over right-padded sequences.

    PyTorch's packed sequences have no ONNX export. The ONNX LSTM operator does the same with its
    ``sequence_lens`` input (the forward direction stops at each sentence's last token, the backward
    one starts there), so the graph gets one LSTM node and keeps a dynamic sequence length.
    ``forward`` only runs while tracing; the export is verified against the packed PyTorch model.
    """

    @staticmethod
    def forward(ctx, x: Tensor, lengths: Tensor, w: Tensor, r: Tensor, b: Tensor) -> Tensor:
        hidden = r.shape[-1]
        states = []
        for direction in (0, 1):
            h = x.new_zeros(len(x), hidden)
            c = x.new_zeros(len(x), hidden)
            steps = range(x.shape[1]) if direction == 0 else reversed(range(x.shape[1]))
            for t in steps:
                gates = x[:, t] @ w[direction].T + h @ r[direction].T + b[direction, :4 * hidden] + b[direction, 4 * hidden:]
                i, o, f, g = gates.chunk(4, 1)
                c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h_new = torch.sigmoid(o) * torch.tanh(c_new)
                inside = (t < lengths)[:, None]
                h, c = torch.where(inside, h_new, h), torch.where(inside, c_new, c)
            states.append(h)
        return torch.stack(states)

    @staticmethod
    def symbolic(g, x, lengths, w, r, b):
        from torch.onnx import symbolic_helper

        seq_first = g.op("Transpose", x, perm_i=[1, 0, 2])
        lens = g.op("Cast", lengths, to_i=symbolic_helper.cast_pytorch_to_onnx["Int"])
        hidden = symbolic_helper._get_tensor_sizes(r)[-1]
        _, y_h, _ = g.op("LSTM", seq_first, w, r, b, lens, hidden_size_i=hidden, direction_s="bidirectional",
                         outputs=3)
        return y_h


class TextCNN(nn.Module):
    def __init__(self, embedding: nn.Embedding, pad_id: int, num_classes: int, kernel_sizes: Sequence[int],
                 filters: int, dropout: float):
        super().__init__()
        self.embedding, self.pad_id = embedding, pad_id
        self.kernel_sizes = tuple(kernel_sizes)
        self.convs = nn.ModuleList(nn.Conv1d(embedding.embedding_dim, filters, k) for k in self.kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(filters * len(self.kernel_sizes), num_classes)

    def forward(self, ids: Tensor) -> Tensor:
        # k - 1 padding columns after the batch's longest sentence, so that every sentence has all its
        # windows that start inside it, however much padding the batch had: the output of a sentence
        # does not depend on its batch, and the ONNX export (which keeps all the padding) matches.
        ids = F.pad(hf.trim(ids, self.pad_id), (0, max(self.kernel_sizes) - 1), value=self.pad_id)
        x = self.embedding(ids).transpose(1, 2)  # (N, D, L)
        valid = (ids != self.pad_id)
        pooled = []
        for conv in self.convs:
            y = torch.relu(conv(x))  # (N, F, L - k + 1)
            # Max over windows that start inside the sentence (keeps short sentences' padding out).
            starts = valid[:, : y.shape[-1]].clone()
            starts[:, 0] = True
            pooled.append(y.masked_fill(~starts[:, None, :], 0.0).amax(-1))
        return self.out(self.dropout(torch.cat(pooled, dim=-1)))


@register_model("bilstm")
def bilstm(input_shape: tuple[int, ...], num_classes: int, hidden: Size = 300, fc: Size = 400,
           dropout: Probability = 0.1, embedding_dim: OptionalSize = None, init_embeddings_from_teacher: bool = True,
           freeze_embeddings: bool = False, vocab_size: OptionalSize = None, pad_id: PadId = None,
           teacher_path: str | None = None) -> nn.Module:
    """BiLSTM sentence classifier (Tang et al. 2019's student)."""
    pad = _pad_id(pad_id, teacher_path)
    emb, _ = make_embedding(vocab_size, embedding_dim, pad, teacher_path, init_embeddings_from_teacher,
                            freeze_embeddings)
    return BiLSTM(emb, pad, num_classes, hidden, fc, dropout)


@register_model("textcnn")
def textcnn(input_shape: tuple[int, ...], num_classes: int, kernel_sizes: Sizes = (3, 4, 5),
            filters: Size = 100, dropout: Probability = 0.5, embedding_dim: OptionalSize = None,
            init_embeddings_from_teacher: bool = True, freeze_embeddings: bool = False,
            vocab_size: OptionalSize = None, pad_id: PadId = None, teacher_path: str | None = None) -> nn.Module:
    """Kim (2014) CNN: 1-D convolutions of widths ``kernel_sizes``, max over time, dropout, linear."""
    pad = _pad_id(pad_id, teacher_path)
    emb, _ = make_embedding(vocab_size, embedding_dim, pad, teacher_path, init_embeddings_from_teacher,
                            freeze_embeddings)
    return TextCNN(emb, pad, num_classes, kernel_sizes, filters, dropout)


def truncated_encoder(teacher: nn.Module, layers: Sequence[int]) -> nn.Module:
    """A copy of ``teacher`` keeping only ``layers`` (indices into its layer list), in that order."""
    total = teacher.config.num_hidden_layers
    bad = [i for i in layers if not 0 <= i < total]
    if not layers or bad:
        raise ConfigError(f"init_from_teacher layers must be indices in 0..{total - 1}, got {list(layers)}")
    student = copy.deepcopy(teacher)
    student.encoder.layer = nn.ModuleList(copy.deepcopy(teacher.encoder.layer[i]) for i in layers)
    student.config.num_hidden_layers = len(layers)
    for new_index, layer in enumerate(student.encoder.layer):  # keep cache indices consistent
        if hasattr(layer.attention.self, "layer_idx"):
            layer.attention.self.layer_idx = new_index
    return student


@register_model("text_transformer")
def text_transformer(input_shape: tuple[int, ...], num_classes: int, layers: Layers = 2,
                     init_from_teacher: dict[str, list[int]] | None = None, hidden_size: OptionalSize = None,
                     heads: OptionalSize = None, intermediate_size: OptionalSize = None, dropout: Probability = 0.1,
                     freeze_embeddings: bool = False, teacher_path: str | None = None) -> nn.Module:
    """A 1-3 layer transformer of the teacher's kind; ``init_from_teacher: {layers: [...]}`` copies layers."""
    if init_from_teacher is not None:
        unknown = set(init_from_teacher) - {"layers"}
        if unknown or "layers" not in init_from_teacher:
            raise ConfigError(f"init_from_teacher takes {{layers: [i, j, ...]}}, got {init_from_teacher}")
        if hidden_size or heads or intermediate_size:
            raise ConfigError("init_from_teacher copies the teacher's layers: leave hidden_size, heads and "
                              "intermediate_size unset")
        encoder = truncated_encoder(hf.load_encoder(teacher_path), list(init_from_teacher["layers"]))
    else:
        config = copy.deepcopy(hf.load_config(teacher_path))
        config.num_hidden_layers = layers
        config.hidden_size = hidden_size or config.hidden_size
        config.num_attention_heads = heads or config.num_attention_heads
        config.intermediate_size = intermediate_size or 4 * config.hidden_size
        encoder = hf.encoder_from_config(config)
    if freeze_embeddings:
        for p in encoder.embeddings.parameters():
            p.requires_grad_(False)
    pad_id = encoder.config.pad_token_id if encoder.config.pad_token_id is not None else 0
    return hf.HFClassifier(encoder, num_classes, pad_id, dropout)
