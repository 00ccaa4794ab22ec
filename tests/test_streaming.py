"""Data bigger than memory: images read from disk by DataLoader workers (data/lazy.py, data/stream.py).

The streamed batches must be the in-memory path's batches (same order, same augmentation draws,
mixed views included), the teacher cache built from disk must hold the teacher's outputs on the
very view the student then sees (looked up by sample id and view), memory-mapped, and a whole run
over a folder of PNGs must stay under a memory budget smaller than the decoded images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from distill.data.augment import BatchAugment
from distill.data.batches import InMemoryBatches
from distill.data.lazy import LazyInputs
from distill.data.stream import StreamBatches
from distill.errors import DataError
from distill.knowledge.cache import CachedTeacher, CacheOptions, build_cache
from distill.knowledge.teacher import LiveTeacher, freeze


class GrayDecode:
    """PNG -> (1, H, W) float in [0, 1] (picklable, as a worker needs)."""

    def __call__(self, path: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(Image.open(path), dtype=np.float32) / 255.0).unsqueeze(0)


def write_pngs(folder, images: torch.Tensor) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"{i:05d}.png"
        Image.fromarray(image.numpy()).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    images = torch.randint(0, 256, (150, 12, 12), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    paths = write_pngs(tmp_path_factory.mktemp("pngs"), images)
    return paths, images.float().unsqueeze(1) / 255.0, torch.arange(150) % 5


def test_lazy_inputs_decode_only_what_is_asked(pngs):
    paths, dense, _ = pngs
    lazy = LazyInputs(paths, GrayDecode())
    assert len(lazy) == 150 and lazy.shape == dense.shape and lazy.dim() == 4 and lazy.is_floating_point()
    assert lazy.nbytes == dense.numel() * 4
    assert torch.equal(lazy[:3], dense[:3]) and torch.equal(lazy[torch.tensor([7, 2])], dense[[7, 2]])
    part = lazy.subset(torch.tensor([4, 9]))  # still files: nothing decoded
    assert isinstance(part, LazyInputs) and part.paths == [paths[4], paths[9]]


@pytest.mark.parametrize("augment", [None, BatchAugment(2, True), BatchAugment(2, True, mixup=0.4, cutmix=1.0)],
                         ids=["plain", "crop-flip", "mixup-cutmix"])
@pytest.mark.parametrize("views", [None, 2], ids=["fresh", "stored-views"])
def test_streamed_batches_are_the_in_memory_batches(pngs, augment, views):
    paths, dense, targets = pngs
    memory = InMemoryBatches(dense, targets, 32, augment=augment, seed=3, views=views)
    stream = StreamBatches(LazyInputs(paths, GrayDecode()), targets, 32, augment=augment, seed=3, views=views,
                           workers=2)
    assert len(stream) == len(memory)
    for epoch in range(2):
        pairs = list(zip(memory.epoch(epoch), stream.epoch(epoch), strict=True))
        assert len(pairs) == len(memory)
        for a, b in pairs:
            assert torch.equal(a.index, b.index) and torch.equal(a.targets, b.targets)
            torch.testing.assert_close(b.inputs, a.inputs)
            assert getattr(a.view, "id", None) == getattr(b.view, "id", None)


def tiny_teacher() -> torch.nn.Module:
    torch.manual_seed(0)
    return freeze(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(144, 5)))


def test_cache_from_disk_replays_the_students_view_and_is_memory_mapped(pngs, tmp_path):
    paths, dense, targets = pngs
    teacher, augment = tiny_teacher(), BatchAugment(2, True, mixup=0.4)
    options = CacheOptions(views=2, dtype="float32", workers=2)
    cache = build_cache(LiveTeacher(teacher, ()), LazyInputs(paths, GrayDecode()), targets, augment, 5, 2, options,
                        tmp_path / "cache", "cpu", log=lambda _: None)
    assert isinstance(cache, CachedTeacher) and not cache.in_memory  # memory-mapped although it is tiny
    assert isinstance(cache.arrays["logits"], np.memmap)
    stream = StreamBatches(LazyInputs(paths, GrayDecode()), targets, 40, augment=augment, seed=5, views=2, workers=2)
    for epoch in range(2):
        for batch in stream.epoch(epoch):
            with torch.no_grad():
                live = teacher(batch.inputs)  # the teacher on exactly what the student sees
            torch.testing.assert_close(cache(batch).logits, live, rtol=1e-5, atol=1e-5)
    # the in-memory cache of the same images holds the same values
    memory = build_cache(LiveTeacher(teacher, ()), dense, targets, augment, 5, 2, options, None, "cpu",
                         log=lambda _: None)
    torch.testing.assert_close(torch.from_numpy(np.array(cache.arrays["logits"])), memory.arrays["logits"])


def test_cache_key_follows_the_files(pngs, tmp_path):
    paths, _, targets = pngs
    options = CacheOptions(views=1, workers=0)
    build = lambda: build_cache(LiveTeacher(tiny_teacher(), ()), LazyInputs(paths[:20], GrayDecode()),  # noqa: E731
                                targets[:20], None, 0, 1, options, tmp_path / "c", "cpu", log=logs.append)
    logs: list[str] = []
    build(), build()
    assert "reusing" in logs[1]
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(paths[3])  # a file changed: the cache is rebuilt
    build()
    assert "building" in logs[2]


def test_a_file_of_another_size_is_one_line_naming_it(pngs, tmp_path):
    paths, _, targets = pngs
    odd = tmp_path / "odd.png"
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(odd)
    stream = StreamBatches(LazyInputs([*paths[:10], str(odd)], GrayDecode()), targets[:11], 4, workers=1)
    with pytest.raises(DataError, match="odd.png: decodes to shape") as info:
        list(stream.epoch(0))
    assert "\n" not in str(info.value)
