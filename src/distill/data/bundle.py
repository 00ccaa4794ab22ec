"""A dataset ready for training: normalised float tensors split into train / val / test."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from distill.config.schema import DataConfig
from distill.data.augment import BatchAugment
from distill.data.fashion_mnist import CLASSES, load_fashion_mnist
from distill.data.lazy import take
from distill.data.registry import dataset_spec, register_dataset
from distill.errors import DataError


@dataclass
class Split:
    inputs: Tensor
    targets: Tensor

    def __len__(self) -> int:
        return len(self.targets)

    def head(self, n: int | None) -> Split:
        return self if n is None else Split(take(self.inputs, slice(0, n)), self.targets[:n])

    def select(self, index) -> Split:
        """The rows ``index`` (files stay on disk for lazy inputs)."""
        return Split(take(self.inputs, index), self.targets[index])


@dataclass
class DataBundle:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    class_names: list[str]
    augment: BatchAugment | None = None
    meta: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.inputs.shape[1:])


def carve_validation(split: Split, val_size: int, seed: int) -> tuple[Split, Split]:
    if val_size >= len(split):
        raise DataError(f"data.val_size={val_size} leaves no training data out of {len(split)} samples")
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:val_size], order[val_size:]
    return split.select(train_idx), split.select(val_idx)


def _as_tensor(value, what: str, role: str) -> Tensor:
    if isinstance(value, Tensor):
        tensor = value
    else:
        try:  # numpy arrays (and lists) of numbers
            tensor = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise DataError(f"from_tensors: the {role} {what} are {type(value).__name__}, not a tensor or "
                            f"numpy array ({exc})") from None
    if tensor.dtype == torch.float64:  # numpy's default; models train in float32
        tensor = tensor.float()
    return tensor


def as_split(value, role: str) -> Split:
    """A Split from a Split or an ``(inputs, targets)`` pair of tensors or numpy arrays."""
    if isinstance(value, Split):
        return value
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise DataError(f"from_tensors: {role} must be a Split or an (inputs, targets) pair, "
                        f"got {type(value).__name__}")
    inputs, targets = _as_tensor(value[0], "inputs", role), _as_tensor(value[1], "targets", role)
    if not targets.is_floating_point():
        targets = targets.long()
    if len(inputs) != len(targets):
        raise DataError(f"from_tensors: the {role} split has {len(inputs)} inputs but {len(targets)} targets")
    return Split(inputs, targets)


def from_tensors(name: str, train, test, num_classes: int | None = None, val_size: int = 0,
                 val=None, seed: int = 0, augment: BatchAugment | None = None,
                 class_names: list[str] | None = None) -> DataBundle:
    """Build a bundle from user data: each split a ``Split`` or an ``(X, y)`` pair of tensors or numpy arrays
    (the validation split is carved from train when not given)."""
    train, test = as_split(train, "train"), as_split(test, "test")
    val = None if val is None else as_split(val, "val")
    if val is None:
        if val_size <= 0:
            raise DataError("give a validation split or val_size > 0")
        train, val = carve_validation(train, val_size, seed)
    classes = num_classes or int(torch.cat([train.targets, val.targets, test.targets]).max()) + 1
    return DataBundle(name, train, val, test, classes, class_names or [str(i) for i in range(classes)], augment)


@register_dataset("diabetes", kind="regression", named=True)
def load_diabetes_bundle(cfg: DataConfig, teacher_path: str | None = None) -> DataBundle:
    """scikit-learn's diabetes regression data (task: regression)."""
    from distill.data.diabetes import diabetes_bundle

    bundle = diabetes_bundle(cfg.val_size, cfg.split_seed)  # num_classes: the one regression output
    bundle.train, bundle.test = bundle.train.head(cfg.train_subset), bundle.test.head(cfg.test_subset)
    return bundle


def _text_loader(cfg: DataConfig, teacher_path: str | None = None) -> DataBundle:
    from distill.data.text_bundle import load_text_data  # tokenizers are imported only for text runs

    return load_text_data(cfg, teacher_path)


register_dataset("sst2", kind="text", named=True, reads_unlabeled=True, summary="SST-2 sentence sentiment (2 classes), see data.text")(
    _text_loader)
register_dataset("trec", kind="text", named=True, reads_unlabeled=True, summary="TREC question types (6 classes), see data.text")(
    _text_loader)
register_dataset("subj", kind="text", named=True, reads_unlabeled=True,
                 summary="SUBJ subjectivity of review sentences (2 classes; val and test carved), see data.text")(
    _text_loader)
register_dataset("mpqa", kind="text", named=True, reads_unlabeled=True,
                 summary="MPQA opinion polarity of phrases (2 classes; val and test carved), see data.text")(
    _text_loader)
register_dataset("text_files", kind="text", reads_unlabeled=True, summary="your own sentence files: data.text.train/val/test")(
    _text_loader)


def _lm_loader(kind: str):
    def load(cfg: DataConfig, teacher_path: str | None = None) -> DataBundle:
        from distill.data.lm_data import load_lm_data  # tokenizers are imported only for language-model runs

        return load_lm_data(cfg, teacher_path, kind)

    return load


