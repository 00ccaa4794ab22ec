"""scikit-learn's small classification sets (they ship inside the package, no download) as DataBundles.

- ``breast_cancer``: 569 tumours, 30 features, benign / malignant
- ``wine``: 178 wines, 13 features, 3 cultivars
- ``digits``: 1,797 8x8 handwritten digits, kept as (1, 8, 8) images (so a soft decision tree's
  filters can be shown as images; tree and MLP students flatten them)

A seeded split: 20% test, ``data.val_size`` samples for validation, the rest train; features
standardised with the training split's statistics. They are tables (``data/table.py``): only the
arrays and the split come from here, the bundle is :func:`distill.data.table.table_bundle`'s.
"""

from __future__ import annotations

import torch

from distill.config.schema import DataConfig
from distill.data.bundle import DataBundle
from distill.errors import DataError

TEST_FRACTION = 0.2


def _load(name: str):
    try:
        from sklearn import datasets
    except ImportError:
        raise DataError(f"dataset '{name}' needs scikit-learn: pip install -e '.[regression]'") from None
    return getattr(datasets, f"load_{name}")()


def sklearn_split(n: int, val_size: int, seed: int, name: str, example: int) -> dict[str, torch.Tensor]:
    """{"test", "val", "train"} indices: one seeded permutation, 20% test first, then val_size for validation."""
    n_test = round(n * TEST_FRACTION)
    if val_size >= n - n_test:
        raise DataError(f"data.val_size={val_size} leaves no training data out of {n - n_test} {name} "
                        f"samples; use e.g. val_size: {example}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return {"test": order[:n_test], "val": order[n_test:n_test + val_size], "train": order[n_test + val_size:]}


def load_tabular_bundle(cfg: DataConfig) -> DataBundle:
    from distill.data.table import table_bundle

    raw = _load(cfg.dataset)
    x = torch.as_tensor(raw.data, dtype=torch.float64)
    y = torch.as_tensor(raw.target, dtype=torch.long)
    n = len(x)
    idx = sklearn_split(n, cfg.val_size, cfg.split_seed, cfg.dataset, max(1, (n - round(n * TEST_FRACTION)) // 5))
    shape = (1, 8, 8) if cfg.dataset == "digits" else None
    names = [str(c) for c in getattr(raw, "target_names", range(int(y.max()) + 1))]
    bundle = table_bundle(cfg.dataset, {s: x[i] for s, i in idx.items()}, {s: y[i] for s, i in idx.items()},
                          names, shape=shape, meta={"features": [str(f) for f in getattr(raw, "feature_names", [])]})
    bundle.train, bundle.test = bundle.train.head(cfg.train_subset), bundle.test.head(cfg.test_subset)
    return bundle
