"""The teacher knowledge cache: same losses as the live teacher, invalidation, corruption, views, top-k."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from distill.config.schema import ExperimentConfig
from distill.data.augment import BatchAugment
from distill.data.batches import InMemoryBatches, StoredView
from distill.knowledge.cache import CachedTeacher, CacheOptions, build_cache, choose_teacher, reconstruct
from distill.knowledge.teacher import LiveTeacher
from distill.methods.base import Batch, build_method
from distill.models.registry import build_model

N, CLASSES = 96, 10


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, 1, 12, 12, generator=g), torch.randint(0, CLASSES, (N,), generator=g)


def teacher_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("cnn", (1, 12, 12), CLASSES, channels=[4, 8])


def cache(live, data, directory, views=2, epochs=4, log=None, **options) -> CachedTeacher:
    inputs, targets = data
    opts = CacheOptions(views=views, chunk=40, **{"dtype": "float32", **options})
    return build_cache(live, inputs, targets, BatchAugment(crop_padding=2), seed=3, epochs=epochs, options=opts,
                       directory=directory, device=torch.device("cpu"), log=log or (lambda _: None))


def batches(data, views):
    return InMemoryBatches(*data, batch_size=32, augment=BatchAugment(crop_padding=2), seed=3, views=views)


@pytest.mark.parametrize("memory_mb", [1024.0, 0.0], ids=["in-memory", "memory-mapped"])
def test_cached_kd_loss_equals_live_on_the_same_view(data, tmp_path, memory_mb):
    live = LiveTeacher(teacher_model())
    cached = cache(live, data, tmp_path / "c", memory_mb=memory_mb)
    assert cached.in_memory == (memory_mb > 0)
    kd = build_method("kd")
    student = build_model("mlp", (1, 12, 12), CLASSES, hidden=[16])
    source = batches(data, cached.views)
    checked = 0
    for epoch in range(3):
        for batch in source.epoch(epoch):
            s = student(batch.inputs)
            from_live, from_cache = live(batch), cached(batch)
            torch.testing.assert_close(from_cache.logits, from_live.logits, rtol=1e-5, atol=1e-5)
            loss_live = kd.losses(type(from_live)(s), from_live, batch)
            loss_cached = kd.losses(type(from_live)(s), from_cache, batch)
            for key in loss_live:
                torch.testing.assert_close(loss_cached[key], loss_live[key], rtol=1e-5, atol=1e-6)
            checked += 1
    assert checked == 9


def test_views_give_different_teacher_outputs(data):
    cached = cache(LiveTeacher(teacher_model()), data, None, views=2)
    index = torch.arange(16)
    first = cached(Batch(data[0][:16], data[1][:16], index=index, view=StoredView(*[None] * 3, id=0)))
    second = cached(Batch(data[0][:16], data[1][:16], index=index, view=StoredView(*[None] * 3, id=1)))
    assert not torch.allclose(first.logits, second.logits)


def test_fresh_augmentation_cannot_be_served_from_the_cache(data):
    cached = cache(LiveTeacher(teacher_model()), data, None)
    batch = next(iter(batches(data, None).epoch(0)))  # plain AugmentParams, no view id
    with pytest.raises(ValueError, match="replayable views"):
        cached(batch)


def epoch_views(source, epoch):
    ids, params = set(), {}
    for batch in source.epoch(epoch):
        ids.add(batch.view.id)
        for i, dx, dy, f in zip(batch.index.tolist(), batch.view.dx, batch.view.dy, batch.view.flip, strict=True):
            params[i] = (int(dx), int(dy), bool(f))
    return ids, params, torch.cat([b.index for b in source.epoch(epoch)])


def test_views_cycle_and_are_replayable(data):
    source = batches(data, views=3)
    ids0, params0, order0 = epoch_views(source, 0)
    ids1, params1, _ = epoch_views(source, 1)
    ids3, params3, order3 = epoch_views(source, 3)
    assert (ids0, ids1, ids3) == ({0}, {1}, {0})
    assert len(params0) == N
    assert params3 == params0 and params1 != params0  # view e mod k comes back, sample by sample
    assert not torch.equal(order0, order3)  # shuffling is still fresh each epoch
    # Replayable: a new pipeline (e.g. a resumed run) draws the same views.
    assert epoch_views(batches(data, views=3), 4)[1] == params1


def test_a_valid_cache_is_reused_and_a_changed_teacher_rebuilds_it(data, tmp_path):
    messages: list[str] = []
    teacher = teacher_model()
    cache(LiveTeacher(teacher), data, tmp_path, log=messages.append)
    cache(LiveTeacher(teacher), data, tmp_path, log=messages.append)
    assert "building" in messages[0] and "reusing" in messages[1]
    with torch.no_grad():
        teacher.head[-1].bias.add_(1.0)
    live = LiveTeacher(teacher)
    cached = cache(live, data, tmp_path, log=messages.append)
    assert "building" in messages[2]
    batch = next(iter(batches(data, cached.views).epoch(1)))
    torch.testing.assert_close(cached(batch).logits, live(batch).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("damage", ["flip bytes", "truncate", "delete meta"])
def test_a_corrupt_cache_is_rebuilt_not_used(data, tmp_path, damage):
    live = LiveTeacher(teacher_model())
    cache(live, data, tmp_path)
    path = tmp_path / "logits.npy"
    raw = bytearray(path.read_bytes())
    if damage == "flip bytes":
        raw[-40:] = bytes(40)
        path.write_bytes(bytes(raw))
    elif damage == "truncate":
        path.write_bytes(bytes(raw[: len(raw) // 2]))
    else:
        (tmp_path / "meta.json").unlink()
    messages: list[str] = []
    cached = cache(live, data, tmp_path, log=messages.append)
    assert "building" in messages[0]
    batch = next(iter(batches(data, cached.views).epoch(0)))
    torch.testing.assert_close(cached(batch).logits, live(batch).logits, rtol=1e-5, atol=1e-5)


def test_top_k_storage_reconstructs_the_top_k_logits(data):
    live = LiveTeacher(teacher_model())
    cached = cache(live, data, None, top_k=3)
    assert set(cached.arrays) == {"topk_values", "topk_indices", "logsumexp"}
    batch = next(iter(batches(data, cached.views).epoch(0)))
    full, rebuilt = live(batch).logits, cached(batch).logits
    values, indices = full.topk(3, dim=-1)
    assert torch.equal(rebuilt.topk(3, dim=-1).indices, indices)
    torch.testing.assert_close(rebuilt.gather(1, indices), values, rtol=1e-5, atol=1e-5)
    # Exact probabilities at the top-k; the other classes share the left-over mass.
    torch.testing.assert_close(rebuilt.softmax(-1).gather(1, indices), full.softmax(-1).gather(1, indices),
                               rtol=1e-4, atol=1e-6)


def test_reconstruct_keeps_top_k_on_a_known_example():
    logits = torch.tensor([[3.0, 1.0, 0.0, -1.0]])
    values, indices = logits.topk(2)
    rebuilt = reconstruct(values, indices, torch.logsumexp(logits, -1), 4)
    p = logits.softmax(-1)[0]
    expected_rest = torch.log((p[2] + p[3]) / 2) + torch.logsumexp(logits, -1)[0]
    torch.testing.assert_close(rebuilt[0], torch.stack([logits[0, 0], logits[0, 1], expected_rest, expected_rest]))


def test_float16_storage_is_smaller_and_close(data):
    live = LiveTeacher(teacher_model())
    half, full = cache(live, data, None, dtype="float16"), cache(live, data, None, dtype="float32")
    assert half.nbytes * 2 == full.nbytes
    batch = next(iter(batches(data, half.views).epoch(0)))
    torch.testing.assert_close(half(batch).logits, full(batch).logits, rtol=2e-3, atol=2e-3)


def test_hooked_features_are_cached(data):
    live = LiveTeacher(teacher_model(), modules=("features.1",))
    cached = cache(live, data, None)
    batch = next(iter(batches(data, cached.views).epoch(1)))
    torch.testing.assert_close(cached(batch).features["features.1"], live(batch).features["features.1"],
                               rtol=1e-5, atol=1e-5)


def test_only_the_views_that_epochs_use_are_built(data):
    assert cache(LiveTeacher(teacher_model()), data, None, views=8, epochs=3).views == 3
    assert cache(LiveTeacher(teacher_model()), data, None, views=2, epochs=5).views == 2


def test_cache_modes(data):
    live = LiveTeacher(teacher_model())
    built = cache(live, data, None)
    assert choose_teacher("off", live, lambda: built) is live
    assert choose_teacher("auto", live, lambda: built) is built
    live.model.train()
    assert choose_teacher("auto", live, lambda: built) is live
    with pytest.raises(ValueError, match="not frozen"):
        choose_teacher("on", live, lambda: built)


def test_cache_and_runtime_config():
    cfg = ExperimentConfig(cache={"views": 4, "top_k": 5, "dir": "/tmp/c"}, runtime={"precision": "bf16"})
    assert (cfg.cache.mode, cfg.cache.views, cfg.cache.dtype, cfg.cache.top_k) == ("auto", 4, "float16", 5)
    assert cfg.runtime.precision == "bf16" and cfg.runtime.compile is False
    with pytest.raises(ValueError):
        ExperimentConfig(cache={"views": 0})


def test_cache_files_live_where_asked(data, tmp_path: Path):
    cache(LiveTeacher(teacher_model()), data, tmp_path / "here")
    assert (tmp_path / "here" / "meta.json").is_file()
    assert np.load(tmp_path / "here" / "logits.npy").shape == (2, N, CLASSES)


class _WidthRecorder(torch.nn.Module):
    """Logits from each row's token ids; records how wide each call's batch is once padding is dropped."""

    def __init__(self, pad_id: int):
        super().__init__()
        self.pad_id = pad_id
        self.linear = torch.nn.Linear(8, 3)
        self.widths: list[int] = []

    def forward(self, ids):
        width = int((ids != self.pad_id).sum(1).max())
        self.widths.append(width)
        ids = ids[:, :width]
        mask = (ids != self.pad_id).float()[..., None]
        counts = (torch.nn.functional.one_hot(ids % 8, 8).float() * mask).sum(1)
        return self.linear(counts / mask.sum(1))


@pytest.mark.parametrize("pad_id", [0, 3])
def test_token_batches_are_cached_shortest_first_and_stored_in_place(pad_id):
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 30, (N,), generator=g)
    words = torch.randint(4, 1000, (N, 32), generator=g)
    ids = torch.where(torch.arange(32) < lengths[:, None], words, pad_id)
    targets = torch.randint(0, 3, (N,), generator=g)
    model = _WidthRecorder(pad_id)  # the cache orders by the teacher's own pad id
    live = LiveTeacher(model)
    cached = build_cache(live, ids, targets, None, seed=0, epochs=1, options=CacheOptions(chunk=16, dtype="float32"),
                         directory=None, device=torch.device("cpu"), log=lambda _: None)
    chunk_widths = model.widths[1:]  # the first call is build_cache's shape probe
    assert chunk_widths == sorted(chunk_widths) and len(chunk_widths) == N // 16
    # Sorted chunks pad far less than the original order would: the widest row of each chunk of 16.
    assert sum(chunk_widths) < sum(int(lengths[i : i + 16].max()) for i in range(0, N, 16))
    # Every row's logits land at its own index, equal to running the model on that row alone.
    rows = torch.tensor([0, 5, 17, N - 1])
    expected = torch.cat([model(ids[i : i + 1]) for i in rows]).detach()
    torch.testing.assert_close(cached(Batch(ids[rows], targets[rows], index=rows)).logits, expected)