register_dataset("lm_jsonl", kind="lm", task="causal_lm",
                 summary="prompt/response or chat-messages JSONL for language models, see data.lm")(_lm_loader("jsonl"))
register_dataset("lm_text", kind="lm", task="causal_lm",
                 summary="plain text files for language models (loss on every token), see data.lm")(_lm_loader("text"))


@register_dataset("spoken_words", kind="audio", named=True)
def load_spoken_words_bundle(cfg: DataConfig, teacher_path: str | None = None) -> DataBundle:
    """Synthetic spoken words (20 classes, espeak-ng) as log-mels with SpecAugment, see data.speech."""
    from distill.data.speech_bundle import load_speech_bundle

    return load_speech_bundle(cfg)


def _tabular_loader(cfg: DataConfig, teacher_path: str | None = None) -> DataBundle:
    from distill.data.tabular import load_tabular_bundle

    return load_tabular_bundle(cfg)


register_dataset("breast_cancer", kind="tabular", named=True,
                 summary="scikit-learn's breast cancer data (569 tumours, 30 features, 2 classes)")(_tabular_loader)
register_dataset("wine", kind="tabular", named=True,
                 summary="scikit-learn's wine data (178 wines, 13 features, 3 classes)")(_tabular_loader)
register_dataset("digits", kind="image", named=True,
                 summary="scikit-learn's 8x8 digits (1,797 images, 10 classes)")(_tabular_loader)


@register_dataset("fashion_mnist", kind="image", named=True)
def load_fashion_mnist_bundle(cfg: DataConfig, teacher_path: str | None = None) -> DataBundle:
    """Fashion-MNIST (10 classes of 28x28 clothing images), normalised, with crop/flip augmentation."""
    raw = load_fashion_mnist(cfg.root)
    # Normalise once up front; padding for crops uses the value a black pixel maps to.
    mean, std = 0.2860, 0.3530
    to_float = lambda images: ((images.float() / 255.0 - mean) / std).unsqueeze(1)  # noqa: E731
    full = Split(to_float(raw["train_images"]), raw["train_labels"].long())
    train, val = carve_validation(full, cfg.val_size, cfg.split_seed)
    if cfg.train_subset is not None:
        train = train.head(cfg.train_subset)
    test = Split(to_float(raw["test_images"]), raw["test_labels"].long()).head(cfg.test_subset)
    augment = None
    if cfg.augment is not None and (cfg.augment.crop_padding > 0 or cfg.augment.hflip):
        augment = BatchAugment(cfg.augment.crop_padding, cfg.augment.hflip, fill=(0.0 - mean) / std)
    return DataBundle("fashion_mnist", train, val, test, len(CLASSES), list(CLASSES), augment,
                      meta={"mean": mean, "std": std})


def _image_folder_loader(cfg: DataConfig, teacher_path: str | None = None) -> DataBundle:
    from distill.data.image_folder import load_image_folder

    return load_image_folder(cfg, teacher_path)


def _table_loader(cfg: DataConfig, teacher_path: str | None = None) -> DataBundle:
    from distill.data.table import load_table

    return load_table(cfg, teacher_path)


register_dataset("table", kind="tabular", reads_unlabeled=True, task_of=lambda cfg: cfg.table.task,
                 summary="your table: CSV, Parquet or JSONL, features and a label (data.table; docs/data.md)")(
    _table_loader)
def _audio_folder_loader(cfg: DataConfig, teacher_path: str | None = None) -> DataBundle:
    from distill.data.audio_files import load_audio_folder

    return load_audio_folder(cfg, teacher_path)


register_dataset("audio_folder", kind="audio", reads_unlabeled=True,
                 summary="your folders of clips, root/<class>/<clip>.wav, as log-mels (data.audio; docs/data.md)")(
    _audio_folder_loader)
def _hf_dataset_loader(cfg: DataConfig, teacher_path: str | None = None) -> DataBundle:
    from distill.data.hf_dataset import load_hf_dataset

    return load_hf_dataset(cfg, teacher_path)


def _hf_dataset_kind(cfg: DataConfig) -> str:
    from distill.data.hf_dataset import input_kind

    return input_kind(cfg)


register_dataset("hf_dataset", kind="image", reads_unlabeled=True, kind_of=_hf_dataset_kind,
                 summary="a local Hugging Face dataset: images, text or audio (data.hf; docs/data.md)")(
    _hf_dataset_loader)
register_dataset("image_folder", kind="image", reads_unlabeled=True,
                 summary="your folders of images, root/<class>/<image> (data.images; docs/data.md)")(
    _image_folder_loader)


def load_data(cfg: DataConfig, teacher_path: str | None = None) -> DataBundle:
    """The configured dataset (see ``distill.data.registry``); text datasets are tokenised with the
    teacher's tokenizer (``teacher_path``). ``data.labeled_subset`` / ``labels_per_class`` then keep
    that many labelled training samples (``data.unlabeled: rest``: the others join the unlabelled pool)."""
    from distill.data.unlabeled import apply_label_budget, check_unlabeled_source

    spec = dataset_spec(cfg.dataset)
    check_unlabeled_source(cfg, spec)
    bundle = spec.loader(cfg, teacher_path)
    apply_label_budget(bundle, cfg)
    return bundle
