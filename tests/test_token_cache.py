"""The causal-LM top-k teacher cache: encoding, on-disk round trip, gather order, checksums, keys, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from distill.errors import ConfigError, DataError
from distill.knowledge.token_cache import (
    BUILDING,
    CachedTokenTeacher,
    TokenCacheOptions,
    build_token_cache,
    encode_topk,
    loss_token_counts,
    token_cache_key,
    token_layout,
)
from distill.methods import build_method
from distill.types import Batch, Outputs

SAMPLES, LENGTH, VOCAB = 7, 6, 20


class TinyLM(torch.nn.Module):
    """Token ids (B, T) -> logits (B, T, V); the teacher callable returns them at the loss positions."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = torch.nn.Embedding(VOCAB, 8)
        self.head = torch.nn.Linear(8, VOCAB)
        self.calls = 0

    def forward(self, ids):
        return self.head(torch.tanh(self.embed(ids))) * 3

    def __call__(self, batch: Batch) -> Outputs:  # the teacher contract: (N, V) at the loss tokens
        self.calls += 1
        return Outputs(self.forward(batch.inputs)[batch.targets != -100])


@pytest.fixture
def data():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCAB, (SAMPLES, LENGTH), generator=g)
    targets = torch.randint(0, VOCAB, (SAMPLES, LENGTH), generator=g)
    starts = [1, 2, 0, 4, LENGTH, 3, 1]  # the prompt is masked; sample 4 has no loss token at all
    for i, start in enumerate(starts):
        targets[i, :start] = -100
    targets[0, -1] = -100  # padding
    return ids, targets


def batches(data, order=(3, 6, 0, 5, 1, 4, 2), size=3):
    ids, targets = data
    order = torch.tensor(order)
    return [Batch(ids[order[i : i + size]], targets[order[i : i + size]], index=order[i : i + size])
            for i in range(0, len(order), size)]


def build(teacher, data, directory, log=None, weights=None, **options):
    opts = TokenCacheOptions(**{"k": 4, "dtype": "float32", **options})
    key = token_cache_key(weights or teacher, "tokenizer-a", list(data), opts)
    return build_token_cache(teacher, batches(data), loss_token_counts(data[1]), key, opts, directory,
                             log=log or (lambda _: None))


def expected_topk(teacher, data, index, k=4, temperature=1.0):
    ids, targets = data
    with torch.no_grad():
        return encode_topk(teacher(Batch(ids[index], targets[index])).logits, k, temperature)


def test_encode_topk_keeps_the_full_softmax_log_probabilities_and_the_exact_tail():
    torch.manual_seed(0)
    logits = torch.randn(5, VOCAB) * 4
    logits[0, 3] = 60.0  # one token holds all but ~1e-25 of the mass: log(1 - sum p) would be log(0)
    top = encode_topk(logits, 3, temperature=2.0)
    z = logits.double().numpy() / 2.0
    for r in range(5):
        order = np.argsort(-z[r])
        logp = z[r] - np.log(np.exp(z[r] - z[r].max()).sum()) - z[r].max()
        assert top.indices[r].tolist() == order[:3].tolist()
        assert np.allclose(top.logprobs[r].numpy(), logp[order[:3]], atol=1e-5)
        tail = np.log(np.exp(logp[order[3:]] - logp[order[3]]).sum()) + logp[order[3]]
        assert top.tail_logprob[r].item() == pytest.approx(tail, rel=1e-5)
    assert top.indices.dtype == torch.int32 and top.temperature == 2.0
    everything = encode_topk(logits, VOCAB + 5)
    assert everything.indices.shape == (5, VOCAB) and torch.isneginf(everything.tail_logprob).all()


def test_bytes_per_token_at_k_32_with_float16_is_196():
    counts = np.full(1000, 100)
    layout = token_layout(counts, TokenCacheOptions(k=32))
    row_bytes = sum(np.dtype(d).itemsize * int(np.prod(s[1:])) for name, (s, d) in layout.items()
                    if s[0] == counts.sum())
    assert row_bytes == 32 * 2 + 32 * 4 + 4 == 196


@pytest.mark.parametrize("in_memory", [True, False])
def test_round_trip_gathers_each_batch_in_its_loss_position_order(data, tmp_path, in_memory):
    teacher = TinyLM()
    cache = build(teacher, data, None if in_memory else tmp_path / "c", memory_mb=1e6 if in_memory else 0)
    assert cache.tokens == int((data[1] != -100).sum()) and cache.k == 4
    for index in ([5, 0, 3], [4], [6, 2, 1, 0], [2, 4, 2]):  # any order, an empty sample, a repeat
        index = torch.tensor(index)
        got, want = cache.gather(index), expected_topk(teacher, data, index)
        assert torch.equal(got.indices, want.indices.long())
        assert torch.equal(got.logprobs, want.logprobs) and torch.equal(got.tail_logprob, want.tail_logprob)


def test_a_float16_cache_rounds_only_the_log_probabilities(data):
    teacher = TinyLM()
    cache = build(teacher, data, None, dtype="float16")
    index = torch.tensor([1, 3])
    got, want = cache.gather(index), expected_topk(teacher, data, index)
    assert torch.equal(got.indices, want.indices.long()) and torch.equal(got.tail_logprob, want.tail_logprob)
    assert torch.allclose(got.logprobs, want.logprobs, atol=2e-3) and not torch.equal(got.logprobs, want.logprobs)


