"""data.dataset: hf_dataset -- a local Hugging Face dataset: a ``save_to_disk`` folder or local data files.

``data.hf.path`` is a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``
(read with ``datasets.load_from_disk``), or a data file / folder of files that
``datasets.load_dataset`` reads (csv, json/jsonl, parquet). Splits are named by ``train_split``,
``val_split`` and ``test_split``; a missing val or test split is carved from train. The input
column holds images (PIL images or arrays; options of ``data.images``), text (tokenised as the
text datasets are; options of ``data.text``) or audio (``{array, sampling_rate}`` or arrays with
``data.hf.sample_rate``; log-mels as ``data.speech``, length ``data.audio.seconds``). Labels are a
``ClassLabel`` column (its names are the classes), or names / numbers (the sorted training labels).
The unlabelled pool ``data.unlabeled`` is another such dataset (its train split), labels not needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from distill.config.schema import DataConfig, HFDatasetConfig
from distill.data.bundle import DataBundle, Split
from distill.data.file_splits import carve_indices
from distill.data.image_files import ImageOptions, channel_stats, image_tensor, normalise, stack_same_size
from distill.data.unlabeled import REST, add_unlabeled
from distill.errors import DataError

FILE_BUILDERS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def open_dataset(path: str, option: str = "data.hf.path"):
    """A Dataset or DatasetDict from a save_to_disk folder or local data files."""
    try:
        import datasets
    except ImportError:
        raise DataError("data.dataset hf_dataset needs the datasets package: pip install datasets") from None
    p = Path(path)
    if not p.exists():
        raise DataError(f"{option}: {p} does not exist; give a save_to_disk folder or a data file")
    try:
        if p.is_dir() and any((p / name).is_file() for name in ("dataset_dict.json", "state.json")):
            return datasets.load_from_disk(str(p))
        if p.is_file():
            builder = FILE_BUILDERS.get(p.suffix.lower())
            if builder is None:
                raise DataError(f"{option}: {p} is not a data file datasets reads (.csv .json .jsonl .parquet)")
            return datasets.load_dataset(builder, data_files=str(p))
        return datasets.load_dataset(str(p))
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - datasets raises many types for a bad folder
        raise DataError(f"{p}: not a readable Hugging Face dataset ({type(exc).__name__}: "
                        f"{(str(exc).splitlines() or [''])[0][:200]})") from None


def split_rows(ds, o: HFDatasetConfig, seed: int) -> tuple[object, dict[str, tuple[str, list[int] | None]]]:
    """(a DatasetDict, {"train", "val", "test": (its split name, its rows, None = all)}): the named
    splits whole, the missing ones carved from train."""
    import datasets

    if isinstance(ds, datasets.Dataset):
        ds = datasets.DatasetDict({o.train_split: ds})
    if o.train_split not in ds:
        raise DataError(f"{o.path}: no split '{o.train_split}' (splits: {', '.join(ds)}); set data.hf.train_split")
    rows: dict[str, tuple[str, list[int] | None]] = {"train": (o.train_split, None)}
    for name, split in (("val", o.val_split), ("test", o.test_split)):
        if split and split in ds:
            rows[name] = (split, None)
    idx = carve_indices(len(ds[o.train_split]), o.val_fraction, o.test_fraction, seed, "val" not in rows,
                        "test" not in rows, "rows")
    for name, carved in idx.items():
        if name == "train" or name not in rows:
            rows[name] = (o.train_split, carved)
    return ds, rows


def check_columns(ds, columns: list[str], where: str) -> None:
    for column in columns:
        if column not in ds.column_names:
            raise DataError(f"{where}: no column '{column}' (columns: {', '.join(ds.column_names)}); set "
                            f"data.hf.input_column / label_column")


def modality(value, o: HFDatasetConfig) -> str:
    if o.modality != "auto":
        return o.modality
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict) and "array" in value:
        return "audio"
    if hasattr(value, "convert") and hasattr(value, "size"):  # a PIL image
        return "image"
    array = np.asarray(value)
    if array.ndim == 1:
        if o.sample_rate is None:
            raise DataError(f"{o.path}: column '{o.input_column}' holds 1-D arrays; for audio set "
                            f"data.hf.sample_rate (or modality: audio with {{array, sampling_rate}} values)")
        return "audio"
    return "image"


def input_kind(cfg: DataConfig) -> str:
    """"image", "text" or "audio": data.hf.modality, or what the training split's first input holds."""
    o = cfg.hf
    if o.modality != "auto":
        return o.modality
    if not o.path:
        return "image"
    ds = open_dataset(o.path)
    if hasattr(ds, "keys"):
        if o.train_split not in ds:
            raise DataError(f"{o.path}: no split '{o.train_split}' (splits: {', '.join(ds)}); set data.hf.train_split")
        ds = ds[o.train_split]
    check_columns(ds, [o.input_column], f"{o.path} ({o.train_split} split)")
    if len(ds) == 0:
        raise DataError(f"{o.path}: the {o.train_split} split is empty")
    return modality(ds[0][o.input_column], o)


