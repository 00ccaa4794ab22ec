"""Text loader: the three formats, seeded splits, clear errors, tokenisation, bucketed batches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from distill.config.schema import DataConfig
from distill.data.text import (
    BlankRowsWarning,
    BucketedBatches,
    Sentences,
    check_labels,
    read_sentences,
    seeded_split,
    text_root,
    tokenize,
)
from distill.data.text_bundle import read_splits
from distill.errors import DataError


def test_reads_label_sentence_lines(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("1 a good movie\n\n0 a bad , bad film\n")
    data = read_sentences(path)
    assert data.texts == ["a good movie", "a bad , bad film"]
    assert data.labels == [1, 0]


def test_reads_csv_and_jsonl_with_named_columns(tmp_path):
    csv_path = tmp_path / "d.csv"
    csv_path.write_text('sentence,kind\n"fine, really",pos\nawful,neg\n')
    data = read_sentences(csv_path, text_column="sentence", label_column="kind", label_names=["neg", "pos"])
    assert data.texts == ["fine, really", "awful"] and data.labels == [1, 0]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(json.dumps({"t": "what is it", "y": 3}) + "\n" + json.dumps({"t": "who", "y": "0"}) + "\n")
    data = read_sentences(jsonl, text_column="t", label_column="y")
    assert data.texts == ["what is it", "who"] and data.labels == [3, 0]


def test_bad_line_names_file_line_and_content(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("1 fine\nonlyoneword\n")
    with pytest.raises(DataError, match=r"d\.txt:2: expected 'LABEL SENTENCE', got 'onlyoneword'"):
        read_sentences(path)


def test_unknown_label_is_an_error(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("1 fine\nmaybe so so\n")
    with pytest.raises(DataError, match=r"d\.txt:2: unknown label 'maybe'"):
        read_sentences(path)
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("text,label\nok,pos\nhm,meh\n")
    with pytest.raises(DataError, match=r"d\.csv:3: unknown label 'meh'; known labels: neg, pos"):
        read_sentences(csv_path, label_names=["neg", "pos"])


def test_out_of_range_label_and_bad_json_and_missing_column(tmp_path):
    with pytest.raises(DataError, match="test split has label 7 outside 0..1"):
        check_labels({"train": Sentences(["a"], [1]), "test": Sentences(["b"], [7])}, 2)
    bad_json = tmp_path / "d.jsonl"
    bad_json.write_text('{"text": "ok", "label": 1}\n{"text": broken\n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: invalid JSON"):
        read_sentences(bad_json)
    no_col = tmp_path / "e.jsonl"
    no_col.write_text('{"text": "ok"}\n')
    with pytest.raises(DataError, match=r"e\.jsonl:1: no value for column\(s\) label"):
        read_sentences(no_col)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="holds no examples"):
        read_sentences(empty)
    with pytest.raises(DataError, match="text file not found"):
        read_sentences(tmp_path / "nope.txt")


def test_seeded_split_is_disjoint_and_repeatable():
    data = Sentences([f"s{i}" for i in range(100)], [i % 2 for i in range(100)])
    rest, carved = seeded_split(data, 0.2, seed=3)
    again_rest, again_carved = seeded_split(data, 0.2, seed=3)
    assert len(carved) == 20 and len(rest) == 80
    assert not set(rest.texts) & set(carved.texts)
    assert carved.texts == again_carved.texts
    assert seeded_split(data, 0.2, seed=4)[1].texts != carved.texts


def test_text_files_config_carves_missing_splits(tmp_path):
    rows = "".join(f"{i % 3} sentence number {i}\n" for i in range(50))
    (tmp_path / "all.txt").write_text(rows)
    cfg = DataConfig(dataset="text_files", text={"root": str(tmp_path), "train": "all.txt",
                                                 "val_fraction": 0.2, "test_fraction": 0.1})
    splits, names = read_splits(cfg)
    assert names is None
    assert [len(splits[s]) for s in ("train", "val", "test")] == [36, 9, 5]
    texts = [t for s in splits.values() for t in s.texts]
    assert len(set(texts)) == 50


@pytest.mark.skipif(not (text_root() / "trec.train.txt").is_file(), reason="shared TREC files not present")
def test_trec_gets_a_dev_split_carved_from_train():
    splits, names = read_splits(DataConfig(dataset="trec"))
    assert names == ["DESC", "ENTY", "ABBR", "HUM", "LOC", "NUM"]
    assert len(splits["train"]) + len(splits["val"]) == 5452
    assert len(splits["val"]) == 545 and len(splits["test"]) == 500


class SpaceTokenizer:
    """A stand-in tokenizer: one id per word, [CLS]=1 ... [SEP]=2, pad 0."""

    pad_token_id = 0

    def __call__(self, texts, add_special_tokens=True, truncation=False):
        return {"input_ids": [[1, *[10 + len(w) for w in t.split()], 2] for t in texts]}


def test_tokenize_pads_truncates_and_reports_lengths():
    ids, stats = tokenize(SpaceTokenizer(), ["a bb", "a bb ccc dddd eeeee ffffff"], max_length=5)
    assert ids.dtype == torch.long and ids.shape == (2, 5)
    assert ids[0].tolist() == [1, 11, 12, 2, 0]
    assert ids[1].tolist() == [1, 11, 12, 13, 2]  # truncated, closing [SEP] kept
    assert stats["longest"] == 8 and stats["truncated_fraction"] == 0.5
    assert stats["mean_tokens"] == pytest.approx(6.0)


def test_bucketed_batches_cover_every_sample_once_with_similar_lengths():
    lengths = torch.randint(1, 30, (200,))
    inputs = (torch.arange(30)[None, :] < lengths[:, None]).long() * 5
    source = BucketedBatches(inputs, torch.arange(200), batch_size=16, seed=1, pool=4)
    seen = []
    spread = []
    for batch in source.epoch(0):
        seen += batch.index.tolist()
        assert torch.equal(batch.targets, batch.index)
        lens = (batch.inputs != 0).sum(1)
        spread.append(int(lens.max() - lens.min()))
    assert sorted(seen) == list(range(200)) and len(source) == 13
    assert sum(spread) / len(spread) < 10  # random batches would span ~25 tokens


def test_text_config_validates_keys_and_ranges():
    from distill.config.load import load_config
    from distill.errors import ConfigError

    cfg = load_config(data={"data": {"dataset": "trec", "text": {"max_length": 32, "transfer_set": {}}}})
    assert cfg.data.text.transfer_set.size_multiplier == 4 and cfg.data.text.max_length == 32
    with pytest.raises(ConfigError, match="unknown key 'data.text.max_lenght'"):
        load_config(data={"data": {"dataset": "sst2", "text": {"max_lenght": 32}}})
    with pytest.raises(ConfigError, match="data.text.transfer_set.mask_prob"):
        load_config(data={"data": {"dataset": "sst2", "text": {"transfer_set": {"mask_prob": 2}}}})


def test_text_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DISTILL_TEXT_DIR", str(tmp_path))
    assert text_root() == tmp_path
    assert text_root("/elsewhere") == Path("/elsewhere")
    monkeypatch.delenv("DISTILL_TEXT_DIR")
    assert text_root().parts[-3:] == ("shared", "data", "text")


def test_blank_rows_are_skipped_counted_and_named_or_refused(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("1 a good movie\n0 \n1\n\n0 a bad film\n")  # lines 2 and 3: a label, no sentence
    with pytest.warns(BlankRowsWarning, match=r"d\.txt: skipped 2 rows with a label and no sentence \(line 2, 3\)"):
        data = read_sentences(path)
    assert data.texts == ["a good movie", "a bad film"] and data.labels == [1, 0]
    assert data.blank_lines == [2, 3]
    with pytest.raises(DataError, match=r"d\.txt: 2 rows with a label and no sentence \(line 2, 3\); "
                                        r".*data\.text\.blank_rows: skip"):
        read_sentences(path, blank_rows="error")
    many = tmp_path / "many.txt"
    many.write_text("1 fine\n" + "0\n" * 12)
    with pytest.warns(BlankRowsWarning, match=r"skipped 12 rows .*line 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 and 2 more"):
        read_sentences(many)
    table = tmp_path / "d.csv"
    table.write_text('text,label\nfine,1\n"  ",0\n,1\nok,0\n')
    with pytest.warns(BlankRowsWarning, match=r"d\.csv: skipped 2 rows .*\(line 3, 4\)"):
        assert read_sentences(table).texts == ["fine", "ok"]
    path.write_text("x \n1 ok\n")  # not a label: a malformed line, not a blank example
    with pytest.raises(DataError, match=r"d\.txt:1: expected 'LABEL SENTENCE', got 'x '"):
        read_sentences(path)


def test_blank_rows_policy_in_config_and_counts_in_splits(tmp_path):
    rows = "".join(f"{i % 2} sentence number {i}\n" for i in range(40)) + "1 \n"
    (tmp_path / "all.txt").write_text(rows)
    cfg = DataConfig(dataset="text_files", text={"root": str(tmp_path), "train": "all.txt"})
    with pytest.warns(BlankRowsWarning):
        splits, _ = read_splits(cfg)
    assert splits["train"].blank_lines == [41] and sum(len(s) for s in splits.values()) == 40
    strict = DataConfig(dataset="text_files", text={"root": str(tmp_path), "train": "all.txt", "blank_rows": "error"})
    with pytest.raises(DataError, match=r"all\.txt: 1 row with a label and no sentence \(line 41\)"):
        read_splits(strict)


@pytest.mark.skipif(not (text_root() / "mpqa.all.txt").is_file(), reason="shared SUBJ/MPQA files not present")
def test_subj_and_mpqa_get_val_and_test_carved_with_a_fixed_seed():
    with pytest.warns(BlankRowsWarning, match=r"mpqa\.all\.txt: skipped 3 rows .*\(line 6415, 7294, 10606\)"):
        splits, names = read_splits(DataConfig(dataset="mpqa"))
    assert names == ["negative", "positive"]
    assert [len(splits[s]) for s in ("train", "val", "test")] == [8589, 954, 1060]
    with pytest.warns(BlankRowsWarning):
        again, _ = read_splits(DataConfig(dataset="mpqa"))
    assert again["test"].texts == splits["test"].texts  # the same carve every time (data.split_seed)
    subj, names = read_splits(DataConfig(dataset="subj"))
    assert names == ["subjective", "objective"] and sum(len(s) for s in subj.values()) == 10000
