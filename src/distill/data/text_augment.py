"""Transfer-set augmentation for text distillation (Tang et al. 2019, section 3.3).

Each augmented sentence is built word by word from a training sentence:

* masking: with probability ``mask_prob`` a word becomes the mask token (``[MASK]``);
* swapping: with probability ``swap_prob`` a word becomes another word. Tang et al. swap in a
  word with the same part-of-speech tag; this toolkit has no POS tagger, so the replacement is
  drawn from the training vocabulary with its unigram frequencies (a simplification);
* n-gram sampling: with probability ``ngram_prob`` only a random n-gram (n uniform in
  1..``max_ngram``) of the result is kept.

The augmented sentences have no labels: they are marked with target -1 and get only the
teacher's soft targets (the trainer's label loss skips them, for every method).
"""

from __future__ import annotations

import random
from collections import Counter

UNLABELLED = -1


class TransferSet:
    def __init__(self, mask_prob: float = 0.1, swap_prob: float = 0.1, ngram_prob: float = 0.25,
                 max_ngram: int = 5, mask_token: str = "[MASK]", seed: int = 0):
        for name, p in (("mask_prob", mask_prob), ("swap_prob", swap_prob), ("ngram_prob", ngram_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {p}")
        if mask_prob + swap_prob > 1.0:
            raise ValueError(f"mask_prob + swap_prob must be <= 1, got {mask_prob + swap_prob}")
        if max_ngram < 1:
            raise ValueError(f"max_ngram must be >= 1, got {max_ngram}")
        self.mask_prob, self.swap_prob, self.ngram_prob = mask_prob, swap_prob, ngram_prob
        self.max_ngram, self.mask_token = max_ngram, mask_token
        self.rng = random.Random(seed)
        self.vocabulary: list[str] = []
        self.weights: list[int] = []

    def fit(self, sentences: list[str]) -> TransferSet:
        """Learn the swap vocabulary (words and their counts) from the training sentences."""
        counts = Counter(word for s in sentences for word in s.split())
        self.vocabulary, self.weights = list(counts), list(counts.values())
        return self

    def mask_and_swap(self, words: list[str]) -> list[str]:
        out = []
        for word in words:
            u = self.rng.random()
            if u < self.mask_prob:
                out.append(self.mask_token)
            elif u < self.mask_prob + self.swap_prob and self.vocabulary:
                out.append(self.rng.choices(self.vocabulary, self.weights)[0])
            else:
                out.append(word)
        return out

    def ngram(self, words: list[str]) -> list[str]:
        n = min(len(words), self.rng.randint(1, self.max_ngram))
        start = self.rng.randint(0, len(words) - n)
        return words[start : start + n]

    def augment(self, sentence: str) -> str:
        words = self.mask_and_swap(sentence.split())
        if words and self.rng.random() < self.ngram_prob:
            words = self.ngram(words)
        return " ".join(words)

    def generate(self, sentences: list[str], multiplier: int) -> list[str]:
        """``multiplier`` augmented variants of every sentence, skipping exact copies of the original."""
        out = []
        for sentence in sentences:
            for _ in range(multiplier):
                for _attempt in range(10):
                    candidate = self.augment(sentence)
                    if candidate != sentence and candidate:
                        break
                out.append(candidate)
        return out
