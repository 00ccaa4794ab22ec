"""Tiny causal LMs for the language-model tests: a random 2-layer llama and a word-level tokenizer, built here.

No model file is needed; everything is a few kilobytes and builds in well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from distill.config.schema import ExperimentConfig

SENTENCES = [
    "the film is good and the actors are great",
    "the film is bad and the plot is boring",
    "is this review positive or negative",
    "positive negative the movie was a fine story",
    "a dull and tired story with no surprises",
    "what a wonderful and moving film",
]
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <eos> {% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|> {% endif %}")


def tiny_tokenizer(extra_words: tuple[str, ...] = ()):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for s in SENTENCES for w in s.split()} | set(extra_words))
    specials = ["<pad>", "<unk>", "<eos>", "<|user|>", "<|assistant|>", "<|system|>"]
    vocab = {w: i for i, w in enumerate(specials + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    from tokenizers import decoders

    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_llama_dir(tmp: Path, name: str = "tiny", layers: int = 2, hidden: int = 32, seed: int = 0,
                   extra_words: tuple[str, ...] = ()) -> Path:
    """A random llama (hidden 32, 4 heads, 2 KV heads) with the tiny tokenizer, saved as a HF directory."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer(extra_words)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=128, pad_token_id=0, eos_token_id=2, bos_token_id=None,
                         tie_word_embeddings=True, initializer_range=0.3)  # peaked, unlike a 0.02 init
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    out = Path(tmp) / name
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def write_pairs(path: Path, n: int = 12) -> Path:
    rows = []
    for i in range(n):
        sentence = SENTENCES[i % len(SENTENCES)]
        label = "positive" if i % 2 == 0 else "negative"
        rows.append({"prompt": f"is this review positive or negative {sentence}", "response": f"{label} {sentence}"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def lm_config(tmp_path, **over) -> ExperimentConfig:
    teacher = tiny_llama_dir(tmp_path, "teacher", layers=2)
    train = write_pairs(tmp_path / "train.jsonl", 16)
    test = write_pairs(tmp_path / "test.jsonl", 4)
    raw = {
        "name": "lm", "task": "causal_lm",
        "data": {"dataset": "lm_jsonl", "lm": {"train": str(train), "val": str(test), "test": str(test)}},
        "teacher": {"model": {"name": "causal_lm", "path": str(teacher)}},
        "student": {"model": {"name": "causal_lm", "init_from_teacher": {"layers": [1]}},
                    "train": {"max_steps": 3, "batch_size": 4, "lr": 1e-3}},
        "distill": {"method": "forward_kl"},
        "evaluate": {"generations": 2, "max_new_tokens": 4, "latency": False},
        "runtime": {"threads": 1},
    }
    for key, value in over.items():
        raw[key] = value
    return ExperimentConfig.model_validate(raw)
