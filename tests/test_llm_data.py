"""Language-model data: response-only losses, shifted targets, chat templates, text blocks, batches, errors."""

from __future__ import annotations

import json

import pytest
import torch

from distill.config.schema import DataConfig
from distill.data.bundle import load_data
from distill.data.lm_data import IGNORE, LMBatches
from distill.errors import DataError
from tests.lm_helpers import tiny_llama_dir, tiny_tokenizer, write_pairs


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(tiny_llama_dir(tmp_path_factory.mktemp("lmdata")))


def data_cfg(dataset="lm_jsonl", **lm) -> DataConfig:
    return DataConfig(dataset=dataset, lm=lm)


def test_prompt_response_loss_is_on_the_response_only(tmp_path, model_dir):
    train = write_pairs(tmp_path / "train.jsonl", 12)
    data = load_data(data_cfg(train=str(train), val_fraction=0.2, test_fraction=0.2), model_dir)
    tok = tiny_tokenizer()
    ids, targets = data.train.inputs, data.train.targets
    assert ids.shape == targets.shape and ids.dtype == targets.dtype == torch.long
    for row_ids, row_t in zip(ids, targets, strict=True):
        keep = row_t != IGNORE
        # shifted: the target at t is the input at t + 1
        positions = keep.nonzero().squeeze(1)
        assert torch.equal(row_t[positions], row_ids[positions + 1])
        # the loss tokens are the response and the template's end of turn, nothing of the prompt
        text = tok.decode(row_t[keep])
        assert text.split()[0] in ("positive", "negative") and text.endswith("<eos>")
        assert "<|assistant|>" not in text and "review" not in text.split()[:2]
        prompt = tok.decode(row_ids[: positions[0] + 1])
        assert prompt.startswith("<|user|> is this review") and prompt.endswith("<|assistant|>")
    assert len(data.train) + len(data.val) + len(data.test) == 12
    assert data.num_classes == len(tok) and data.meta["lm"]["pad_id"] == 0


def test_chat_messages_every_assistant_turn_has_the_loss(tmp_path, model_dir):
    path = tmp_path / "chat.jsonl"
    row = {"messages": [{"role": "user", "content": "is this review positive"},
                        {"role": "assistant", "content": "positive"},
                        {"role": "user", "content": "what a film"},
                        {"role": "assistant", "content": "a fine story"}]}
    path.write_text("\n".join(json.dumps(row) for _ in range(4)))
    data = load_data(data_cfg(train=str(path), val=str(path), test=str(path)), model_dir)
    t = data.train.targets[0]
    assert tiny_tokenizer().decode(t[t != IGNORE]) == "positive <eos> a fine story <eos>"


def test_without_template_the_response_ends_with_eos(tmp_path, model_dir):
    train = write_pairs(tmp_path / "train.jsonl", 4)
    data = load_data(data_cfg(train=str(train), val=str(train), test=str(train), chat_template=False), model_dir)
    t = data.train.targets[0]
    words = tiny_tokenizer().decode(t[t != IGNORE]).split()
    assert words[0] == "positive" and words[-1] == "<eos>"


@pytest.mark.parametrize("line, message", [
    ("{not json", "train.jsonl:2: not valid JSON"),
    ('{"prompt": "a"}', "train.jsonl:2: expected string fields 'prompt' and 'response'"),
    ('{"messages": [{"role": "user", "content": "x"}]}', "train.jsonl:2: no assistant message"),
    ('[1, 2]', "train.jsonl:2: a list, not a JSON object"),
])
def test_malformed_rows_name_file_and_line(tmp_path, model_dir, line, message):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"prompt": "a film", "response": "good"}) + "\n" + line + "\n")
    with pytest.raises(DataError, match=message):
        load_data(data_cfg(train=str(path), val=str(path), test=str(path)), model_dir)


