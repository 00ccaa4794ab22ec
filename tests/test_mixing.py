"""Mixup / cutmix (function matching): mixed views, their replay, the cache serving them, mixed labels."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from distill.data.augment import AugmentParams, BatchAugment, MixParams, with_mixing
from distill.data.batches import InMemoryBatches
from distill.knowledge.cache import CacheOptions, build_cache, cache_key
from distill.knowledge.teacher import LiveTeacher
from distill.models.registry import build_model
from distill.train.label_loss import label_loss

N, CLASSES = 96, 10


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, 1, 12, 12, generator=g), torch.randint(0, CLASSES, (N,), generator=g)


def mixing(**kw) -> BatchAugment:
    return BatchAugment(crop_padding=2, hflip=True, **kw)


def no_crop_params(n: int, mix: MixParams) -> AugmentParams:
    zero = torch.zeros(n, dtype=torch.long)
    return AugmentParams(zero, zero, torch.zeros(n, dtype=torch.bool), mix)


def test_mixup_blends_the_sample_and_its_partner_with_lam():
    x, partner = torch.full((3, 1, 4, 4), 2.0), torch.full((3, 1, 4, 4), -1.0)
    lam = torch.tensor([1.0, 0.25, 0.6])
    zero = torch.zeros(3, dtype=torch.long)
    mix = MixParams(torch.zeros(3, dtype=torch.long), lam, torch.zeros(3, dtype=torch.bool),
                    torch.zeros(3, 4, dtype=torch.long), zero, zero, torch.zeros(3, dtype=torch.bool))
    out = BatchAugment(0, False, mixup=1.0).apply(x, no_crop_params(3, mix), partner)
    expected = lam[:, None, None, None] * 2.0 + (1 - lam[:, None, None, None]) * -1.0
    torch.testing.assert_close(out, expected.expand_as(out))


def test_cutmix_pastes_the_box_and_lam_is_the_share_kept():
    aug = BatchAugment(0, False, cutmix=1.0)
    params = aug.sample(200, torch.Generator().manual_seed(1), image_size=(12, 12))
    x, partner = torch.zeros(200, 1, 12, 12), torch.ones(200, 1, 12, 12)
    out = aug.apply(x, params, partner)
    assert params.mix.cut.all()
    # the pasted pixels are the partner's: their share is exactly 1 - lam
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), 1 - params.mix.lam)
    y0, y1, x0, x1 = params.mix.box[0].tolist()
    assert out[0, 0, y0:y1, x0:x1].eq(1).all() and out[0].sum() == (y1 - y0) * (x1 - x0)
    # Beta(1, 1) draws mean 1/2 of the area cut; boxes clipped at the border (as in the official code) cut less
    assert 0.5 < params.mix.lam.mean() < 0.8


def test_beta_draws_have_the_beta_moments():
    for alpha in (0.2, 1.0, 2.0):
        lam = BatchAugment(0, False, mixup=alpha).sample(20000, torch.Generator().manual_seed(2)).mix.lam
        assert abs(lam.mean() - 0.5) < 0.01
        assert abs(lam.var() - 1 / (4 * (2 * alpha + 1))) < 0.01  # Var Beta(a, a) = 1 / (4 (2a + 1))


def test_mix_prob_leaves_the_others_unmixed():
    lam = BatchAugment(0, False, mixup=1.0, mix_prob=0.3).sample(5000, torch.Generator().manual_seed(3)).mix.lam
    assert abs(float((lam == 1).float().mean()) - 0.7) < 0.03


def select5(view):
    out = no_crop_params(5, view.mix.select(torch.arange(5)))
    out.partner_targets = view.partner_targets[:5]
    return out


def test_the_label_loss_mixes_labels_like_the_inputs():
    g = torch.Generator().manual_seed(4)
    logits, targets, partners = torch.randn(6, 5, generator=g), torch.tensor([0, 1, 2, 3, 4, -1]), \
        torch.tensor([4, 3, -1, 1, 0, 2])
    lam = torch.tensor([0.1, 0.5, 0.7, 1.0, 0.0, 0.4])
    view = no_crop_params(6, MixParams(torch.zeros(6, dtype=torch.long), lam, torch.zeros(6, dtype=torch.bool),
                                       torch.zeros(6, 4, dtype=torch.long), *[torch.zeros(6, dtype=torch.long)] * 2,
                                       torch.zeros(6, dtype=torch.bool)))
    view.partner_targets = partners
    log_p = logits.log_softmax(-1)
    expected = []
    for i in range(5):  # sample 5 has no label: left out; sample 2's partner has none: its own label only
        own = -log_p[i, targets[i]]
        expected.append(own if partners[i] < 0 else lam[i] * own - (1 - lam[i]) * log_p[i, partners[i]])
    torch.testing.assert_close(label_loss(logits, targets, view=view), torch.stack(expected).mean())
    torch.testing.assert_close(label_loss(logits, targets, view=None), F.cross_entropy(logits[:5], targets[:5]))
    # all_labelled (the trainer's fast path) still mixes
    torch.testing.assert_close(label_loss(logits[:5], targets[:5], view=select5(view), all_labelled=True),
                               torch.stack(expected).mean())


@pytest.mark.parametrize("kind", [{"mixup": 1.0}, {"cutmix": 1.0}, {"mixup": 0.4, "cutmix": 1.0}])
def test_replayed_views_are_identical_and_differ_between_views(data, kind):
    first = list(InMemoryBatches(*data, batch_size=32, augment=mixing(**kind), seed=3, views=2).epoch(0))
    again = list(InMemoryBatches(*data, batch_size=32, augment=mixing(**kind), seed=3, views=2).epoch(0))
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a.inputs, b.inputs, rtol=0, atol=0)
        torch.testing.assert_close(a.view.partner_targets, data[1][a.view.mix.partner])
    # epoch 2 replays view 0 (2 views) with a fresh order: the same sample gets the same mixed image
    replay = list(InMemoryBatches(*data, batch_size=32, augment=mixing(**kind), seed=3, views=2).epoch(2))
    by_index = {int(i): x for b in first for i, x in zip(b.index, b.inputs, strict=True)}
    other_view = list(InMemoryBatches(*data, batch_size=32, augment=mixing(**kind), seed=3, views=2).epoch(1))
    for b in replay:
        for i, x in zip(b.index, b.inputs, strict=True):
            torch.testing.assert_close(x, by_index[int(i)], rtol=0, atol=0)
    assert any(not torch.equal(x, by_index[int(i)]) for b in other_view for i, x in zip(b.index, b.inputs, strict=True))


@pytest.mark.parametrize("kind", [{"mixup": 1.0}, {"cutmix": 1.0}, {"mixup": 0.4, "cutmix": 1.0}])
@pytest.mark.parametrize("memory_mb", [1024.0, 0.0], ids=["in-memory", "memory-mapped"])
def test_cached_teacher_equals_live_teacher_on_the_same_mixed_view(data, tmp_path, kind, memory_mb):
    torch.manual_seed(0)
    live = LiveTeacher(build_model("cnn", (1, 12, 12), CLASSES, channels=[4, 8]))
    augment = mixing(**kind)
    cached = build_cache(live, *data, augment, seed=3, epochs=4, options=CacheOptions(views=2, dtype="float32",
                         chunk=40, memory_mb=memory_mb), directory=tmp_path / "c", device=torch.device("cpu"),
                         log=lambda _: None)
    source = InMemoryBatches(*data, batch_size=32, augment=augment, seed=3, views=cached.views)
    mixed = 0
    for epoch in range(3):
        for batch in source.epoch(epoch):
            torch.testing.assert_close(cached(batch).logits, live(batch).logits, rtol=1e-5, atol=1e-5)
            mixed += int((batch.view.mix.lam < 1).sum())
    assert mixed > N  # the views really were mixed


def test_the_cache_key_depends_on_the_mixing(data):
    model = build_model("cnn", (1, 12, 12), CLASSES, channels=[4, 8])
    keys = {cache_key(model, *data, aug, 3, (), CacheOptions()) for aug in
            (mixing(), mixing(mixup=1.0), mixing(mixup=0.5), mixing(cutmix=1.0), mixing(mixup=1.0, mix_prob=0.5))}
    assert len(keys) == 5


def test_with_mixing_keeps_crop_and_flip():
    base = BatchAugment(3, False, fill=-0.4)
    assert with_mixing(base, 0.0, 0.0) is base
    mixed = with_mixing(base, 1.0, 0.0, 0.5)
    assert (mixed.crop_padding, mixed.hflip, mixed.fill, mixed.mixup, mixed.mix_prob) == (3, False, -0.4, 1.0, 0.5)
    assert with_mixing(None, 0.0, 1.0).describe() == [0, False, 0.0, 0.0, 1.0, 1.0]
