"""Language-model metrics: ROUGE-L on known examples, token metrics against a direct computation."""

from __future__ import annotations

import math

import pytest
import torch

from distill.evaluate.lm_metrics import (
    lcs_length,
    lm_metrics,
    lm_validation,
    memory,
    prompt_and_reference,
    rouge_l,
)
from tests.lm_helpers import tiny_llama_dir


@pytest.mark.parametrize("candidate, reference, expected", [
    # Lin 2004, section 3: S1 "police killed the gunman"; S2 shares 3 words in order, S3 only 2
    ("police kill the gunman", "police killed the gunman", 0.75),
    ("the gunman kill police", "police killed the gunman", 0.5),
    ("the cat was on the mat", "the cat sat on the mat", 5 / 6),
    ("a b c", "a b c", 1.0),
    ("x y", "a b c", 0.0),
    ("", "a b", 0.0),
    ("A B", "a b c d", 2 * (1.0 * 0.5) / 1.5),  # P = 2/2, R = 2/4, lowercased
])
def test_rouge_l_known_values(candidate, reference, expected):
    assert rouge_l(candidate, reference) == pytest.approx(expected)


def test_lcs_is_a_subsequence_not_a_substring():
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4  # CLRS's example (BCBA)
    assert lcs_length([], [1]) == 0


def test_token_metrics_match_a_direct_computation(tmp_path):
    from distill.models.causal_lm import causal_lm

    path = str(tiny_llama_dir(tmp_path, "t", layers=2))
    teacher = causal_lm(path=path).eval()
    student = causal_lm(teacher_path=path, init_from_teacher={"layers": [0]}).eval()
    torch.manual_seed(0)
    ids = torch.randint(6, 30, (5, 9))
    targets = torch.full_like(ids, -100)
    for i in range(5):
        start = 2 + i % 3
        targets[i, start : 8 - i % 2] = ids[i, start + 1 : 9 - i % 2]
    out = lm_metrics({"teacher": teacher, "student": student}, ids, targets, batch_size=2)
    keep = targets != -100
    with torch.no_grad():
        s_logp = student(ids).log_softmax(-1)[keep]
        t_logp = teacher(ids).log_softmax(-1)[keep]
    labels = targets[keep]
    ce = -s_logp.gather(1, labels[:, None]).mean()
    kl = (t_logp.exp() * (t_logp - s_logp)).sum(-1).mean()
    agree = (s_logp.argmax(-1) == t_logp.argmax(-1)).float().mean()
    s = out["student"]
    assert s["cross_entropy"] == pytest.approx(float(ce), rel=1e-5)
    assert s["perplexity"] == pytest.approx(math.exp(float(ce)), rel=1e-5)
    assert s["kl_to_teacher"] == pytest.approx(float(kl), rel=1e-5)
    assert s["top1_agreement"] == pytest.approx(float(agree))
    assert s["accuracy"] == pytest.approx(float((s_logp.argmax(-1) == labels).float().mean()))
    assert s["tokens"] == int(keep.sum())
    val = lm_validation(student, ids, targets, batch_size=3)
    assert val["val_loss"] == pytest.approx(float(ce), rel=1e-5)
    assert memory(student)["params"] == sum(p.numel() for p in student.parameters())


def test_prompt_and_reference_split_at_the_first_loss_token():
    ids = torch.arange(10)
    targets = torch.full((10,), -100)
    targets[3:7] = ids[4:8]
    prompt, reference = prompt_and_reference(ids, targets)
    assert prompt.tolist() == [0, 1, 2, 3] and reference.tolist() == [4, 5, 6, 7]