def class_labels(parts: dict, o: HFDatasetConfig) -> tuple[dict[str, list[int]], list[str]]:
    from distill.data.table import class_index

    feature = parts["train"].features.get(o.label_column)
    names = list(feature.names) if hasattr(feature, "names") else None
    values = {split: ds[o.label_column] for split, ds in parts.items()}
    for split, vals in values.items():
        if any(v is None for v in vals):
            raise DataError(f"{o.path}: split {split} has rows without a label in '{o.label_column}'; give every "
                            f"row one, or put unlabelled rows in data.unlabeled")
    index, names = class_index(values, names, {s: f"{o.path} ({s} split)" for s in values})
    return {s: t.tolist() for s, t in index.items()}, names


def pil_images(values, options: ImageOptions, where: str) -> torch.Tensor:
    from PIL import Image

    images = []
    for value in values:
        if not hasattr(value, "convert"):
            array = np.asarray(value)
            if array.dtype != np.uint8:
                array = (np.clip(array, 0, 1) * 255).round().astype(np.uint8) if array.max() <= 1 else \
                    np.clip(array, 0, 255).astype(np.uint8)
            if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[2] not in (1, 3):
                array = array.transpose(1, 2, 0)  # CHW -> HWC
            value = Image.fromarray(array.squeeze(-1) if array.ndim == 3 and array.shape[2] == 1 else array)
        images.append(image_tensor(value, options, where))
    return stack_same_size(images, [f"{where} row {i}" for i in range(len(images))])


def waves(values, o: HFDatasetConfig, where: str) -> tuple[list[np.ndarray], list[int]]:
    clips, rates = [], []
    for value in values:
        if isinstance(value, dict):
            clips.append(np.asarray(value["array"], dtype=np.float32).reshape(-1))
            rates.append(int(value.get("sampling_rate") or o.sample_rate or 0))
        else:
            clips.append(np.asarray(value, dtype=np.float32).reshape(-1))
            rates.append(int(o.sample_rate or 0))
    if any(r <= 0 for r in rates):
        raise DataError(f"{where}: audio without a sampling rate; set data.hf.sample_rate")
    return clips, rates


def load_hf_dataset(cfg: DataConfig, teacher_path: str | None = None) -> DataBundle:
    """A local Hugging Face dataset: images, text or audio with a label column (data.hf; docs/data.md)."""
    o = cfg.hf
    if not o.path:
        raise DataError("data.dataset hf_dataset needs data.hf.path: a save_to_disk folder or local data files")
    whole, rows = split_rows(open_dataset(o.path), o, cfg.split_seed)
    parts = {name: whole[split] if r is None else whole[split].select(r) for name, (split, r) in rows.items()}
    for split, ds in parts.items():
        check_columns(ds, [o.input_column, o.label_column], f"{o.path} ({split} split)")
        if len(ds) == 0:
            raise DataError(f"{o.path}: the {split} split is empty")
    labels, names = class_labels(parts, o)
    pool_ds = pool_split = None
    if cfg.unlabeled not in (None, REST):
        pool_ds = open_dataset(cfg.unlabeled, "data.unlabeled")
        if hasattr(pool_ds, "keys"):  # a DatasetDict: its training split
            pool_split = o.train_split if o.train_split in pool_ds else next(iter(pool_ds))
            pool_ds = pool_ds[pool_split]
        check_columns(pool_ds, [o.input_column], f"{cfg.unlabeled}")
    kind = modality(parts["train"][0][o.input_column], o)
    if cfg.stream:  # images bigger than memory: rows decoded per batch by loader workers (data/hf_stream.py)
        if kind != "image":
            raise DataError(f"data.stream: true streams the images of an hf_dataset, but {o.path}'s column "
                            f"'{o.input_column}' holds {kind}; remove data.stream (it is held in memory)")
        return _streamed_image_bundle(rows, labels, names, cfg, pool_ds, pool_split)
    inputs = {split: ds[o.input_column] for split, ds in parts.items()}
    pool = pool_ds[o.input_column] if pool_ds is not None else None
    if kind == "text":
        from distill.data.text_bundle import token_bundle

        return token_bundle("hf_dataset", {s: [str(t) for t in v] for s, v in inputs.items()}, labels, names, cfg,
                            teacher_path, [str(t) for t in pool] if pool is not None else None)
    if kind == "audio":
        return _audio_bundle(inputs, labels, names, cfg, pool)
    return _image_bundle(inputs, labels, names, cfg, pool)


