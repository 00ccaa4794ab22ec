"""Training modes: the DML loss against an independent formula, gradients into every peer, and each
mode end to end on a small Fashion-MNIST slice (checkpoints and summary entries)."""

import json

import numpy as np
import pytest
import torch

from distill.config import load_config
from distill.errors import ConfigError
from distill.methods import Batch, Outputs, build_method
from distill.models import build_model
from distill.models.cohort import Cohort
from distill.pipeline.experiment import run_experiment
from distill.train.checkpoint import load_tensors
from distill.train.label_loss import label_loss

from .methods_support import fixed, np_cross_entropy, np_kl, np_softmax

# MLPs keep each run to seconds; the teacher slot is the wider one except in reverse mode.
BASE = {
    "name": "modes",
    "data": {"train_subset": 256, "val_size": 128, "test_subset": 256, "augment": None},
    "teacher": {"model": {"name": "mlp", "hidden": [32]}, "train": {"epochs": 2, "batch_size": 64}},
    "student": {"model": {"name": "mlp", "hidden": [8]}, "train": {"epochs": 2, "batch_size": 64}},
    "evaluate": {"latency": False},
}


def run(tmp_path, distill: dict, callbacks=None, **top):
    cfg = load_config(data={**BASE, **top, "distill": distill})
    out = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"  # a fresh folder per run: a used one is refused
    summary = run_experiment(cfg, out, quiet=True, callbacks=callbacks)
    assert json.loads((out / "summary.json").read_text())["models"].keys() == summary["models"].keys()
    return summary, out / "checkpoints"


def test_dml_loss_matches_an_independent_formula():
    logits = torch.stack([fixed(6, 4, seed=s) * 2 for s in (1, 2, 3)], dim=1)  # 3 peers, (N, P, C)
    targets = torch.tensor([0, 1, 2, 3, 0, 1])
    T, alpha, beta = 2.0, 0.7, 1.3
    losses = build_method("dml", {"temperature": T, "alpha": alpha, "beta": beta, "reduction": "mean"}).losses(
        Outputs(logits), None, Batch(torch.zeros(6, 1), targets))
    z = logits.double().numpy()
    for i in range(3):
        kls = [np.mean([np_kl(np_softmax(z[n, j] / T), np_softmax(z[n, i] / T)) for n in range(6)]) * T**2
               for j in range(3) if j != i]
        assert losses[f"peer{i}.mutual"].item() == pytest.approx(alpha * np.mean(kls), rel=1e-5)
    # The label term is the trainer's: every peer's cross-entropy, summed, with the old beta as its weight.
    method = build_method("dml", {"temperature": T, "alpha": alpha, "beta": beta})
    assert method.label_weight == beta and not any("hard" in k for k in losses)
    expected = sum(np_cross_entropy(z[:, i], targets.numpy()) for i in range(3))
    assert label_loss(logits, targets).item() == pytest.approx(expected, rel=1e-5)


def test_gradients_reach_every_peer_and_each_peer_only_from_its_own_loss():
    torch.manual_seed(0)
    peers = [build_model("mlp", (1, 8, 8), 4, hidden=[h]) for h in (16, 8, 4)]
    cohort = Cohort(peers)
    x, y = torch.randn(10, 1, 8, 8), torch.arange(10) % 4
    losses = build_method("dml").losses(Outputs(cohort(x)), None, Batch(x, y))
    sum(losses.values()).backward()
    for peer in peers:
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in peer.parameters())
    # The other peers are detached targets: peer 0's mutual term alone moves no other peer.
    cohort.zero_grad()
    losses = build_method("dml").losses(Outputs(cohort(x)), None, Batch(x, y))
    losses["peer0.mutual"].backward()
    assert peers[0][1].weight.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for peer in peers[1:] for p in peer.parameters())


def test_online_trains_both_peers_and_saves_each(tmp_path, fashion_mnist_root):
    summary, ckpt = run(tmp_path, {"mode": "online", "method": "dml", "options": {"temperature": 2.0}})
    assert summary["mode"] == "online" and set(summary["models"]) == {"baseline", "peer_teacher", "student"}
    for role, hidden in (("peer_teacher", 32), ("student", 8)):
        tensors, meta = load_tensors(ckpt / f"{role}-best.safetensors")
        assert tensors["1.weight"].shape == (hidden, 784)
        assert meta["model"]["options"]["hidden"] == [hidden]  # enough for `distill evaluate` to rebuild it
    records = [json.loads(x) for x in (ckpt.parent / "metrics.jsonl").read_text().splitlines()]
    cohort = [r for r in records if r["model"] == "cohort"]
    assert len(cohort) == 2 and {"val_accuracy_peer0", "val_accuracy_peer1", "peer0.mutual"} <= \
        set(cohort[0]) | set(cohort[0]["terms"])
    assert cohort[0]["val_accuracy"] == cohort[0]["val_accuracy_peer1"]  # the student selects the checkpoint


