"""Transfer-set augmentation (masking, n-grams, swaps) and the KD hard loss skipping unlabelled rows."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from distill.data.text_augment import UNLABELLED, TransferSet
from distill.methods.base import Batch, Outputs, kl_with_temperature
from distill.methods.kd import KD
from distill.train.label_loss import label_loss

SENTENCES = ["the movie was a great fun ride", "a dull and boring film", "not bad at all"]


def test_mask_probability_one_masks_every_word():
    aug = TransferSet(mask_prob=1.0, swap_prob=0.0, ngram_prob=0.0).fit(SENTENCES)
    assert aug.augment("a dull film") == "[MASK] [MASK] [MASK]"


def test_nothing_enabled_returns_the_sentence():
    aug = TransferSet(mask_prob=0.0, swap_prob=0.0, ngram_prob=0.0).fit(SENTENCES)
    assert aug.augment(SENTENCES[0]) == SENTENCES[0]


def test_swaps_draw_from_the_training_vocabulary():
    aug = TransferSet(mask_prob=0.0, swap_prob=1.0, ngram_prob=0.0, seed=1).fit(SENTENCES)
    vocabulary = {w for s in SENTENCES for w in s.split()}
    outputs = [aug.augment("zzz yyy xxx www") for _ in range(20)]
    words = [w for o in outputs for w in o.split()]
    assert len(words) == 80 and set(words) <= vocabulary
    assert len(set(words)) > 3  # really random, not one fixed word


def test_ngram_sampling_keeps_a_contiguous_piece():
    aug = TransferSet(mask_prob=0.0, swap_prob=0.0, ngram_prob=1.0, max_ngram=3, seed=2).fit(SENTENCES)
    sentence = "w0 w1 w2 w3 w4 w5 w6 w7"
    lengths = set()
    for _ in range(50):
        out = aug.augment(sentence)
        assert out in sentence  # contiguous: a substring of the original word sequence
        lengths.add(len(out.split()))
    assert lengths == {1, 2, 3}


def test_generate_is_seeded_and_sized():
    make = lambda seed: TransferSet(0.2, 0.2, 0.5, seed=seed).fit(SENTENCES).generate(SENTENCES, 4)  # noqa: E731
    first, again, other = make(0), make(0), make(1)
    assert len(first) == 12 and first == again and first != other
    assert all(s not in SENTENCES for s in first)  # each variant differs from its source sentence


def test_invalid_probabilities_are_rejected():
    with pytest.raises(ValueError, match="mask_prob"):
        TransferSet(mask_prob=1.5)
    with pytest.raises(ValueError, match="mask_prob \\+ swap_prob"):
        TransferSet(mask_prob=0.6, swap_prob=0.6)


def test_the_label_loss_ignores_unlabelled_rows_and_kd_distils_them():
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 3), torch.randn(6, 3)
    targets = torch.tensor([0, UNLABELLED, 2, UNLABELLED, 1, 1])
    losses = KD(temperature=2.0, alpha=0.5).losses(Outputs(student), Outputs(teacher), Batch(student, targets))
    keep = targets >= 0
    assert torch.allclose(label_loss(student, targets), F.cross_entropy(student[keep], targets[keep]))
    assert torch.allclose(losses["soft"], 0.5 * kl_with_temperature(student, teacher, 2.0))
    assert float(label_loss(student, torch.full((6,), -1))) == 0.0
