"""Language-model data (``task: causal_lm``): prompt/response or chat JSONL, and plain text files.

Every sample becomes right-padded ``input_ids`` (N, T) and shifted ``targets`` (N, T):
``targets[:, t]`` is the token to predict at position t (``input_ids[:, t + 1]``), and -100 where
there is no loss (the prompt, padding, the last position). JSONL rows are ``{"prompt", "response"}``
(``completion`` also accepted) or ``{"messages": [{"role", "content"}, ...]}``; with the tokenizer's
chat template (the default when it has one) the loss covers the assistant turns only. Plain text files
(``lm_text``) are one stream, cut into blocks of ``max_length`` tokens, with a loss on every token.
The prompt, each response and each text piece are tokenized on their own, so the prompt a student
generates from at evaluation is exactly the tokens it was trained to continue.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import Tensor

from distill.config.schema import DataConfig, LMDataConfig
from distill.data.batches import epoch_generator
from distill.data.bundle import DataBundle, Split
from distill.errors import DataError
from distill.types import Batch

IGNORE = -100


def _read_jsonl(path: Path) -> list[tuple[int, dict]]:
    if not path.is_file():
        raise DataError(f"{path}: no such file; set data.lm.train/val/test to JSONL files")
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON ({exc.msg}); each line must be one JSON object") \
                    from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: a {type(row).__name__}, not a JSON object with prompt/response "
                                f"or messages")
            rows.append((number, row))
    if not rows:
        raise DataError(f"{path}: no rows; give one JSON object per line")
    return rows


def _messages(row: dict, where: str) -> list[dict]:
    """The row as chat messages: ``messages`` as given, or prompt/response as one user and one assistant turn."""
    if "messages" in row:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages:
            raise DataError(f"{where}: 'messages' must be a non-empty list of {{role, content}}")
        for m in messages:
            if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                raise DataError(f"{where}: every message needs a string 'role' and 'content', got {m!r:.80}")
        if not any(m["role"] == "assistant" for m in messages):
            raise DataError(f"{where}: no assistant message, so nothing to learn; add one with role 'assistant'")
        return messages
    response = row.get("response", row.get("completion"))
    prompt = row.get("prompt")
    if not isinstance(prompt, str) or not isinstance(response, str):
        keys = ", ".join(sorted(row)) or "none"
        raise DataError(f"{where}: expected string fields 'prompt' and 'response' (or 'messages'), found keys {keys}")
    if not response.strip():
        raise DataError(f"{where}: the response is empty; remove the row or give a response")
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def _encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"] if text else []


def chat_pieces(tokenizer, messages: list[dict], where: str) -> list[tuple[str, bool]]:
    """The conversation as (text, has_loss) pieces of the chat template: the assistant turns have the loss."""
    pieces, done = [], ""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prefix = tokenizer.apply_chat_template(messages[:i], add_generation_prompt=True, tokenize=False)
        through = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not prefix.startswith(done) or not through.startswith(prefix):
            raise DataError(f"{where}: the tokenizer's chat template does not render a conversation as a prefix "
                            f"of its continuation, so the assistant tokens cannot be located; set "
                            f"data.lm.chat_template: false")
        pieces += [(prefix[len(done):], False), (through[len(prefix):], True)]
        done = through
    return pieces


def plain_pieces(tokenizer, messages: list[dict]) -> list[tuple[str, bool]]:
    """Without a chat template: the prompt, then the response and the end-of-text token (the loss)."""
    prompt = "\n".join(m["content"] for m in messages if m["role"] != "assistant")
    response = "\n".join(m["content"] for m in messages if m["role"] == "assistant")
    return [(prompt, False), (response, True)]


def encode_row(tokenizer, pieces: list[tuple[str, bool]], eos_id: int | None, add_eos: bool) -> tuple[list, list]:
    ids, loss = [], []
    for text, has_loss in pieces:
        tokens = _encode(tokenizer, text)
        ids += tokens
        loss += [has_loss] * len(tokens)
    if add_eos and eos_id is not None:
        ids.append(eos_id)
        loss.append(True)
    return ids, loss


def shifted(ids: list[int], loss: list[bool]) -> list[int]:
    """targets[t] = ids[t + 1] where token t + 1 has a loss, else -100; the last position has none."""
    return [ids[t + 1] if loss[t + 1] else IGNORE for t in range(len(ids) - 1)] + [IGNORE]


def pad(rows: list[tuple[list, list]], pad_id: int) -> Split:
    width = max(len(ids) for ids, _ in rows)
    inputs = torch.full((len(rows), width), pad_id, dtype=torch.long)
    targets = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, (ids, tgt) in enumerate(rows):
        inputs[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        targets[i, : len(tgt)] = torch.tensor(tgt, dtype=torch.long)
    return Split(inputs, targets)


def pack(samples: list[tuple[list, list]], block: int) -> list[tuple[list, list]]:
    """Samples concatenated into blocks of ``block`` tokens (the last one shorter); losses kept per token."""
    ids, loss = [t for s in samples for t in s[0]], [m for s in samples for m in s[1]]
    return [(ids[i : i + block], loss[i : i + block]) for i in range(0, len(ids), block)]


def jsonl_samples(path: Path, tokenizer, lm: LMDataConfig) -> tuple[list[tuple[list, list]], int]:
    """(ids, loss mask) per row of ``path``, and how many rows had no response token left after truncation."""
    use_template = lm.chat_template if lm.chat_template is not None else bool(getattr(tokenizer, "chat_template", None))
    if lm.chat_template and not getattr(tokenizer, "chat_template", None):
        raise DataError("data.lm.chat_template: true but the tokenizer has no chat template; set it to false")
    samples, dropped = [], 0
    for number, row in _read_jsonl(path):
        where = f"{path}:{number}"
        messages = _messages(row, where)
        if lm.system_prompt is not None and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": lm.system_prompt}, *messages]
        pieces = chat_pieces(tokenizer, messages, where) if use_template else plain_pieces(tokenizer, messages)
        ids, loss = encode_row(tokenizer, pieces, tokenizer.eos_token_id, add_eos=not use_template)
        ids, loss = ids[: lm.max_length], loss[: lm.max_length]
        if not any(loss[1:]):
            dropped += 1
            continue
        samples.append((ids, loss))
    return samples, dropped


def text_samples(path: Path, tokenizer, lm: LMDataConfig) -> tuple[list[tuple[list, list]], int]:
    """A plain text file: its non-empty lines, each ended by the end-of-text token, as blocks of max_length."""
    if not path.is_file():
        raise DataError(f"{path}: no such file; set data.lm.train/val/test to text files")
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    stream = []
    for line in lines:
        if line:
            ids = _encode(tokenizer, line) + ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else [])
            stream.append((ids, [True] * len(ids)))
    if not stream:
        raise DataError(f"{path}: no text")
    return [b for b in pack(stream, lm.max_length) if len(b[0]) > 1], 0


def _split_rows(samples: list, fraction: float, seed: int) -> tuple[list, list]:
    order = torch.randperm(len(samples), generator=torch.Generator().manual_seed(seed)).tolist()
    n = max(1, round(len(samples) * fraction))
    if n >= len(samples):
        raise DataError(f"carving {fraction:.0%} for a held-out split leaves no training rows out of {len(samples)}")
    return [samples[i] for i in order[n:]], [samples[i] for i in order[:n]]


def fingerprint(*splits: Split) -> str:
    h = hashlib.sha256()
    for s in splits:
        h.update(s.inputs.numpy().tobytes())
        h.update(s.targets.numpy().tobytes())
    return h.hexdigest()[:16]


def load_lm_data(cfg: DataConfig, teacher_path: str | None, kind: str) -> DataBundle:
    from distill.models.causal_lm import check_same_vocabulary, load_lm_tokenizer

    lm = cfg.lm
    if not lm.train:
        raise DataError(f"data.dataset: {cfg.dataset} needs data.lm.train (a {'JSONL' if kind == 'jsonl' else 'text'} "
                        f"file); see docs/llm.md")
    if lm.tokenizer:  # token i must mean the same to the data and to the teacher
        check_same_vocabulary(lm.tokenizer, teacher_path, "the data's tokenizer")
    tokenizer = load_lm_tokenizer(lm.tokenizer or teacher_path)
    read = jsonl_samples if kind == "jsonl" else text_samples
    parts, dropped = {}, 0
    for name in ("train", "val", "test"):
        if getattr(lm, name):
            parts[name], d = read(Path(getattr(lm, name)), tokenizer, lm)
            dropped += d
    if "test" not in parts:
        parts["train"], parts["test"] = _split_rows(parts["train"], lm.test_fraction, cfg.split_seed)
    if "val" not in parts:
        parts["train"], parts["val"] = _split_rows(parts["train"], lm.val_fraction, cfg.split_seed + 1)
    if lm.packing and kind == "jsonl":
        parts["train"] = [b for b in pack(parts["train"], lm.max_length) if any(b[1][1:])]
    for name, rows in parts.items():
        if not rows:
            raise DataError(f"data.lm: no {name} row keeps a response token within max_length {lm.max_length} "
                            f"({dropped} rows dropped); raise data.lm.max_length or shorten the prompts")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    splits = {k: pad([(ids, shifted(ids, loss)) for ids, loss in v], pad_id) for k, v in parts.items()}
    train = splits["train"].head(cfg.train_subset)
    test = splits["test"].head(cfg.test_subset)
    vocab = len(tokenizer)
    meta = {
        "lm": {"pad_id": pad_id, "eos_id": tokenizer.eos_token_id, "tokenizer": lm.tokenizer or teacher_path,
               "dropped_rows": dropped, "fingerprint": fingerprint(train, splits["val"], test),
               "response_tokens": int((train.targets != IGNORE).sum())},
        "model_context": {"teacher_path": teacher_path},
    }
    return DataBundle(f"{cfg.dataset}:{Path(lm.train).name}", train, splits["val"], test, vocab, [], None, meta)


# -- prompts and new responses (sequence-level KD, on-policy) ----------------------------------------------
def prompt_length(targets: Tensor) -> int:
    """Tokens before a sample's first loss token: its prompt (1 for plain text, a loss from the first token)."""
    return int((targets != IGNORE).nonzero()[0]) + 1


