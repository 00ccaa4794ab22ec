"""Language-model evaluation: perplexity, token KL to the teacher, top-1 agreement, generations, ROUGE-L, speed.

All token metrics are means over the loss positions (``targets != -100``: the reference responses
of lm_jsonl, every token of lm_text). Batches are taken shortest first and trimmed, with at most
``max_tokens`` loss tokens each, so the (N, V) logits of a 49k vocabulary stay a few hundred MB.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from distill.data.lm_data import IGNORE, loss_width, prompt_length


def token_chunks(targets: Tensor, max_rows: int = 64, max_tokens: int = 2048) -> Iterator[Tensor]:
    """Row indices, shortest first, in groups of at most ``max_rows`` rows and ``max_tokens`` loss tokens."""
    counts = (targets != IGNORE).sum(1).cpu()
    order = torch.argsort(counts, stable=True).tolist()
    group, tokens = [], 0
    for i in order:
        if group and (len(group) >= max_rows or tokens + int(counts[i]) > max_tokens):
            yield torch.tensor(group)
            group, tokens = [], 0
        group.append(i)
        tokens += int(counts[i])
    if group:
        yield torch.tensor(group)


def _logits(model: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
    width = loss_width(targets)
    return model(inputs[:, :width], targets[:, :width]).float()


@torch.inference_mode()
def lm_validation(model: nn.Module, inputs: Tensor, targets: Tensor, batch_size: int = 64) -> dict[str, float]:
    """val_loss (token cross-entropy), val_perplexity and val_accuracy (next-token top-1 against the reference)."""
    was_training = model.training
    model.eval()
    loss, correct, tokens = 0.0, 0, 0
    try:
        for idx in token_chunks(targets, max_rows=batch_size):
            idx = idx.to(inputs.device)
            t = targets[idx]
            logits = _logits(model, inputs[idx], t)
            labels = t[t != IGNORE]
            loss += float(F.cross_entropy(logits, labels, reduction="sum"))
            correct += int((logits.argmax(-1) == labels).sum())
            tokens += len(labels)
    finally:
        model.train(was_training)
    mean = loss / max(1, tokens)
    return {"val_loss": mean, "val_perplexity": math.exp(min(mean, 700.0)), "val_accuracy": correct / max(1, tokens)}


@torch.inference_mode()
def lm_metrics(models: dict[str, nn.Module], inputs: Tensor, targets: Tensor, teacher: str | None = "teacher",
               batch_size: int = 64) -> dict[str, dict[str, float]]:
    """Per model: cross_entropy, perplexity, accuracy (top-1 against the reference) and, against ``teacher``,
    kl_to_teacher (KL(teacher || model), nats per token) and top1_agreement. The teacher runs once per batch."""
    sums = {role: {"ce": 0.0, "correct": 0, "kl": 0.0, "agree": 0} for role in models}
    tokens = 0
    states = {role: m.training for role, m in models.items()}
    for m in models.values():
        m.eval()
    try:
        for idx in token_chunks(targets, max_rows=batch_size):
            idx = idx.to(inputs.device)
            t = targets[idx]
            labels = t[t != IGNORE]
            tokens += len(labels)
            reference = _logits(models[teacher], inputs[idx], t) if teacher in models else None
            ref_logp = reference.log_softmax(-1) if reference is not None else None
            for role, model in models.items():
                logits = reference if role == teacher else _logits(model, inputs[idx], t)
                s = sums[role]
                s["ce"] += float(F.cross_entropy(logits, labels, reduction="sum"))
                s["correct"] += int((logits.argmax(-1) == labels).sum())
                if ref_logp is not None and role != teacher:
                    logp = logits.log_softmax(-1)
                    s["kl"] += float((ref_logp.exp() * (ref_logp - logp)).sum())
                    s["agree"] += int((logits.argmax(-1) == reference.argmax(-1)).sum())
    finally:
        for role, m in models.items():
            m.train(states[role])
    out = {}
    for role, s in sums.items():
        ce = s["ce"] / max(1, tokens)
        entry = {"cross_entropy": ce, "perplexity": math.exp(min(ce, 700.0)), "accuracy": s["correct"] / max(1, tokens),
                 "tokens": tokens}
        if teacher in models and role != teacher:
            entry.update(kl_to_teacher=s["kl"] / max(1, tokens), top1_agreement=s["agree"] / max(1, tokens))
        out[role] = entry
    return out


def lcs_length(a: list, b: list) -> int:
    """Length of the longest common subsequence (dynamic programming, one row at a time)."""
    if not a or not b:
        return 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F-measure (Lin 2004) on lowercased whitespace words: 2PR / (P + R), P = LCS/|cand|, R = LCS/|ref|.

    The same F1 as the ``rouge-score`` package's ``rougeL`` fmeasure (without its stemming and tokenizer).
    """
    c, r = candidate.lower().split(), reference.lower().split()
    lcs = lcs_length(c, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(c), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def prompt_and_reference(ids: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """A sample's prompt (the tokens before its first loss position's target) and its reference continuation.

    Plain text (a loss from the first token) is split in the middle of its loss span instead.
    """
    start, end = prompt_length(targets), loss_width(targets[None]) + 1
    if start == 1:
        start = max(2, end // 2)
    return ids[:start], ids[start:end]


@torch.inference_mode()
def generations(models: dict[str, nn.Module], tokenizer, inputs: Tensor, targets: Tensor, count: int,
                max_new_tokens: int, eos_id: int | None, pad_id: int | None,
                teacher: str = "teacher") -> tuple[list[dict], dict[str, dict[str, float]]]:
    """Greedy continuations of the first ``count`` samples' prompts by every model, side by side.

    Returns the rows ({prompt, reference, <role>: text}) and per model: gen_tokens_per_s (new tokens
    over wall time, batch 1, KV cache) and rouge_l (mean ROUGE-L F of its text against the teacher's).
    """
    rows, speed = [], {role: [0, 0.0] for role in models}
    for i in range(min(count, len(inputs))):
        prompt, reference = prompt_and_reference(inputs[i], targets[i])
        row = {"prompt": tokenizer.decode(prompt, skip_special_tokens=False),
               "reference": tokenizer.decode(reference, skip_special_tokens=True)}
        for role, model in models.items():
            started = time.perf_counter()
            new = model.generate(prompt[None], max_new_tokens, eos_id, pad_id)[0]
            speed[role][1] += time.perf_counter() - started
            speed[role][0] += len(new)
            row[role] = tokenizer.decode(new, skip_special_tokens=True)
        rows.append(row)
    scores = {}
    for role in models:
        entry = {"gen_tokens_per_s": speed[role][0] / speed[role][1] if speed[role][1] else None}
        if teacher in models and role != teacher and rows:
            entry["rouge_l"] = sum(rouge_l(r[role], r[teacher]) for r in rows) / len(rows)
        scores[role] = entry
    return rows, scores


def memory(model: nn.Module) -> dict[str, int]:
    """Parameters (tied weights once) and the bytes of parameters and buffers."""
    seen, params, size = set(), 0, 0
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.data_ptr() in seen:
            continue
        seen.add(tensor.data_ptr())
        size += tensor.numel() * tensor.element_size()
        if isinstance(tensor, nn.Parameter):
            params += tensor.numel()
    return {"params": params, "size_bytes": size}
