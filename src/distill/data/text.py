"""Sentence-classification data: read labelled sentences, split them, turn them into token ids.

Three file formats, chosen by suffix: ``.txt`` (``LABEL SENTENCE`` per line, the format of
the shared SST-2 and TREC files), ``.csv`` and ``.jsonl`` (named text and label columns).
A batch's inputs are one LongTensor of token ids, padded to ``max_length``; the attention
mask is ``ids != pad_id``, so the generic trainer and in-memory batcher need no changes.
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from distill.errors import DataError

TEXT_DIR_ENV = "DISTILL_TEXT_DIR"
PROJECT_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_TEXT_DIR = PROJECT_ROOT.parent / "shared" / "data" / "text"
# Known datasets: file stems under the text directory, and class names.
KNOWN = {
    "sst2": {"train": "sst2.train.txt", "val": "sst2.dev.txt", "test": "sst2.test.txt",
             "classes": ["negative", "positive"]},
    "trec": {"train": "trec.train.txt", "val": None, "test": "trec.test.txt",
             "classes": ["DESC", "ENTY", "ABBR", "HUM", "LOC", "NUM"]},
    # No splits shipped (usually 10-fold cross-validation): val and test are carved with data.split_seed.
    "subj": {"train": "subj.all.txt", "val": None, "test": None, "classes": ["subjective", "objective"]},
    "mpqa": {"train": "mpqa.all.txt", "val": None, "test": None, "classes": ["negative", "positive"]},
}


class BlankRowsWarning(UserWarning):
    """Rows with a label and no sentence were skipped (``data.text.blank_rows: skip``)."""


@dataclass
class Sentences:
    texts: list[str]
    labels: list[int]
    # Line numbers of the rows that had a label but no sentence and were skipped.
    blank_lines: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, index) -> Sentences:
        return Sentences([self.texts[i] for i in index], [self.labels[i] for i in index])


BLANK_ROW_POLICIES = ("skip", "error")
SHOWN_LINES = 10  # line numbers named in a warning or error; the count covers the rest


def _line_list(lines: list[int]) -> str:
    shown = ", ".join(map(str, lines[:SHOWN_LINES]))
    return shown + (f" and {len(lines) - SHOWN_LINES} more" if len(lines) > SHOWN_LINES else "")


def report_blank_rows(path: Path, lines: list[int], policy: str) -> None:
    """Warn (``skip``) or fail (``error``) about rows with a label and no sentence, naming their lines."""
    if not lines:
        return
    rows = "row" if len(lines) == 1 else "rows"
    if policy == "error":
        raise DataError(f"{path}: {len(lines)} {rows} with a label and no sentence (line {_line_list(lines)}); "
                        f"remove them, or set data.text.blank_rows: skip to skip them")
    warnings.warn(f"{path}: skipped {len(lines)} {rows} with a label and no sentence (line {_line_list(lines)}); "
                  f"set data.text.blank_rows: error to refuse such files", BlankRowsWarning, stacklevel=2)


def text_root(root: str | os.PathLike | None = None) -> Path:
    """``root``, else $DISTILL_TEXT_DIR, else ``../shared/data/text`` next to the project root."""
    return Path(root or os.environ.get(TEXT_DIR_ENV) or DEFAULT_TEXT_DIR)


def _label(raw, where: str, label_names: list[str] | None) -> int:
    text = str(raw).strip()
    if label_names is not None and text in label_names:
        return label_names.index(text)
    try:
        return int(text)
    except ValueError:
        known = f"; known labels: {', '.join(label_names)}" if label_names else " (labels must be integers)"
        raise DataError(f"{where}: unknown label {text!r}{known}") from None


def _read_txt(path: Path, label_names) -> Sentences:
    texts, labels, blank = [], [], []
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            label, _, sentence = line.strip().partition(" ")
            if not sentence.strip():
                try:  # a valid label with nothing after it is a blank example, anything else malformed
                    _label(label, f"{path}:{number}", label_names)
                except DataError:
                    raise DataError(f"{path}:{number}: expected 'LABEL SENTENCE', got {line[:80]!r}") from None
                blank.append(number)
                continue
            labels.append(_label(label, f"{path}:{number}", label_names))
            texts.append(sentence.strip())
    return Sentences(texts, labels, blank)


def _rows(path: Path):
    if path.suffix == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as f:
            for number, row in enumerate(csv.DictReader(f), 2):
                yield number, row
        return
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: invalid JSON ({exc.msg}): {line.strip()[:80]!r}") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {line.strip()[:80]!r}")
            yield number, row


def _read_table(path: Path, text_column: str, label_column: str, label_names) -> Sentences:
    texts, labels, blank = [], [], []
    for number, row in _rows(path):
        missing = [c for c in (text_column, label_column) if row.get(c) in (None, "")]
        if missing == [text_column] or (not missing and not str(row[text_column]).strip()):
            _label(row[label_column], f"{path}:{number}", label_names)
            blank.append(number)
            continue
        if missing:
            raise DataError(f"{path}:{number}: no value for column(s) {', '.join(missing)} in {str(row)[:80]}")
        texts.append(str(row[text_column]).strip())
        labels.append(_label(row[label_column], f"{path}:{number}", label_names))
    return Sentences(texts, labels, blank)


def read_sentences(path: str | os.PathLike, text_column: str = "text", label_column: str = "label",
                   label_names: list[str] | None = None, blank_rows: str = "skip") -> Sentences:
    """Read one file (.txt ``LABEL SENTENCE``, .csv or .jsonl); errors name the file and line.

    Rows with a label and no sentence (public sets have a few) are skipped with a
    ``BlankRowsWarning`` naming their lines (``blank_rows="skip"``) or refused (``"error"``);
    their line numbers are kept in ``Sentences.blank_lines``.
    """
    if blank_rows not in BLANK_ROW_POLICIES:
        raise ValueError(f"blank_rows must be one of {BLANK_ROW_POLICIES}, got {blank_rows!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"text file not found: {path}")
    if path.suffix in (".csv", ".jsonl", ".json"):
        data = _read_table(path, text_column, label_column, label_names)
    else:
        data = _read_txt(path, label_names)
    report_blank_rows(path, data.blank_lines, blank_rows)
    if len(data) == 0:
        raise DataError(f"{path} holds no examples")
    return data


def check_labels(splits: dict[str, Sentences], num_classes: int | None) -> int:
    """The number of classes; every label must lie in 0..num_classes-1 and train must see each."""
    seen = max(max(s.labels) for s in splits.values()) + 1
    classes = num_classes or seen
    for name, split in splits.items():
        bad = [y for y in split.labels if not 0 <= y < classes]
        if bad:
            raise DataError(f"{name} split has label {bad[0]} outside 0..{classes - 1}")
    return classes


def seeded_split(data: Sentences, fraction: float, seed: int) -> tuple[Sentences, Sentences]:
    """(rest, carved): ``fraction`` of the examples, drawn with a fixed seed, become the carved split."""
    n_carve = max(1, round(len(data) * fraction))
    if n_carve >= len(data):
        raise DataError(f"splitting {len(data)} examples with fraction {fraction} leaves nothing to train on")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed)).tolist()
    return data.take(order[n_carve:]), data.take(order[:n_carve])


def tokenize(tokenizer, texts: list[str], max_length: int) -> tuple[Tensor, dict]:
    """Fixed-length token ids (N, max_length) and length statistics before truncation."""
    full = tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
    lengths = torch.tensor([len(ids) for ids in full], dtype=torch.float)
    pad_id = tokenizer.pad_token_id
    ids = torch.full((len(texts), max_length), pad_id, dtype=torch.long)
    for i, row in enumerate(full):
        if len(row) > max_length:  # keep the closing [SEP] so the sequence stays well formed
            row = row[: max_length - 1] + row[-1:]
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    stats = {
        "max_length": max_length,
        "mean_tokens": float(lengths.mean()) if len(lengths) else 0.0,
        "p95_tokens": float(lengths.quantile(0.95)) if len(lengths) else 0.0,
        "longest": int(lengths.max()) if len(lengths) else 0,
        "truncated_fraction": float((lengths > max_length).float().mean()) if len(lengths) else 0.0,
    }
    return ids, stats


class BucketedBatches:
    """Shuffled batches of sentences of similar length: less padding, so much less compute.

    Each epoch draws a permutation, cuts it into pools of ``pool`` batches, sorts each pool by
    length and serves its batches in random order. Same interface as ``InMemoryBatches``.
    """

    def __init__(self, inputs: Tensor, targets: Tensor, batch_size: int, pad_id: int = 0, seed: int = 0,
                 pool: int = 50):
        self.inputs, self.targets, self.batch_size = inputs, targets, batch_size
        self.lengths = (inputs != pad_id).sum(1).cpu()
        self.seed, self.pool = seed, pool

    def __len__(self) -> int:
        return -(-len(self.inputs) // self.batch_size)

    def epoch(self, epoch: int):
        from distill.data.batches import epoch_generator
        from distill.types import Batch

        generator = epoch_generator(self.seed, epoch)
        order = torch.randperm(len(self.inputs), generator=generator)
        size = self.batch_size * self.pool
        batches = []
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            chunk = chunk[torch.argsort(self.lengths[chunk], stable=True)]
            batches += list(chunk.split(self.batch_size))
        for i in torch.randperm(len(batches), generator=generator).tolist():
            index = batches[i]
            dev = index.to(self.inputs.device)
            yield Batch(inputs=self.inputs[dev], targets=self.targets[dev], index=index)


def is_token_ids(inputs: Tensor) -> bool:
    """Right-padded sentences of token ids, shape (N, L), as the text data gives them."""
    return inputs.dim() == 2 and not inputs.is_floating_point()


def length_order(inputs: Tensor, pad_id: int = 0) -> Tensor:
    """Row indices of the sentences, shortest first (stable). Text models drop a batch's all-padding
    columns, so batches taken in this order cost about their own length, not the longest one's."""
    return torch.argsort((inputs != pad_id).sum(1).cpu(), stable=True)


@torch.inference_mode()
def predict_by_length(model, inputs: Tensor, pad_id: int = 0, batch_size: int = 256) -> Tensor:
    """Logits in input order, computed on length-sorted batches (trimmed padding)."""
    was_training = model.training
    model.eval()
    order = length_order(inputs, pad_id)
    out = torch.empty(0)
    try:
        chunks = [model(inputs[idx.to(inputs.device)]).float().cpu() for idx in order.split(batch_size)]
        out = torch.cat(chunks)
    finally:
        model.train(was_training)
    result = torch.empty_like(out)
    result[order] = out
    return result
