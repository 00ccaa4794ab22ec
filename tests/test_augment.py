import torch

from distill.data.augment import AugmentParams, BatchAugment
from distill.data.batches import InMemoryBatches


def naive_crop_flip(x, params, pad, fill):
    """Per-image reference: pad, slice, mirror."""
    out = []
    for i in range(x.shape[0]):
        img = torch.nn.functional.pad(x[i], (pad, pad, pad, pad), value=fill)
        dy, dx = int(params.dy[i]), int(params.dx[i])
        crop = img[:, dy : dy + x.shape[2], dx : dx + x.shape[3]]
        out.append(crop.flip(-1) if params.flip[i] else crop)
    return torch.stack(out)


def test_matches_per_image_reference():
    x = torch.randn(16, 3, 9, 7)
    aug = BatchAugment(crop_padding=3, hflip=True, fill=-0.5)
    params = aug.sample(16, torch.Generator().manual_seed(1))
    assert bool(params.flip.any()) and not bool(params.flip.all())
    assert torch.equal(aug.apply(x, params), naive_crop_flip(x, params, 3, -0.5))


def test_zero_offset_no_flip_is_identity():
    x = torch.randn(4, 1, 5, 5)
    aug = BatchAugment(crop_padding=2)
    params = AugmentParams(torch.full((4,), 2), torch.full((4,), 2), torch.zeros(4, dtype=torch.bool))
    assert torch.equal(aug.apply(x, params), x)


def test_shapes_and_determinism():
    x = torch.randn(32, 1, 28, 28)
    aug = BatchAugment(2, True)
    a, pa = aug(x, torch.Generator().manual_seed(0))
    b, pb = aug(x, torch.Generator().manual_seed(0))
    c, _ = aug(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape
    assert torch.equal(a, b) and torch.equal(pa.dx, pb.dx)
    assert not torch.equal(a, c)


def test_batches_replay_per_epoch_and_cover_data():
    x = torch.arange(50, dtype=torch.float32).view(50, 1, 1, 1).expand(50, 1, 2, 2).contiguous()
    y = torch.arange(50)
    batches = InMemoryBatches(x, y, batch_size=8, augment=BatchAugment(1, True), seed=3)
    assert len(batches) == 7
    first = [b.index for b in batches.epoch(0)]
    again = [b.index for b in batches.epoch(0)]
    other = [b.index for b in batches.epoch(1)]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(torch.cat(first), torch.cat(other))
    assert sorted(torch.cat(first).tolist()) == list(range(50))
    for batch in batches.epoch(2):
        assert torch.equal(batch.targets, batch.index)  # targets follow their samples


def test_sharding_splits_without_overlap():
    x, y = torch.zeros(20, 1, 2, 2), torch.arange(20)
    seen = [torch.cat([b.index for b in InMemoryBatches(x, y, 4, seed=0, rank=r, world_size=2).epoch(0)])
            for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 10
    assert set(seen[0].tolist()).isdisjoint(seen[1].tolist())
