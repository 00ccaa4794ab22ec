"""Shared helpers for the text tests: a tiny local Hugging Face model directory and small files."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

transformers = pytest.importorskip("transformers", reason="text tests need transformers (pip install -e '.[text]')")

WORDS = ("a the movie film is was good bad great awful fun boring not very and but it story acting "
         "what who where when how many city name of in funny dull").split()
SENTENCES = [
    (1, "a good movie"), (0, "a bad film"), (1, "the acting was great and fun"), (0, "boring and dull"),
    (1, "very funny story"), (0, "it was awful"), (1, "not bad at all"), (0, "the story is not good"),
]


def tiny_model_dir(root: Path, layers: int = 4, hidden: int = 32, heads: int = 4, seed: int = 0) -> Path:
    """A randomly initialised BERT with a word-level vocabulary, saved like any local HF model."""
    import torch

    root.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (root / "vocab.txt").write_text("\n".join(vocab) + "\n")
    if "vocab" in inspect.signature(transformers.BertTokenizerFast.__init__).parameters:
        # transformers >= 5 takes the vocabulary itself and silently ignores vocab_file=, which left
        # a 5-token vocabulary (every word [UNK]).
        tokenizer = transformers.BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    else:
        tokenizer = transformers.BertTokenizerFast(vocab_file=str(root / "vocab.txt"), do_lower_case=True)
    assert len(tokenizer) == len(vocab), "the tiny tokenizer lost its vocabulary"
    tokenizer.save_pretrained(str(root))
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers,
                                     num_attention_heads=heads, intermediate_size=2 * hidden,
                                     max_position_embeddings=64, pad_token_id=0)
    torch.manual_seed(seed)
    transformers.BertModel(config).save_pretrained(str(root))
    return root


def write_lines(path: Path, rows) -> Path:
    path.write_text("".join(f"{label} {text}\n" for label, text in rows))
    return path
