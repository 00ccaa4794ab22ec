"""Train / val / test for the file-based datasets: given files or folders, or carved from train.

One seeded permutation carves test first, then validation (``split_seed``), as the text files do;
a split given as its own folder or file is read instead. Shared by image_folder, audio_folder,
table and hf_dataset.
"""

from __future__ import annotations

import torch

from distill.errors import DataError


def carve_indices(n: int, val_fraction: float, test_fraction: float, seed: int, carve_val: bool = True,
                  carve_test: bool = True, what: str = "samples") -> dict[str, list[int]]:
    """{"train", "val", "test"} index lists of ``n`` samples; a split not carved gets []."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_test = max(1, round(n * test_fraction)) if carve_test else 0
    n_val = max(1, round(n * val_fraction)) if carve_val else 0
    if n_test + n_val >= n:
        raise DataError(f"{n} training {what} are too few to carve validation/test splits of them "
                        f"(fractions {val_fraction if carve_val else 0} and {test_fraction if carve_test else 0}); "
                        f"give more data, or separate val and test data")
    return {"test": sorted(order[:n_test]), "val": sorted(order[n_test:n_test + n_val]),
            "train": sorted(order[n_test + n_val:])}


def check_classes(found: list[str], classes: list[str], where: str) -> list[int]:
    """Map a val/test folder's class names to the training classes' indices; an unknown one is an error."""
    index = {name: i for i, name in enumerate(classes)}
    for name in found:
        if name not in index:
            raise DataError(f"{where}: class '{name}' is outside the training classes ({', '.join(classes)}); "
                            f"rename or remove it, or add it to the training data")
    return [index[name] for name in found]


def labelled_file_splits(section, list_fn, seed: int, what: str) -> tuple[dict[str, tuple[list, list[int]]], list[str]]:
    """{"train"|"val"|"test": (files, labels)} and the class names of class-folder data.

    ``list_fn(root, option) -> (files, labels, classes)`` reads one folder; ``section`` has train, val,
    test and the fractions (``config.schema.SplitFiles``).
    """
    files, labels, classes = list_fn(section.train, "train")
    parts = {}
    for name in ("val", "test"):
        folder = getattr(section, name)
        if folder:
            f, y, found = list_fn(folder, name)
            mapping = check_classes(found, classes, str(folder))
            parts[name] = (f, [mapping[i] for i in y])
    idx = carve_indices(len(files), section.val_fraction, section.test_fraction, seed, "val" not in parts,
                        "test" not in parts, what)
    for name, rows in idx.items():
        if name not in parts:
            parts[name] = ([files[i] for i in rows], [labels[i] for i in rows])
    return parts, classes
