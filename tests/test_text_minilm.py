"""MiniLM self-attention relation transfer: the loss against an independent transcription of the
reference formula, the hooks it asks for on real BERT-style models, and a short training run."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from distill.errors import ConfigError
from distill.knowledge.taps import Taps
from distill.methods.base import Batch, Outputs, build_method
from distill.methods.minilm import MiniLM
from distill.models.registry import build_model

from .text_helpers import tiny_model_dir


def reference_relation_loss(s, t, attention_mask, num_relation_heads, s_heads, t_heads):
    """Transcribed from the reference (PaddleNLP `calc_minilm_loss` and its MiniLMv2 training loop):
    q/k/v come per attention head, (bs, heads, L, d); they are regrouped into relation heads, related
    by scaled dot products, padding keys get -1e9, and KLDivLoss(sum) is divided by R x L x bs."""
    def per_head(x, heads):  # (bs, L, H) -> (bs, heads, L, H/heads), as the attention layer holds them
        bs, length, width = x.shape
        return x.view(bs, length, heads, width // heads).permute(0, 2, 1, 3)

    s, t = per_head(s, s_heads), per_head(t, t_heads)
    loss_fct = nn.KLDivLoss(reduction="sum", log_target=False)
    mask = ((1 - attention_mask.float()) * -1e9).unsqueeze(1).unsqueeze(1)
    if num_relation_heads != s.shape[1]:
        s = s.permute(0, 2, 1, 3)
        s = s.reshape(s.shape[0], s.shape[1], num_relation_heads, -1).permute(0, 2, 1, 3)
    if num_relation_heads != t.shape[1]:
        t = t.permute(0, 2, 1, 3)
        t = t.reshape(t.shape[0], t.shape[1], num_relation_heads, -1).permute(0, 2, 1, 3)
    s_r = torch.matmul(s, s.transpose(-1, -2)) / math.sqrt(s.shape[3]) + mask
    t_r = torch.matmul(t, t.transpose(-1, -2)) / math.sqrt(t.shape[3]) + mask
    loss = loss_fct(torch.log_softmax(s_r, dim=-1), torch.softmax(t_r, dim=-1))
    return loss / (num_relation_heads * s_r.shape[2] * s_r.shape[0])


def test_relation_loss_matches_the_reference_formula():
    g = torch.Generator().manual_seed(0)
    ids = torch.tensor([[2, 7, 8, 9, 3, 0], [2, 5, 3, 0, 0, 0], [2, 6, 6, 6, 6, 3]])
    paths = {r: f"encoder.encoder.layer.{k}.attention.self.{r}" for k in (0,) for r in ("query", "key", "value")}
    student_x = {r: torch.randn(3, 6, 24, generator=g) for r in paths}  # student width 24, 2 heads
    teacher_x = {r: torch.randn(3, 6, 48, generator=g) for r in paths}  # teacher width 48, 4 heads
    s_layer, t_layer = 1, 3
    student = Outputs(torch.randn(3, 2), {f"encoder.encoder.layer.{s_layer - 1}.attention.self.{r}": x
                                          for r, x in student_x.items()})
    teacher = Outputs(torch.randn(3, 2), {f"encoder.encoder.layer.{t_layer - 1}.attention.self.{r}": x
                                          for r, x in teacher_x.items()})
    method = MiniLM(layers=[[s_layer, t_layer]], relation_heads=6)
    losses = method.losses(student, teacher, Batch(ids, torch.tensor([0, 1, -1])))
    assert set(losses) == {"relation"}  # distillation terms only: the labels are the trainer's
    mask = ids != 0
    expected = sum(reference_relation_loss(student_x[r], teacher_x[r], mask, 6, 2, 4) for r in paths)
    assert torch.allclose(losses["relation"], expected, rtol=1e-5)

    same = MiniLM(layers=[[1, 1]], relation_heads=4).losses(teacher_as_student := Outputs(
        teacher.logits, {k.replace("layer.2", "layer.0"): v for k, v in teacher.features.items()}),
        teacher_as_student, Batch(ids, torch.zeros(3, dtype=torch.long)))
    assert same["relation"].abs() < 1e-6  # identical relations cost nothing


def test_options_are_checked():
    assert build_method("minilm", {"layers": [[1, 4]], "relation_heads": 4}).pairs == [(1, 4)]
    with pytest.raises(ConfigError, match="count from 1"):
        build_method("minilm", {"layers": [[0, 4]]})
    with pytest.raises(ConfigError, match="pairs"):
        build_method("minilm", {"layers": [3]})
    with pytest.raises(ConfigError, match="relations are some of query, key, value"):
        build_method("minilm", {"relations": ["attention"]})
    method = MiniLM(layers=[[1, 1]], relation_heads=5)
    x = torch.randn(1, 3, 8)
    with pytest.raises(ConfigError, match="relation_heads \\(5\\) must divide the attention width 8"):
        method.losses(Outputs(torch.randn(1, 2), {f"encoder.encoder.layer.0.attention.self.{r}": x
                                                   for r in ("query", "key", "value")}),
                      Outputs(torch.randn(1, 2), {f"encoder.encoder.layer.0.attention.self.{r}": x
                                                   for r in ("query", "key", "value")}),
                      Batch(torch.ones(1, 3, dtype=torch.long), torch.zeros(1, dtype=torch.long)))


def test_hooks_capture_queries_keys_values_of_real_models(tmp_path):
    model_dir = str(tiny_model_dir(tmp_path / "bert", layers=3, hidden=32, heads=4))
    teacher = build_model("hf_classifier", (8,), 2, path=model_dir).eval()
    student = build_model("text_transformer", (8,), 2, teacher_path=model_dir,
                          init_from_teacher={"layers": [2]}).eval()  # a copy of the teacher's layer 3
    method = MiniLM(layers=[[1, 3]], relation_heads=4)
    needs = method.needs()
    ids = torch.tensor([[2, 7, 8, 9, 3, 0, 0, 0], [2, 5, 3, 0, 0, 0, 0, 0]])
    with Taps(student, needs.student_modules, "student") as s_taps, Taps(teacher, needs.teacher_modules,
                                                                          "teacher") as t_taps:
        s_logits, t_logits = student(ids), teacher(ids)
        s_out, t_out = Outputs(s_logits, s_taps.pop()), Outputs(t_logits, t_taps.pop())
    assert s_out.features["encoder.encoder.layer.0.attention.self.value"].shape == (2, 5, 32)  # trimmed to 5
    loss = method.losses(s_out, t_out, Batch(ids, torch.tensor([0, 1])))["relation"]
    assert loss > 0 and torch.isfinite(loss)  # same weights, different inputs to the layer (2 layers fewer)
    loss.backward()
    assert student.encoder.encoder.layer[0].attention.self.query.weight.grad is not None


def test_a_run_distils_relations_with_the_layer_mapping_from_config(tmp_path):
    import json
    import random

    import yaml

    from distill.cli import main

    model_dir = tiny_model_dir(tmp_path / "bert", layers=2)
    rng = random.Random(0)
    words = "a the movie film is was very and it story acting".split()
    for split, n in (("train", 96), ("val", 32), ("test", 32)):
        rows = []
        for _ in range(n):
            label = rng.randrange(2)
            sentence = [rng.choice(words) for _ in range(rng.randint(2, 6))] + [("good" if label else "bad")]
            rows.append(f"{label} {' '.join(sentence)}\n")
        (tmp_path / f"{split}.txt").write_text("".join(rows))
    cfg = {
        "name": "tiny-minilm",
        "data": {"dataset": "text_files", "text": {"root": str(tmp_path), "train": "train.txt", "val": "val.txt",
                                                   "test": "test.txt", "max_length": 10}},
        "teacher": {"model": {"name": "hf_classifier", "path": str(model_dir)},
                    "train": {"epochs": 1, "batch_size": 32, "optimizer": "adamw", "lr": 3e-3}},
        "student": {"model": {"name": "text_transformer", "init_from_teacher": {"layers": [1]}},
                    "train": {"epochs": 1, "batch_size": 32, "optimizer": "adamw", "lr": 3e-3}},
        "distill": {"methods": [{"method": "kd"},
                                {"method": "minilm", "weight": 2.0,
                                 "options": {"layers": [[1, 2]], "relation_heads": 4}}]},
        "baseline": False, "evaluate": {"latency": False}, "runtime": {"device": "cpu", "threads": 1},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["run", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    student = [x for x in lines if x.get("model") == "student"]
    assert student[-1]["terms"]["minilm.relation"] > 0  # the relation term was computed and logged