def test_online_with_three_peers_trains_and_saves_every_peer(tmp_path, fashion_mnist_root):
    extra = {"name": "mlp", "hidden": [16]}
    summary, ckpt = run(tmp_path, {"mode": "online", "method": "dml", "peers": [extra]})
    assert set(summary["models"]) == {"baseline", "peer_teacher", "peer1", "student"}
    for role, hidden in (("peer_teacher", 32), ("peer1", 16), ("student", 8)):
        tensors, _ = load_tensors(ckpt / f"{role}-best.safetensors")
        assert tensors["1.weight"].shape == (hidden, 784)
    records = [json.loads(x) for x in (ckpt.parent / "metrics.jsonl").read_text().splitlines()]
    cohort = [r for r in records if r["model"] == "cohort"]
    assert {"peer2.mutual", "val_accuracy_peer2"} <= set(cohort[0]) | set(cohort[0]["terms"])
    assert cohort[0]["val_accuracy"] == cohort[0]["val_accuracy_peer2"]  # the student is the last peer


def test_peers_without_online_mode_is_a_config_error():
    with pytest.raises(ConfigError, match="distill.mode: online"):
        load_config(data={**BASE, "distill": {"method": "kd", "peers": [{"name": "mlp"}]}})


def test_online_needs_the_dml_method_and_an_untrained_peer(tmp_path, fashion_mnist_root):
    with pytest.raises(ConfigError, match="method 'dml'"):
        run(tmp_path, {"mode": "online", "method": "kd"})
    with pytest.raises(ConfigError, match="remove teacher.checkpoint"):
        run(tmp_path, {"mode": "online", "method": "dml"}, teacher={**BASE["teacher"], "checkpoint": "t.safetensors"})


def test_born_again_generation_k_teaches_generation_k_plus_1(tmp_path, fashion_mnist_root):
    seen = {}

    def remember_teacher(trainer, record):
        if trainer.teacher is not None and record["epoch"] == 1:
            teacher = getattr(trainer.teacher, "live", trainer.teacher)  # cached or live
            seen[trainer.name] = {k: v.clone() for k, v in teacher.model.state_dict().items()}

    summary, ckpt = run(tmp_path, {"mode": "born_again", "generations": 2}, callbacks=[remember_teacher])
    assert list(summary["models"]) == ["gen0", "gen1", "gen2"]
    assert set(seen) == {"gen1", "gen2"}
    for k in (0, 1):
        weights, _ = load_tensors(ckpt / f"gen{k}-best.safetensors")
        assert all(torch.equal(weights[n], seen[f"gen{k + 1}"][n]) for n in weights)
    gen1, _ = load_tensors(ckpt / "gen1-best.safetensors")
    gen2, _ = load_tensors(ckpt / "gen2-best.safetensors")
    assert not torch.equal(gen1["1.weight"], gen2["1.weight"])


def test_takd_chains_teacher_assistant_student(tmp_path, fashion_mnist_root):
    assistant = {"model": {"name": "mlp", "hidden": [16]}, "train": {"epochs": 1, "batch_size": 64}}
    summary, ckpt = run(tmp_path, {"mode": "takd", "assistant": assistant})
    assert set(summary["models"]) == {"teacher", "baseline", "assistant", "student"}
    assert summary["models"]["assistant"]["params"] > summary["models"]["student"]["params"]
    for role in summary["models"]:
        assert (ckpt / f"{role}-best.safetensors").is_file()
    assert "gap_recovered" in summary


def test_reverse_lets_a_small_teacher_teach_a_larger_student(tmp_path, fashion_mnist_root):
    small, large = {"name": "mlp", "hidden": [8]}, {"name": "mlp", "hidden": [32]}
    summary, _ = run(tmp_path, {"mode": "reverse"}, teacher={**BASE["teacher"], "model": small},
                     student={**BASE["student"], "model": large})
    models = summary["models"]
    assert models["teacher"]["params"] < models["student"]["params"] and summary["compression"] < 1
    with pytest.raises(ConfigError, match="teacher slot holds the small model"):
        run(tmp_path, {"mode": "reverse"})
