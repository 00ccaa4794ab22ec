"""Build a DataBundle of token ids from a text dataset config (SST-2, TREC or the user's files)."""

from __future__ import annotations

from pathlib import Path

import torch

from distill.config.schema import DataConfig
from distill.data.bundle import DataBundle, Split
from distill.data.text import (
    KNOWN,
    Sentences,
    check_labels,
    read_sentences,
    seeded_split,
    text_root,
    tokenize,
)
from distill.data.text_augment import UNLABELLED, TransferSet
from distill.data.unlabeled import REST
from distill.errors import DataError


def _files(cfg: DataConfig) -> dict[str, Path | None]:
    root = text_root(cfg.text.root)
    if cfg.dataset in KNOWN:
        known = KNOWN[cfg.dataset]
        return {s: (root / known[s] if known[s] else None) for s in ("train", "val", "test")}
    if not cfg.text.train:
        raise DataError("data.dataset text_files needs data.text.train (and optionally val and test)")
    resolve = lambda p: (Path(p) if Path(p).is_absolute() or cfg.text.root is None else root / p)  # noqa: E731
    return {s: (resolve(getattr(cfg.text, s)) if getattr(cfg.text, s) else None) for s in ("train", "val", "test")}


def read_splits(cfg: DataConfig) -> tuple[dict[str, Sentences], list[str] | None]:
    """train / val / test sentences: the files as given, missing splits carved from train (seeded)."""
    text = cfg.text
    names = text.label_names or (KNOWN[cfg.dataset]["classes"] if cfg.dataset in KNOWN else None)
    read = lambda p: read_sentences(p, text.text_column, text.label_column, text.label_names,  # noqa: E731
                                    text.blank_rows)
    files = _files(cfg)
    train = read(files["train"])
    train_blank = train.blank_lines
    test = read(files["test"]) if files["test"] else None
    if test is None:
        train, test = seeded_split(train, text.test_fraction, cfg.split_seed + 1)
    val = read(files["val"]) if files["val"] else None
    if val is None:
        train, val = seeded_split(train, text.val_fraction, cfg.split_seed)
    if cfg.train_subset is not None:
        train = train.take(range(min(cfg.train_subset, len(train))))
    if cfg.test_subset is not None:
        test = test.take(range(min(cfg.test_subset, len(test))))
    train.blank_lines = train_blank  # the train file's skipped rows (carved splits came from it)
    return {"train": train, "val": val, "test": test}, names


def data_vocabulary(id_tensors: list[torch.Tensor], tokenizer) -> list[int]:
    """Sorted token ids that occur in ``id_tensors``, plus the tokenizer's special tokens."""
    seen = torch.unique(torch.cat([t.reshape(-1) for t in id_tensors])).tolist()
    return sorted(set(seen) | set(tokenizer.all_special_ids))


def read_unlabeled_sentences(path: str, text_column: str = "text") -> list[str]:
    """An unlabelled pool of sentences: a .txt file of one sentence a line, or a .csv/.jsonl text column."""
    from distill.data.text import _rows

    p = Path(path)
    if not p.is_file():
        raise DataError(f"data.unlabeled: text file not found: {p}")
    if p.suffix in (".csv", ".jsonl", ".json"):
        texts = []
        for number, row in _rows(p):
            if text_column not in row:
                raise DataError(f"{p}:{number}: no column '{text_column}' (data.text.text_column) in {str(row)[:80]}")
            texts.append(str(row[text_column] or "").strip())
    else:
        texts = [line.strip() for line in p.read_text(encoding="utf-8").splitlines()]
    texts = [t for t in texts if t]
    if not texts:
        raise DataError(f"data.unlabeled: {p} holds no sentences")
    return texts


def token_bundle(name: str, texts: dict[str, list[str]], labels: dict[str, list[int]], class_names: list[str],
                 cfg: DataConfig, teacher_path: str | None = None, pool: list[str] | None = None,
                 meta: dict | None = None) -> DataBundle:
    """Sentences per split -> token ids with the teacher's (or data.text.tokenizer's) tokenizer, and the
    unlabelled pool: the transfer set's augmented sentences (data.text.transfer_set) plus ``pool``."""
    from distill.models.hf import load_tokenizer

    tokenizer = load_tokenizer(cfg.text.tokenizer or teacher_path)
    max_length = cfg.text.max_length
    tensors, stats = {}, {}
    for split, sentences in texts.items():
        ids, stats[split] = tokenize(tokenizer, sentences, max_length)
        tensors[split] = Split(ids, torch.tensor(labels[split], dtype=torch.long))
    meta = {
        "text": True,
        "lengths": stats,
        **(meta or {}),
        "sentences": dict(texts),
        "model_context": {"vocab_size": len(tokenizer), "pad_id": tokenizer.pad_token_id,
                          "unk_id": tokenizer.unk_token_id, "teacher_path": teacher_path},
        "transfer": None,
    }
    unlabelled = []
    transfer = cfg.text.transfer_set
    if transfer is not None and transfer.size_multiplier > 0:
        augmenter = TransferSet(transfer.mask_prob, transfer.swap_prob, transfer.ngram_prob, transfer.max_ngram,
                                mask_token=tokenizer.mask_token or "[MASK]", seed=transfer.seed)
        unlabelled += augmenter.fit(texts["train"]).generate(texts["train"], transfer.size_multiplier)
    unlabelled += pool or []
    if unlabelled:
        ids, stats["transfer"] = tokenize(tokenizer, unlabelled, max_length)
        meta["transfer"] = Split(ids, torch.full((len(unlabelled),), UNLABELLED, dtype=torch.long))
        meta["sentences"]["transfer"] = unlabelled
    # The tokens a student with `vocabulary: data` keeps: those of the training data and transfer set.
    seen = [tensors["train"].inputs] + ([meta["transfer"].inputs] if meta["transfer"] is not None else [])
    meta["model_context"]["data_vocabulary"] = data_vocabulary(seen, tokenizer)
    return DataBundle(name, tensors["train"], tensors["val"], tensors["test"], len(class_names),
                      class_names, augment=None, meta=meta)


def load_text_data(cfg: DataConfig, teacher_path: str | None = None) -> DataBundle:
    splits, names = read_splits(cfg)
    num_classes = check_labels(splits, len(names) if names else None)
    class_names = list(names) if names else [str(i) for i in range(num_classes)]
    pool = None
    if cfg.unlabeled not in (None, REST):
        pool = read_unlabeled_sentences(cfg.unlabeled, cfg.text.text_column)
    # rows with a label and no sentence skipped in each split's file (train: also the carved splits')
    blank = {"blank_rows_skipped": {name: len(s.blank_lines) for name, s in splits.items()}}
    return token_bundle(cfg.dataset, {n: s.texts for n, s in splits.items()},
                        {n: s.labels for n, s in splits.items()}, class_names, cfg, teacher_path, pool, blank)
