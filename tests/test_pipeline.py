"""One pipeline: every mode's distilling stage gets the teacher cache and the transfer set."""

import pytest
import torch

from distill.config import load_config
from distill.data import Split, from_tensors, register_dataset
from distill.errors import ConfigError
from distill.knowledge.cache import CachedTeacher
from distill.pipeline.experiment import run_experiment
from distill.pipeline.modes import MODES, load_modes

TRAIN, TRANSFER = 96, 48


@register_dataset("test_blobs_with_transfer", kind="image", summary="test only: blobs plus an unlabelled transfer set")
def blobs_with_transfer(cfg, teacher_path=None):
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 1, 6, 6, generator=g)
    targets = torch.randint(0, 3, (TRAIN + 32 + 32,), generator=g)
    inputs = centers[targets] + 0.3 * torch.randn(len(targets), 1, 6, 6, generator=g)
    data = from_tensors("test_blobs_with_transfer", Split(inputs[:TRAIN], targets[:TRAIN]),
                        Split(inputs[-32:], targets[-32:]), num_classes=3,
                        val=Split(inputs[TRAIN:-32], targets[TRAIN:-32]))
    extra = torch.randn(TRANSFER, 1, 6, 6, generator=g)
    data.meta["transfer"] = Split(extra, torch.full((TRANSFER,), -1, dtype=torch.long))  # unlabelled
    return data


def run_mode(tmp_path, mode: str, **distill):
    seen = {}

    def remember(trainer, record):  # the teacher each trainer distilled from, and how many rows it served
        if trainer.teacher is not None:
            t = trainer.teacher
            rows = next(iter(t.arrays.values())).shape[1] if isinstance(t, CachedTeacher) else None
            seen[trainer.name] = (type(t).__name__, rows)

    small, large = {"name": "mlp", "hidden": [8]}, {"name": "mlp", "hidden": [24]}
    teacher, student = (small, large) if mode == "reverse" else (large, small)
    cfg = load_config(data={
        "name": mode, "data": {"dataset": "test_blobs_with_transfer"}, "cache": {"mode": "on"},
        "teacher": {"model": teacher, "train": {"epochs": 1, "batch_size": 32}},
        "student": {"model": student, "train": {"epochs": 1, "batch_size": 32}},
        "distill": {"mode": mode, "method": "kd", **distill}, "evaluate": {"latency": False},
        "runtime": {"threads": 1}})
    run_experiment(cfg, tmp_path / "run", quiet=True, callbacks=[remember])
    return seen, tmp_path / "run" / "cache"


@pytest.mark.parametrize(("mode", "distilled", "options"), [
    ("offline", {"student": "."}, {}),
    ("reverse", {"student": "."}, {}),
    ("takd", {"assistant": "assistant", "student": "."},
     {"assistant": {"model": {"name": "mlp", "hidden": [12]}, "train": {"epochs": 1, "batch_size": 32}}}),
    ("born_again", {"gen1": "gen1", "gen2": "gen2"}, {"generations": 2}),
])
def test_every_distilling_stage_uses_the_cache_and_the_transfer_set(tmp_path, mode, distilled, options):
    seen, cache = run_mode(tmp_path, mode, **options)
    for role, folder in distilled.items():
        # served from the cache, which holds the training set and the transfer set
        assert seen[role] == ("CachedTeacher", TRAIN + TRANSFER), (mode, role, seen)
        assert (cache / folder / "meta.json").is_file()
    # models trained on labels never see the unlabelled rows nor a teacher
    assert not {"teacher", "baseline", "gen0"} & set(seen)


def test_online_has_no_frozen_teacher_to_cache(tmp_path):
    with pytest.raises(ConfigError, match="no frozen teacher"):
        run_mode(tmp_path, "online", method="dml")


def test_every_built_in_mode_is_registered_from_its_own_file():
    assert {"offline", "online", "born_again", "takd", "reverse"} <= set(load_modes())
    for name in ("offline", "online", "born_again", "takd", "reverse"):
        assert MODES.get(name).__module__ == f"distill.pipeline.modes.{name}"


def test_an_unknown_mode_fails_before_anything_is_written(tmp_path):
    cfg = load_config(data={"distill": {"mode": "offlien"}})
    with pytest.raises(Exception, match="unknown mode 'offlien'.*did you mean 'offline'"):
        run_experiment(cfg, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()
