"""scikit-learn's diabetes regression data (442 patients, 10 features, disease progression after a year).

It ships inside the scikit-learn package (``load_diabetes`` reads local files, no download);
install it with ``pip install -e '.[regression]'``. Features and target are standardised with
the training split's statistics; ``meta['target_std']`` turns errors back into original units.
A regression table (``data/table.py``): the split is the scikit-learn sets' (``data/tabular.py``).
"""

from __future__ import annotations

import torch

from distill.errors import DataError


def diabetes_bundle(val_size: int, seed: int):
    """The seeded train/val/test split of standardised (float32) features and (N, 1) targets, as a DataBundle."""
    try:
        from sklearn.datasets import load_diabetes
    except ImportError:
        raise DataError("dataset 'diabetes' needs scikit-learn: pip install -e '.[regression]'") from None
    from distill.data.table import table_bundle
    from distill.data.tabular import sklearn_split

    x_all, y_all = load_diabetes(return_X_y=True)
    x = torch.as_tensor(x_all, dtype=torch.float64)
    y = torch.as_tensor(y_all, dtype=torch.float64).unsqueeze(1)
    idx = sklearn_split(len(x), val_size, seed, "diabetes", 66)
    # Statistics from the training split only, so nothing about val/test leaks into training.
    return table_bundle("diabetes", {s: x[i] for s, i in idx.items()}, {s: y[i] for s, i in idx.items()},
                        ["progression"], regression=True)


def load_diabetes_splits(val_size: int, seed: int):
    """(train, val, test, meta): (features, targets) pairs of :func:`diabetes_bundle`, for older callers."""
    bundle = diabetes_bundle(val_size, seed)
    pair = lambda s: (s.inputs, s.targets)  # noqa: E731
    return pair(bundle.train), pair(bundle.val), pair(bundle.test), bundle.meta
