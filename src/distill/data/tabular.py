"""scikit-learn's small classification sets (they ship inside the package, no download) as DataBundles.

- ``breast_cancer``: 569 tumours, 30 features, benign / malignant
- ``wine``: 178 wines, 13 features, 3 cultivars
- ``digits``: 1,797 8x8 handwritten digits, kept as (1, 8, 8) images (so a soft decision tree's
  filters can be shown as images; tree and MLP students flatten them)

A seeded split: 20% test, ``data.val_size`` samples for validation, the rest train; features
standardised with the training split's statistics.
"""

from __future__ import annotations

import torch

from distill.config.schema import DataConfig
from distill.data.bundle import DataBundle, Split
from distill.errors import DataError

TEST_FRACTION = 0.2


def _load(name: str):
    try:
        from sklearn import datasets
    except ImportError:
        raise DataError(f"dataset '{name}' needs scikit-learn: pip install -e '.[regression]'") from None
    return getattr(datasets, f"load_{name}")()


def load_tabular_bundle(cfg: DataConfig) -> DataBundle:
    raw = _load(cfg.dataset)
    x = torch.as_tensor(raw.data, dtype=torch.float64)
    y = torch.as_tensor(raw.target, dtype=torch.long)
    n = len(x)
    n_test = round(n * TEST_FRACTION)
    if cfg.val_size >= n - n_test:
        raise DataError(f"data.val_size={cfg.val_size} leaves no training data out of {n - n_test} {cfg.dataset} "
                        f"samples; use e.g. val_size: {max(1, (n - n_test) // 5)}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.split_seed))
    test_idx, val_idx, train_idx = order[:n_test], order[n_test:n_test + cfg.val_size], order[n_test + cfg.val_size:]
    mean, std = x[train_idx].mean(0), x[train_idx].std(0).clamp_min(1e-6)  # digits has constant border pixels
    shape = (1, 8, 8) if cfg.dataset == "digits" else (x.shape[1],)

    def part(idx):
        return Split(((x[idx] - mean) / std).float().reshape(len(idx), *shape), y[idx])

    names = [str(c) for c in getattr(raw, "target_names", range(int(y.max()) + 1))]
    return DataBundle(cfg.dataset, part(train_idx).head(cfg.train_subset), part(val_idx),
                      part(test_idx).head(cfg.test_subset), len(names), names,
                      meta={"features": [str(f) for f in getattr(raw, "feature_names", [])]})