def prompts_of(inputs: Tensor, targets: Tensor) -> list[Tensor]:
    return [ids[: prompt_length(t)] for ids, t in zip(inputs, targets, strict=True)]


def with_responses(prompts: list[Tensor], responses: list[Tensor], pad_id: int) -> Split:
    """Prompt + response rows, right-padded, with the loss on the response tokens only."""
    rows = []
    for prompt, response in zip(prompts, responses, strict=True):
        ids = [*prompt.tolist(), *response.tolist()]
        loss = [False] * len(prompt) + [True] * len(response)
        rows.append((ids, shifted(ids, loss)))
    return pad(rows, pad_id)


# -- batches ------------------------------------------------------------------------------------------
def loss_width(targets: Tensor) -> int:
    """Columns up to the last position with a loss: later ones (padding, the final token) change nothing."""
    has = (targets != IGNORE).any(0).nonzero()
    return int(has[-1]) + 1 if len(has) else 1


def lm_batch(inputs: Tensor, targets: Tensor, index: Tensor | None = None) -> Batch:
    """A batch trimmed to its last loss position (right padding, causal: no attention mask needed)."""
    width = loss_width(targets)
    return Batch(inputs=inputs[:, :width], targets=targets[:, :width], index=index, attention_mask=None)


class LMBatches:
    """Shuffled batches of token sequences, each trimmed to its own longest loss position.

    ``buckets``: each pass's permutation is cut into pools of ``pool`` batches, each pool sorted by
    length (much less padding computed), and the pool's batches served in random order. Under
    torchrun each rank takes every ``world_size``-th row of a global batch. ``epoch_steps``: an
    epoch (one validation, one metrics line) is that many batches of one continuous stream of
    passes, so held-out numbers come at several points of a short run.
    """

    def __init__(self, inputs: Tensor, targets: Tensor, batch_size: int, seed: int = 0, buckets: bool = True,
                 pool: int = 16, rank: int = 0, world_size: int = 1, epoch_steps: int | None = None):
        self.inputs, self.targets, self.batch_size = inputs, targets, batch_size
        self.seed, self.buckets, self.pool, self.rank, self.world = seed, buckets, pool, rank, world_size
        self.epoch_steps = epoch_steps
        self.lengths = torch.tensor([loss_width(t[None]) for t in targets.cpu()])

    @property
    def batches_per_pass(self) -> int:
        return -(-len(self.inputs) // self.batch_size)

    def __len__(self) -> int:
        return self.epoch_steps or self.batches_per_pass

    def order(self, epoch: int) -> list[Tensor]:
        generator = epoch_generator(self.seed, epoch)
        order = torch.randperm(len(self.inputs), generator=generator)
        if not self.buckets:
            return list(order.split(self.batch_size))
        batches = []
        for start in range(0, len(order), self.batch_size * self.pool):
            chunk = order[start : start + self.batch_size * self.pool]
            batches += list(chunk[torch.argsort(self.lengths[chunk], stable=True)].split(self.batch_size))
        return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]

    def stream(self, epoch: int):
        """The batch indices of one epoch: a pass, or ``epoch_steps`` batches of the continuous stream."""
        if self.epoch_steps is None:
            yield from self.order(epoch)
            return
        passes: dict[int, list[Tensor]] = {}
        for b in range(epoch * self.epoch_steps, (epoch + 1) * self.epoch_steps):
            number, within = divmod(b, self.batches_per_pass)
            if number not in passes:
                passes = {number: self.order(number)}
            yield passes[number][within]

    def epoch(self, epoch: int):
        for index in self.stream(epoch):
            index = index[self.rank :: self.world] if self.world > 1 else index
            dev = index.to(self.inputs.device)
            yield lm_batch(self.inputs[dev], self.targets[dev], index)