def test_text_files_are_blocks_with_a_loss_on_every_token(tmp_path, model_dir):
    path = tmp_path / "a.txt"
    path.write_text("the film is good\n\nthe plot is boring and dull\n" * 3)
    data = load_data(data_cfg("lm_text", train=str(path), val=str(path), test=str(path), max_length=8), model_dir)
    ids, t = data.train.inputs, data.train.targets
    assert ids.shape[1] == 8
    full = ids[:-1]  # every full block: a loss at every position but the last
    assert (t[:-1, :-1] != IGNORE).all() and (t[:, -1] == IGNORE).all()
    assert torch.equal(t[:-1, :-1], full[:, 1:])


def test_truncation_drops_rows_without_response_and_packing_fills_blocks(tmp_path, model_dir):
    train = write_pairs(tmp_path / "train.jsonl", 8)
    with pytest.raises(DataError, match="raise data.lm.max_length"):  # the prompt alone fills 6 tokens
        load_data(data_cfg(train=str(train), val=str(train), test=str(train), max_length=6), model_dir)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text(train.read_text() + json.dumps({"prompt": "film", "response": "good"}) + "\n")
    short = load_data(data_cfg(train=str(mixed), val=str(mixed), test=str(mixed), max_length=6), model_dir)
    assert len(short.train) == 1 and short.meta["lm"]["dropped_rows"] == 3 * 8
    packed = load_data(data_cfg(train=str(train), val=str(train), test=str(train), packing=True, max_length=40),
                       model_dir)
    plain = load_data(data_cfg(train=str(train), val=str(train), test=str(train), max_length=40), model_dir)
    assert len(packed.train) < len(plain.train)
    assert (packed.train.targets != IGNORE).sum() >= (plain.train.targets != IGNORE).sum() - len(packed.train)


def test_batches_cover_every_row_once_trimmed_to_their_longest_loss(tmp_path, model_dir):
    train = write_pairs(tmp_path / "train.jsonl", 12)
    data = load_data(data_cfg(train=str(train), val=str(train), test=str(train)), model_dir)
    for buckets in (True, False):
        source = LMBatches(data.train.inputs, data.train.targets, 5, seed=1, buckets=buckets)
        seen = []
        for batch in source.epoch(0):
            seen += batch.index.tolist()
            keep = (batch.targets != IGNORE).any(0)
            assert bool(keep[-1])  # trimmed right after the last loss position
            full = data.train.targets[batch.index]
            assert (full != IGNORE).sum() == (batch.targets != IGNORE).sum()
        assert sorted(seen) == list(range(len(data.train)))
        assert len(source) == 3
    assert [b.index.tolist() for b in source.epoch(1)] == [b.index.tolist() for b in source.epoch(1)]


def test_a_data_tokenizer_other_than_the_teachers_is_refused(tmp_path, model_dir):
    from distill.errors import CompatibilityError

    other = tiny_llama_dir(tmp_path, "words", layers=1, extra_words=("zebra",))
    train = write_pairs(tmp_path / "train.jsonl", 4)
    with pytest.raises(CompatibilityError, match="the data's tokenizer .* different vocabularies"):
        load_data(data_cfg(train=str(train), tokenizer=str(other)), model_dir)


def test_epoch_steps_cut_one_continuous_stream_of_passes(tmp_path, model_dir):
    train = write_pairs(tmp_path / "train.jsonl", 12)
    data = load_data(data_cfg(train=str(train), val=str(train), test=str(train)), model_dir)
    passes = LMBatches(data.train.inputs, data.train.targets, 5, seed=2)
    stream = [i for e in range(2) for b in passes.epoch(e) for i in b.index.tolist()]
    short = LMBatches(data.train.inputs, data.train.targets, 5, seed=2, epoch_steps=2)
    assert len(short) == 2
    cut = [i for e in range(3) for b in short.epoch(e) for i in b.index.tolist()]
    assert cut == stream  # 3 epochs of 2 batches = the same 6 batches as 2 passes of 3


def test_missing_train_file_is_one_line(tmp_path, model_dir):
    with pytest.raises(DataError, match="needs data.lm.train"):
        load_data(data_cfg(), model_dir)
    with pytest.raises(DataError, match="no such file"):
        load_data(data_cfg(train=str(tmp_path / "nope.jsonl")), model_dir)
