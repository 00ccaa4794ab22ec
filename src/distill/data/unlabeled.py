"""The unlabelled pool: samples only the distilled student learns from, for every kind of data.

It is the mechanism the text transfer set introduced (``data/text_augment.py``): the pool is
``bundle.meta["transfer"]``, a :class:`Split` whose targets say "no label" (class -1, or NaN for
regression). ``pipeline.stages.distil`` appends it to the training set, the teacher labels it
through the cache, and the trainer's one label loss masks those rows (``train/label_loss.py``);
the baseline and the teacher train on the labelled split alone.

Its sources: the text transfer set (augmented sentences), ``data.unlabeled: <folder or file>`` of
the dataset's kind (read by the dataset's loader), and ``data.unlabeled: rest``, the training
samples that ``data.labeled_subset`` / ``data.labels_per_class`` leave without a label.
"""

from __future__ import annotations

import torch
from torch import Tensor

from distill.data.lazy import cat, is_lazy, take
from distill.data.text_augment import UNLABELLED
from distill.errors import DataError

REST = "rest"


def no_labels(n: int, like: Tensor) -> Tensor:
    """Targets that mark ``n`` rows as unlabelled, shaped like the labels ``like``: class -1, or NaN."""
    if like.is_floating_point():
        return torch.full((n, *like.shape[1:]), float("nan"), dtype=like.dtype)
    return torch.full((n,), UNLABELLED, dtype=torch.long)


def add_unlabeled(bundle, inputs: Tensor) -> None:
    """Append ``inputs`` to the bundle's unlabelled pool (``meta["transfer"]``), creating it if needed."""
    from distill.data.bundle import Split

    targets = no_labels(len(inputs), bundle.train.targets.cpu())
    pool = bundle.meta.get("transfer")
    if pool is not None:
        inputs, targets = _cat(pool.inputs, inputs, bundle), torch.cat([pool.targets, targets])
    if tuple(inputs.shape[1:]) != tuple(bundle.train.inputs.shape[1:]) and inputs.is_floating_point():
        raise DataError(f"{bundle.name}: the unlabelled pool's inputs have shape {tuple(inputs.shape[1:])} but the "
                        f"training inputs {tuple(bundle.train.inputs.shape[1:])}; give it the same kind of data "
                        f"(and the same resize options)")
    bundle.meta["transfer"] = Split(inputs, targets)


def _cat(a: Tensor, b: Tensor, bundle) -> Tensor:
    """Concatenate two pools; token-id rows of different widths are padded with the pad id."""
    if is_lazy(a) or is_lazy(b):  # files on disk (data.stream): the file lists are joined
        return cat(a, b)
    if a.dim() == 2 and b.dim() == 2 and not a.is_floating_point() and a.shape[1] != b.shape[1]:
        pad = bundle.meta.get("model_context", {}).get("pad_id") or 0
        width = max(a.shape[1], b.shape[1])
        a, b = (torch.nn.functional.pad(t, (0, width - t.shape[1]), value=pad) for t in (a, b))
    return torch.cat([a, b.to(a.dtype)])


def stratified_subset(targets: Tensor, total: int | None = None, per_class: int | None = None,
                      seed: int = 0) -> tuple[Tensor, Tensor]:
    """(kept, rest) indices: ``total`` samples spread over the classes in proportion to their counts
    (largest remainders), or ``per_class`` of each class; drawn with a fixed seed. Real-valued
    targets (regression) are drawn without strata."""
    n = len(targets)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    if targets.is_floating_point():
        if per_class is not None:
            raise DataError("data.labels_per_class needs classes; for regression use data.labeled_subset")
        keep = min(total, n)
        return order[:keep].sort().values, order[keep:].sort().values
    shuffled = targets[order]
    classes, counts = torch.unique(shuffled, return_counts=True)
    if per_class is not None:
        quota = torch.clamp(counts, max=per_class)
    else:
        if total >= n:
            return torch.arange(n), torch.arange(0)
        share = counts.double() * total / n
        quota = share.floor().long()
        remainder = total - int(quota.sum())
        if remainder:
            quota[torch.argsort(share - quota, descending=True)[:remainder]] += 1
    kept = [order[shuffled == c][:q] for c, q in zip(classes.tolist(), quota.tolist(), strict=True)]
    keep = torch.cat(kept).sort().values
    mask = torch.ones(n, dtype=torch.bool)
    mask[keep] = False
    return keep, torch.arange(n)[mask]


def apply_label_budget(bundle, cfg) -> None:
    """``data.labeled_subset`` / ``labels_per_class``: keep that many labelled training samples; with
    ``data.unlabeled: rest`` the others become the unlabelled pool (else they are dropped)."""

    if cfg.labeled_subset is None and cfg.labels_per_class is None:
        return
    train = bundle.train
    keep, rest = stratified_subset(train.targets.cpu(), cfg.labeled_subset, cfg.labels_per_class,
                                   cfg.split_seed if cfg.labeled_seed is None else cfg.labeled_seed)
    bundle.train = train.select(keep)  # files stay on disk when streaming
    if cfg.unlabeled == REST and len(rest):
        add_unlabeled(bundle, take(train.inputs, rest))
    bundle.meta["labels"] = {"labelled": len(keep), "unlabelled_from_train": len(rest) if cfg.unlabeled == REST else 0}


def check_unlabeled_source(cfg, spec) -> None:
    """A path in ``data.unlabeled`` needs a dataset whose loader reads one; checked before loading."""
    if cfg.unlabeled in (None, REST) or spec.reads_unlabeled:
        return
    raise DataError(f"data.unlabeled: dataset '{spec.name}' cannot read an unlabelled pool from "
                    f"'{cfg.unlabeled}'; use image_folder, table, hf_dataset or audio_folder, or "
                    f"unlabeled: rest with labeled_subset")
