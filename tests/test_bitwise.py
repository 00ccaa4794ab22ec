"""A short offline run gives bitwise the weights of the same training arithmetic written out in plain torch.

The reference is computed in the test, on the same machine and kernels, so the test holds on
every CPU (issue 22: hashes recorded on one CPU differed on another). It guards what the recorded
hashes did (issue 16): a restructure of the pipeline, the trainer or the methods must not change
the arithmetic. Only the data stream (the shuffled, augmented batches: the data layer, tested on
its own) and the loading of Fashion-MNIST are the pipeline's; the models, their initialisation,
the losses, the learning-rate schedule, the optimizer, the frozen teacher, the per-epoch seeds and
the choice of the best epoch are written out here. An intended change of the arithmetic (another
summation order of the losses, a new default) fails this test: change the reference alike and say
why in the commit.
"""

import math

import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional as F

from distill.config import load_config
from distill.data.batches import InMemoryBatches
from distill.data.bundle import load_data
from distill.pipeline.experiment import run_experiment

from .tiny_run import ROOT

SEED = 0
OVERRIDES = [
    "data.train_subset=256", "data.val_size=128", "data.test_subset=128", f"seed={SEED}",
    "teacher.model={name: mlp, hidden: [32]}", "student.model={name: mlp, hidden: [16]}",
    "teacher.train.epochs=2", "teacher.train.warmup_epochs=0.5", "student.train.epochs=2",
    "evaluate.latency=false", "runtime.threads=1", "cache.mode=off",
    "distill.method=kd", "distill.options={temperature: 4.0, alpha: 0.7}", "distill.label_weight=0.3",
]


def mlp(width_in: int, hidden: int, classes: int) -> nn.Module:
    torch.manual_seed(SEED)  # baseline and distilled student start from the same weights
    return nn.Sequential(nn.Flatten(), nn.Linear(width_in, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def lr_at(cfg, step: int, steps_per_epoch: int) -> float:
    """Linear warm-up over warmup_epochs, then cosine to 0 over the remaining steps."""
    total, warmup = cfg.epochs * steps_per_epoch, int(round(cfg.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def accuracy(model: nn.Module, inputs, targets) -> float:
    model.eval()
    with torch.no_grad():
        right = (model(inputs).argmax(1) == targets).float().mean().item()
    model.train()
    return right


def train(model, cfg, data, loss_fn):
    """SGD (Nesterov momentum, weight decay) with the per-step lr; the weights of the best validation epoch."""
    batches = InMemoryBatches(data.train.inputs, data.train.targets, cfg.batch_size, shuffle=True,
                              augment=data.augment, seed=SEED)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                                weight_decay=cfg.weight_decay)
    best, best_state, step = -1.0, None, 0
    for epoch in range(cfg.epochs):
        torch.manual_seed(SEED * 1_000_003 + epoch)
        for batch in batches.epoch(epoch):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(cfg, step, len(batches))
            logits = model(batch.inputs)
            loss = loss_fn(logits, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
        score = accuracy(model, data.val.inputs, data.val.targets)
        if score > best:
            best, best_state = score, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model


def reference_run(cfg) -> dict[str, nn.Module]:
    data = load_data(cfg.data)
    width, classes = math.prod(data.input_shape), data.num_classes
    teacher = train(mlp(width, 32, classes), cfg.teacher.train, data,
                    lambda logits, batch: F.cross_entropy(logits, batch.targets))
    teacher.eval().requires_grad_(False)
    baseline = train(mlp(width, 16, classes), cfg.student.train, data,
                     lambda logits, batch: F.cross_entropy(logits, batch.targets))
    temperature, alpha, label_weight = 4.0, 0.7, 0.3

    def kd(logits, batch):
        with torch.no_grad():
            teacher_logits = teacher(batch.inputs)
        label = label_weight * F.cross_entropy(logits, batch.targets)
        log_s = torch.log_softmax(logits / temperature, dim=-1)
        log_t = torch.log_softmax(teacher_logits / temperature, dim=-1)
        soft = alpha * (F.kl_div(log_s, log_t, reduction="batchmean", log_target=True) * temperature**2)
        return label + soft

    student = train(mlp(width, 16, classes), cfg.student.train, data, kd)
    return {"teacher": teacher, "baseline": baseline, "student": student, "data": data}


def test_short_offline_run_matches_the_same_arithmetic_in_plain_torch(tmp_path, fashion_mnist_root):
    cfg = load_config(ROOT / "examples" / "quick.yaml", OVERRIDES)
    summary = run_experiment(cfg, tmp_path / "run", quiet=True)
    reference = reference_run(cfg)
    data = reference.pop("data")
    for role, model in reference.items():
        got = load_file(str(tmp_path / "run" / "checkpoints" / f"{role}-best.safetensors"))
        # the pipeline's mlp is a Sequential of the same layers: the same state-dict keys
        want = {k: v for k, v in model.state_dict().items()}
        assert sorted(got) == sorted(want), role
        differ = [k for k in want if not torch.equal(got[k], want[k])]
        assert not differ, f"{role}: {differ} differ from the plain-torch reference " \
                           f"(max {max((got[k] - want[k]).abs().max().item() for k in differ):.3g})"
        test_accuracy = accuracy(model, data.test.inputs, data.test.targets)
        assert summary["models"][role]["accuracy"] == test_accuracy, role


def test_the_reference_sees_a_changed_recipe(tmp_path, fashion_mnist_root):
    """The comparison can fail: the pipeline with another KD weight gives other student weights."""
    cfg = load_config(ROOT / "examples" / "quick.yaml", [*OVERRIDES, "distill.label_weight=0.31",
                                                         "teacher.train.epochs=1"])
    run_experiment(cfg, tmp_path / "run", quiet=True)
    reference = reference_run(load_config(ROOT / "examples" / "quick.yaml", [*OVERRIDES, "teacher.train.epochs=1"]))
    got = load_file(str(tmp_path / "run" / "checkpoints" / "student-best.safetensors"))
    assert not all(torch.equal(got[k], v) for k, v in reference["student"].state_dict().items())
