"""data.dataset: table -- a CSV, Parquet or JSONL file of feature columns and a label column.

Classification (labels are class names or numbers; the classes are ``data.table.class_names`` or
the sorted labels of the training file) or regression (a real-valued target, standardised with the
training split's statistics; ``meta["target_std"]`` turns errors back into its units). Features are
standardised with the training split's mean and standard deviation. val and test are files of the
same kind or carved from train. The unlabelled pool (``data.unlabeled``) is a file with the same
feature columns; its label column, if any, is ignored. scikit-learn's small sets
(``data/tabular.py``, ``data/diabetes.py``) are tables too: they build their arrays and share
:func:`table_bundle` with this loader.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from distill.config.schema import DataConfig, TableConfig
from distill.data.bundle import DataBundle, Split
from distill.data.file_splits import carve_indices
from distill.data.unlabeled import REST, add_unlabeled
from distill.errors import DataError

READERS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
           ".json": "jsonl"}


def read_table(path: str | Path, option: str = "data.table.train"):
    """A pandas DataFrame of a .csv/.tsv, .parquet or .jsonl file; a missing or unreadable file is a DataError."""
    import pandas as pd

    path = Path(path)
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{option}: {path} is not a table file; give a .csv, .parquet or .jsonl file")
    if not path.is_file():
        raise DataError(f"{option}: {path} does not exist")
    try:
        if kind == "csv":
            return pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
        if kind == "parquet":
            return pd.read_parquet(path)
        return pd.read_json(path, lines=True)
    except Exception as exc:  # noqa: BLE001 - pandas raises many types for a malformed file
        raise DataError(f"{path}: not a readable {kind} table ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def feature_matrix(frame, columns: list[str], path) -> Tensor:
    """(N, F) float64 features; a missing, non-numeric or blank column is an error naming it."""
    import pandas as pd

    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: no column '{missing[0]}' (columns: {', '.join(map(str, frame.columns))}); "
                        f"fix data.table.features or the file")
    for c in columns:
        if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])):
            raise DataError(f"{path}: feature column '{c}' is not numeric (e.g. {frame[c].iloc[0]!r}); "
                            f"encode it as numbers or leave it out of data.table.features")
        blank = frame[c].isna().to_numpy().nonzero()[0]
        if len(blank):
            raise DataError(f"{path}: feature column '{c}' is blank in {len(blank)} row(s) (the first: data row "
                            f"{int(blank[0]) + 1}); fill or drop those rows")
    return torch.from_numpy(frame[columns].to_numpy(dtype="float64", copy=True))


def _label_values(frame, o: TableConfig, path) -> list:
    if o.label not in frame.columns:
        raise DataError(f"{path}: no label column '{o.label}' (columns: {', '.join(map(str, frame.columns))}); "
                        f"set data.table.label")
    values = frame[o.label]
    blank = values.isna().to_numpy().nonzero()[0]
    if len(blank):
        raise DataError(f"{path}: the label column '{o.label}' is blank in {len(blank)} row(s) (the first: row "
                        f"{int(blank[0]) + 1} of the data); give every row a label, or put unlabelled rows in "
                        f"data.unlabeled")
    return values.tolist()


def class_index(labels_by_split: dict[str, list], given: list[str] | None, files: dict[str, str]) -> tuple[
        dict[str, Tensor], list[str]]:
    """Class indices per split and the class names: the given names, or the sorted training labels."""
    if given:
        names = list(given)
    else:
        seen = sorted(set(labels_by_split["train"]), key=lambda v: (isinstance(v, str), v))
        names = [str(v) for v in seen]
    index = {name: i for i, name in enumerate(names)}
    out = {}
    for split, labels in labels_by_split.items():
        rows = []
        for row, value in enumerate(labels):
            key = _label_key(value)
            if key not in index and given and isinstance(value, int | float) and float(value).is_integer() \
                    and 0 <= int(value) < len(names):
                key = names[int(value)]  # labels given as class numbers of the named classes
            if key not in index:
                raise DataError(f"{files[split]}: label '{value}' (row {row + 1}) is outside the classes "
                                f"({', '.join(names[:20])}{', ...' if len(names) > 20 else ''}); fix it or "
                                f"list it in data.table.class_names")
            rows.append(index[key])
        out[split] = torch.tensor(rows, dtype=torch.long)
    return out, names


def _label_key(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def table_bundle(name: str, x: dict[str, Tensor], y: dict[str, Tensor], class_names: list[str],
                 standardize: bool = True, shape: tuple[int, ...] | None = None, regression: bool = False,
                 meta: dict | None = None) -> DataBundle:
    """Standardise features (and a regression target) with the training split's statistics and bundle.

    ``x`` / ``y``: float64 features and targets per split (train, val, test, optionally unlabeled).
    """
    meta = dict(meta or {})
    train = x["train"]
    mean, std = (train.mean(0), train.std(0).clamp_min(1e-6)) if standardize else (0.0, 1.0)
    targets = dict(y)
    if regression:
        y_mean, y_std = (y["train"].mean(), y["train"].std()) if standardize else (torch.tensor(0.0), torch.tensor(1.0))
        targets = {k: ((v - y_mean) / y_std).float() for k, v in y.items()}
        meta.update({"target_mean": float(y_mean), "target_std": float(y_std)})

    def part(split: str) -> Split:
        inputs = ((x[split] - mean) / std).float()
        return Split(inputs.reshape(len(inputs), *shape) if shape else inputs, targets[split])

    bundle = DataBundle(name, part("train"), part("val"), part("test"), len(class_names), class_names, meta=meta)
    if "unlabeled" in x:
        pool = ((x["unlabeled"] - mean) / std).float()
        add_unlabeled(bundle, pool.reshape(len(pool), *shape) if shape else pool)
    return bundle


def load_table(cfg: DataConfig, teacher_path: str | None = None) -> DataBundle:
    """Your table of features and a label: CSV, Parquet or JSONL (data.table; docs/data.md)."""
    o = cfg.table
    if not o.train:
        raise DataError("data.dataset table needs data.table.train: a .csv, .parquet or .jsonl file")
    frames = {"train": read_table(o.train)}
    files = {"train": o.train}
    for split in ("val", "test"):
        if getattr(o, split):
            frames[split] = read_table(getattr(o, split), f"data.table.{split}")
            files[split] = getattr(o, split)
    features = o.features or [c for c in frames["train"].columns if c != o.label]
    if o.label in features:
        raise DataError(f"data.table.features lists the label column '{o.label}'; leave it out")
    labels = {s: _label_values(f, o, files[s]) for s, f in frames.items()}
    x = {s: feature_matrix(f, features, files[s]) for s, f in frames.items()}
    idx = carve_indices(len(x["train"]), o.val_fraction, o.test_fraction, cfg.split_seed, "val" not in x,
                        "test" not in x, "rows")
    full_x, full_labels = x["train"], labels["train"]
    for split, rows in idx.items():
        if split == "train" or split not in x:
            x[split] = full_x[rows]
            labels[split] = [full_labels[i] for i in rows]
            files.setdefault(split, o.train)
    regression = o.task == "regression"
    if regression:
        y = {}
        for split, values in labels.items():
            try:
                y[split] = torch.tensor([float(v) for v in values], dtype=torch.float64).unsqueeze(1)
            except (TypeError, ValueError):
                bad = next(v for v in values if not _is_number(v))
                raise DataError(f"{files[split]}: label '{bad}' of column '{o.label}' is not a number, but "
                                f"data.table.task is regression; use task classification") from None
        names = [o.label]
    else:
        y, names = class_index(labels, o.class_names, files)
    if cfg.unlabeled not in (None, REST):
        x["unlabeled"] = feature_matrix(read_table(cfg.unlabeled, "data.unlabeled"), features, cfg.unlabeled)
    bundle = table_bundle("table", x, y, names, o.standardize, regression=regression, meta={"features": features})
    bundle.train = bundle.train.head(cfg.train_subset)
    bundle.test = bundle.test.head(cfg.test_subset)
    return bundle


def _is_number(value) -> bool:
    try:
        float(value)
        return True
    except (TypeError, ValueError):
        return False