def test_a_valid_cache_is_reused_and_a_corrupt_one_rebuilt(data, tmp_path):
    teacher, directory, logs = TinyLM(), tmp_path / "c", []
    build(teacher, data, directory)
    calls = teacher.calls
    build(teacher, data, directory, log=logs.append)
    assert teacher.calls == calls and "reusing" in logs[-1]
    path = directory / "logprobs.npy"
    raw = bytearray(path.read_bytes())
    raw[-7] ^= 0xFF  # one flipped byte in the stored log-probabilities
    path.write_bytes(bytes(raw))
    cache = build(teacher, data, directory, log=logs.append, memory_mb=0)
    assert teacher.calls > calls and "building" in logs[-1]
    index = torch.tensor(range(SAMPLES))
    assert torch.equal(cache.gather(index).logprobs, expected_topk(teacher, data, index).logprobs)


@pytest.mark.parametrize("change", ["k", "temperature", "teacher", "tokenizer", "data"])
def test_a_cache_of_another_key_is_rebuilt(data, tmp_path, change):
    teacher, directory = TinyLM(), tmp_path / "c"
    build(teacher, data, directory)
    other_teacher = TinyLM(seed=1) if change == "teacher" else teacher
    opts = TokenCacheOptions(k=5 if change == "k" else 4, temperature=2.0 if change == "temperature" else 1.0,
                             dtype="float32")
    ids, targets = data
    other_data = (ids.flip(1), targets) if change == "data" else data
    key = token_cache_key(other_teacher, "tokenizer-b" if change == "tokenizer" else "tokenizer-a",
                          list(other_data), opts)
    assert key != token_cache_key(teacher, "tokenizer-a", list(data), TokenCacheOptions(k=4, dtype="float32"))
    logs = []
    calls = other_teacher.calls
    cache = build_token_cache(other_teacher, batches(other_data), loss_token_counts(targets), key, opts, directory,
                              log=logs.append)
    assert "building" in logs[-1] and other_teacher.calls > calls
    index = torch.tensor([2, 5])
    want = expected_topk(other_teacher, other_data, index, k=opts.k, temperature=opts.temperature)
    assert torch.equal(cache.gather(index).logprobs, want.logprobs) and cache.temperature == opts.temperature


class Interrupted(Exception):
    pass


def test_an_interrupted_build_resumes_where_it_stopped_and_a_changed_one_restarts(data, tmp_path):
    teacher, directory = TinyLM(), tmp_path / "c"

    def dies_on_third_batch(batch):
        if teacher.calls == 2:
            raise Interrupted
        return teacher(batch)

    with pytest.raises(Interrupted):
        build(dies_on_third_batch, data, directory, weights=teacher)
    assert (directory / BUILDING).is_file() and not (directory / "meta.json").exists()
    logs = []
    cache = build(teacher, data, directory, log=logs.append, memory_mb=0)
    assert "resuming" in logs[-1] and teacher.calls == 3  # only the third batch was left
    assert not (directory / BUILDING).exists() and json.loads((directory / "meta.json").read_text())["k"] == 4
    index = torch.tensor(range(SAMPLES))
    assert torch.equal(cache.gather(index).logprobs, expected_topk(teacher, data, index).logprobs)

    teacher.calls = 0
    with pytest.raises(Interrupted):
        build(dies_on_third_batch, data, directory, weights=teacher, k=3)
    build(teacher, data, directory, log=logs.append, k=5)  # another key: the partial k=3 rows are not reused
    assert "building" in logs[-1] and teacher.calls == 2 + 3


def test_batches_must_cover_every_sample_with_the_laid_out_tokens(data):
    teacher = TinyLM()
    opts = TokenCacheOptions(k=4)
    counts = loss_token_counts(data[1])
    with pytest.raises(DataError, match="missed 1 sample"):
        build_token_cache(teacher, batches(data, order=(0, 1, 2, 3, 4, 5)), counts, "k", opts, None, log=print)
    counts[0] += 1
    with pytest.raises(DataError, match="loss-token counts"):
        build_token_cache(teacher, batches(data), counts, "k", opts, None, log=print)


def test_a_k_larger_than_the_vocabulary_is_one_clear_error(data):
    opts = TokenCacheOptions(k=VOCAB + 1)
    with pytest.raises(ConfigError, match=f"cache.top_k {VOCAB + 1} is larger than the teacher's vocabulary "
                                          f"[(]{VOCAB} tokens[)]; set cache.top_k to at most {VOCAB}"):
        build_token_cache(TinyLM(), batches(data), loss_token_counts(data[1]), "k", opts, None, log=print)


def test_the_cached_teacher_serves_top_k_outputs_that_the_methods_use(data):
    ids, targets = data
    teacher = TinyLM()
    cached = CachedTokenTeacher(build(teacher, data, None, k=VOCAB), live=teacher)
    index = torch.tensor([6, 1, 3])
    batch = Batch(ids[index], targets[index], index=index)
    out = cached(batch)
    assert out.logits is None and out.topk.indices.shape == (int((targets[index] != -100).sum()), VOCAB)
    student = TinyLM(seed=2).forward(ids[index])[targets[index] != -100]
    method = build_method("forward_kl")
    with_cache = method.losses(Outputs(student), out, batch)["forward_kl"]
    live = method.losses(Outputs(student), teacher(batch), batch)["forward_kl"]
    assert with_cache.item() == pytest.approx(live.item(), rel=1e-5)  # k = V: the full distribution
    assert cached(Batch(ids[:2], targets[:2])).logits is not None  # no sample positions: the live teacher
    with pytest.raises(DataError, match="data changed since the cache was built"):
        cached(Batch(ids[index], torch.zeros_like(targets[index]), index=index))
