"""Shared helpers for the text tests: a tiny local Hugging Face model directory and small files."""

from __future__ import annotations

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
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(root / "vocab.txt"), do_lower_case=True)
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
