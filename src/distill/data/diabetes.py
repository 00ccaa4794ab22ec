"""scikit-learn's diabetes regression data (442 patients, 10 features, disease progression after a year).

It ships inside the scikit-learn package (``load_diabetes`` reads local files, no download);
install it with ``pip install -e '.[regression]'``. Features and target are standardised with
the training split's statistics; ``meta['target_std']`` turns errors back into original units.
"""

from __future__ import annotations

import torch

from distill.errors import DataError

TEST_FRACTION = 0.2


def load_diabetes_splits(val_size: int, seed: int):
    """Seeded train/val/test split of standardised (float32) features and (N, 1) targets."""
    try:
        from sklearn.datasets import load_diabetes
    except ImportError:
        raise DataError("dataset 'diabetes' needs scikit-learn: pip install -e '.[regression]'") from None
    x_all, y_all = load_diabetes(return_X_y=True)
    x = torch.as_tensor(x_all, dtype=torch.float64)
    y = torch.as_tensor(y_all, dtype=torch.float64).unsqueeze(1)
    n = len(x)
    n_test = round(n * TEST_FRACTION)
    if val_size >= n - n_test:
        raise DataError(f"data.val_size={val_size} leaves no training data out of {n - n_test} diabetes samples; "
                        f"use e.g. val_size: 66")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test_idx, val_idx, train_idx = order[:n_test], order[n_test:n_test + val_size], order[n_test + val_size:]
    # Statistics from the training split only, so nothing about val/test leaks into training.
    x_mean, x_std = x[train_idx].mean(0), x[train_idx].std(0)
    y_mean, y_std = y[train_idx].mean(), y[train_idx].std()

    def part(idx):
        return ((x[idx] - x_mean) / x_std).float(), ((y[idx] - y_mean) / y_std).float()

    return part(train_idx), part(val_idx), part(test_idx), {"target_mean": float(y_mean), "target_std": float(y_std)}