def _image_bundle(inputs, labels, names, cfg: DataConfig, pool) -> DataBundle:
    from distill.data.image_folder import image_options

    options = image_options(cfg.images)
    decoded = {s: pil_images(v, options, f"{cfg.hf.path} ({s} split)") for s, v in inputs.items()}
    sizes = {tuple(x.shape[1:]) for x in decoded.values()}
    if len(sizes) > 1:
        raise DataError(f"{cfg.hf.path}: the splits' images differ in size ({sorted(sizes)}); set data.images.resize")
    mean, std = (list(cfg.images.mean), list(cfg.images.std)) if cfg.images.mean else channel_stats(decoded["train"])
    splits = {s: Split(normalise(x, mean, std), torch.tensor(labels[s], dtype=torch.long)) for s, x in decoded.items()}
    pool = normalise(pil_images(pool, options, f"{cfg.unlabeled}"), mean, std) if pool is not None else None
    return image_bundle(splits, names, cfg, mean, std, pool)


def _streamed_image_bundle(rows, labels, names, cfg: DataConfig, pool_ds, pool_split) -> DataBundle:
    from distill.data.hf_stream import HFImageRow, row_addresses, source_of
    from distill.data.image_folder import image_options
    from distill.data.image_stream import lazy_decoded, streamed_splits

    o = cfg.hf
    options = image_options(cfg.images)
    decode = HFImageRow(o.input_column, options)
    described = f"hf_dataset {o.input_column} {options}"
    addresses = {name: (row_addresses(o.path, split, range(len(labels[name])) if r is None else r), labels[name])
                 for name, (split, r) in rows.items()}
    lazy, mean, std = streamed_splits(addresses, decode, described, cfg.images.mean, cfg.images.std, o.path,
                                      source_of)
    splits = {name: Split(inputs, targets) for name, (inputs, targets) in lazy.items()}
    pool = None
    if pool_ds is not None:
        pool = lazy_decoded(row_addresses(cfg.unlabeled, pool_split or o.train_split, range(len(pool_ds))), decode,
                            described, mean, std, source_of)
        if pool.sample_shape != splits["train"].inputs.sample_shape:
            raise DataError(f"data.unlabeled: {cfg.unlabeled}'s images are {pool.sample_shape} but the training "
                            f"images {splits['train'].inputs.sample_shape}; set data.images.resize so both match")
    return image_bundle(splits, names, cfg, mean, std, pool)


def image_bundle(splits: dict[str, Split], names: list[str], cfg: DataConfig, mean: list[float], std: list[float],
                 pool) -> DataBundle:
    """The hf_dataset bundle of normalised image splits (in memory or on disk), its augmentation and pool."""
    from distill.data.augment import BatchAugment

    augment = None
    if cfg.augment is not None and (cfg.augment.crop_padding > 0 or cfg.augment.hflip):
        augment = BatchAugment(cfg.augment.crop_padding, cfg.augment.hflip, fill=(0.0 - mean[0]) / std[0])
    bundle = DataBundle("hf_dataset", splits["train"].head(cfg.train_subset), splits["val"],
                        splits["test"].head(cfg.test_subset), len(names), names, augment,
                        meta={"images": {"mean": mean, "std": std}})
    if pool is not None:
        add_unlabeled(bundle, pool)
    return bundle


def _audio_bundle(inputs, labels, names, cfg: DataConfig, pool) -> DataBundle:
    from distill.data.audio_files import to_rate, waveform_bundle

    clips, rate = {}, cfg.audio.sample_rate
    for split, values in inputs.items():
        raw, rates = waves(values, cfg.hf, f"{cfg.hf.path} ({split} split)")
        rate = rate or rates[0]
        clips[split] = [to_rate(c, r, rate) for c, r in zip(raw, rates, strict=True)]
    pool_clips = None
    if pool is not None:
        raw, rates = waves(pool, cfg.hf, str(cfg.unlabeled))
        pool_clips = [to_rate(c, r, rate) for c, r in zip(raw, rates, strict=True)]
    return waveform_bundle("hf_dataset", clips, labels, names, rate, cfg, pool_clips)
