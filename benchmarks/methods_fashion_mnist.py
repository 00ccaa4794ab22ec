"""Every distillation method on the demo's teacher/student pair and regime, full Fashion-MNIST.

    .venv/bin/python benchmarks/methods_fashion_mnist.py [--seeds 0 1 2] [--jobs 2]
        [--teacher-checkpoint RUN/checkpoints/teacher-best.safetensors] [--set key=value ...]

The regime is `examples/fashion_mnist.yaml` (full training set, the demo's student recipe: random
crops and flips, the teacher cache with 10 stored views that teacher and student both see); only
`distill` changes between runs. The teacher is trained once (or taken from ``--teacher-checkpoint``) and loaded through
``teacher.checkpoint`` by every later run. Each run is a separate ``distill run`` process with one
thread; ``--jobs N`` runs N of them at once, each in its own session (so the kernel's per-session
CPU share applies to each job). The baseline is trained once per seed. Results are rewritten after
every run, so an interrupted benchmark still leaves a table:
benchmarks/results/methods_fashion_mnist.json and docs/methods_benchmark.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from distill.rundir import read_records, resumable

ROOT = Path(__file__).resolve().parents[1]
DEMO = yaml.safe_load((ROOT / "examples" / "fashion_mnist.yaml").read_text())
BASE = {
    "name": "methods-bench",
    "data": DEMO["data"],
    "teacher": DEMO["teacher"],
    "student": DEMO["student"],
    "cache": DEMO.get("cache", {"mode": "auto"}),
    "evaluate": {"latency": False},
    "runtime": {"threads": 1},
}
# Feature layers: cnn stage outputs are features.0 (28x28), features.1 (14x14), features.2 (7x7).
FEATURES = {"student_layer": "features.2", "teacher_layer": "features.2"}
# Relation methods use each model's penultimate embedding, as their papers do: the student's head input
# (`pool`, its flattened 7x7 map) and the teacher's 128-unit hidden layer (`head.2`, after its ReLU).
EMBEDDING = {"student_layer": "pool", "teacher_layer": "head.2"}
METHODS: dict[str, dict] = {
    "kd": {"method": "kd"},
    "dkd": {"method": "dkd"},
    "dist": {"method": "dist"},
    "lskd": {"method": "lskd"},
    "tfkd": {"method": "tfkd"},
    "fitnets": {"method": "fitnets", "options": FEATURES},
    "at": {"method": "at", "options": {"student_layer": ["features.1", "features.2"],
                                       "teacher_layer": ["features.1", "features.2"]}},
    "sp": {"method": "sp", "options": FEATURES},
    "rkd": {"method": "rkd", "options": EMBEDDING},
    "pkt": {"method": "pkt", "options": EMBEDDING},
    "crd": {"method": "crd", "options": {**EMBEDDING, "queue_size": 1024}},
    "kd+at": {"methods": [{"method": "kd", "weight": 1.0},
                          {"method": "at", "weight": 1.0,
                           "options": {"student_layer": ["features.1", "features.2"],
                                       "teacher_layer": ["features.1", "features.2"]}}],
              "label_weight": 0.1},  # one label term, kd's weight (at's own CE used to be switched off)
    "mutual (dml)": {"method": "dml", "mode": "online"},
    "born-again (kd)": {"method": "kd", "mode": "born_again", "generations": 1},
    "takd (kd)": {"method": "kd", "mode": "takd",
                  "assistant": {"model": {"name": "cnn", "channels": [16, 32, 64], "flatten": True},
                                "train": BASE["student"]["train"]}},
    "reverse (kd)": {"method": "kd", "mode": "reverse"},
}
# The demo's own KD settings (examples/fashion_mnist.yaml), beside kd's defaults: these runs also train
# each seed's baseline, and benchmarks/kd_fashion_mnist.py --runs reads them for the demo's table.
DEMO_LABEL = "kd (demo recipe)"
METHODS = {DEMO_LABEL: DEMO["distill"], **METHODS}
# Runs whose teacher knowledge is the same (same teacher, data, views and tapped modules) share one cache
# per seed: its first run builds it (10 teacher passes over the training set, about as long as training
# the student), the others wait for it and read it. Other runs keep their cache in their own folder.
CACHE_GROUPS = {
    **dict.fromkeys([DEMO_LABEL, "kd", "dkd", "dist", "lskd", "tfkd"], "logits"),
    **dict.fromkeys(["rkd", "pkt", "crd"], "pool"),
    **dict.fromkeys(["fitnets", "sp"], "features.2"),
    **dict.fromkeys(["at", "kd+at"], "features.1-2"),
}
# Expensive modes last: dml trains a teacher-sized peer, reverse trains the teacher-sized model twice.
LAST = ("mutual (dml)", "reverse (kd)")
# Reverse KD swaps the roles: the small model (trained first) teaches the teacher-sized one, which is
# compared with the same large model trained alone, not with the small student's baseline.
REVERSE = {"teacher": {"model": BASE["student"]["model"], "train": BASE["student"]["train"]},
           "student": {"model": BASE["teacher"]["model"], "train": BASE["student"]["train"]}}


def best_val(run_dir: Path, model: str) -> float | None:
    """Best validation accuracy of ``model`` over its epochs (the checkpoint kept)."""
    rows = read_records(run_dir / "metrics.jsonl")
    values = [r["val_accuracy"] for r in rows if r.get("model") == model and "val_accuracy" in r]
    return max(values) if values else None


def schedule(seeds: list[int], labels: list[str]) -> list[tuple[int, str]]:
    """The demo recipe for every seed, then seed by seed (an interrupted benchmark has whole seeds): each cache's builder first, then the
    runs that read it; the costly modes of the first seed follow its block, those of later seeds come last."""
    order = [(seed, DEMO_LABEL) for seed in seeds if DEMO_LABEL in labels]  # the demo's own numbers first
    for seed in seeds:
        first: dict[str, str] = {}
        for label in labels:
            if CACHE_GROUPS.get(label) is not None:
                first.setdefault(CACHE_GROUPS[label], label)
        builders = [(seed, label) for label in first.values()]
        order += [b for b in builders if b not in order]
        order += [(seed, label) for label in labels if (seed, label) not in builders and label not in LAST]
        if seed == seeds[0]:
            order += [(seed, label) for label in labels if label in LAST]
    return order + [(seed, label) for seed in seeds[1:] for label in labels if label in LAST]


def shared_cache_dir(runs: Path, label: str, seed: int) -> Path:
    """The teacher cache that every run of ``label``'s group and ``seed`` reads."""
    return runs / "caches" / f"{CACHE_GROUPS[label]}-seed{seed}"


def spread(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


TUNED_SUFFIX = " (tuned)"


def add_tuned(path: Path) -> dict:
    """Register "<method> (tuned)" for every method whose value chosen on validation (benchmarks/methods_tuning.py)
    differs from its default: the same run, with that one option changed. Returns the tuning file's content."""
    tuning = json.loads(path.read_text())
    for row in tuning["results"]:
        if row["chosen"] == row["default"]:
            continue  # the default won: the method's own row is already the tuned one
        section = json.loads(json.dumps(METHODS[row["method"]]))
        section["options"] = {**section.get("options", {}), row["knob"]: row["chosen"]}
        METHODS[row["method"] + TUNED_SUFFIX] = section
        CACHE_GROUPS[row["method"] + TUNED_SUFFIX] = CACHE_GROUPS[row["method"]]
    return tuning


def tuning_lines(tuning: dict | None) -> list[str]:
    """The tuning budget and every value tried, so a reader sees what was chosen and from what."""
    if not tuning:
        return []
    budget = tuning["budget"]
    lines = ["", "## Tuned on validation", "",
             f"`python benchmarks/methods_tuning.py --teacher-checkpoint ...`: each method's main knob chosen with "
             f"`{budget['sampler']}` on seed {budget['seed']}'s {budget['split']}, the same budget for every method: "
             f"{budget['trials_per_method']} values ({budget['schedule']}), the default's score read from the "
             "benchmark's own seed-0 run of the same config. The test split is never used. A `(tuned)` row above "
             "runs the chosen value on every seed; where the default won, the method's own row is the tuned one.",
             "", "| method | knob | default | values tried (best val acc) | chosen |", "| --- | --- | --- | --- | --- |"]
    for row in tuning["results"]:
        tried = ", ".join(f"{t['value']:g}: {t['val'] * 100:.2f}%" for t in row["trials"] if t["val"] is not None)
        lines.append(f"| {row['method']} | {row['knob']} | {row['default']:g} | {tried} | **{row['chosen']:g}** |")
    return lines


def run_one(label: str, seed: int, distill_section: dict, args, teacher_ckpt: str | None, runs: Path) -> dict:
    cfg = json.loads(json.dumps(BASE))
    cfg["distill"] = distill_section
    if label in CACHE_GROUPS:
        cfg["cache"] = {**cfg["cache"], "dir": str(shared_cache_dir(runs, label, seed))}
    reverse = distill_section.get("mode") == "reverse"
    if reverse:
        cfg.update(json.loads(json.dumps(REVERSE)))
    # One baseline per seed, trained in the kd run; reverse needs its own (the large model alone).
    cfg["baseline"] = label == DEMO_LABEL or reverse
    run_dir = runs / f"{label.replace(' ', '_').replace('(', '').replace(')', '').replace('+', '_')}-seed{seed}"
    config_path = runs / f"{run_dir.name}.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(cfg, sort_keys=False)
    # A finished run of the same config (an earlier, interrupted benchmark) is read, not run again.
    same_config = config_path.is_file() and config_path.read_text() == text
    finished = (run_dir / "summary.json").is_file() and same_config
    if not finished and getattr(args, "finished_only", False):
        return None
    config_path.write_text(text)
    command = [sys.executable, "-m", "distill", "run", str(config_path), "--out", str(run_dir), "--quiet",
               "--set", f"seed={seed}"] + [x for s in args.set for x in ("--set", s)]
    if not finished and run_dir.exists():
        # an interrupted run: continue it from its last checkpoint if it ran this same config, else start over
        command.append("--resume" if same_config and resumable(run_dir) else "--overwrite")
    if teacher_ckpt and distill_section.get("mode") not in ("online", "born_again", "reverse"):
        command += ["--set", f"teacher.checkpoint={teacher_ckpt}"]
    started = time.perf_counter()
    # its own session: one CPU share per job under the kernel's per-session (autogroup) scheduling
    proc = None if finished else subprocess.run(
        command, capture_output=True, text=True, start_new_session=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    if proc is not None and proc.returncode != 0:
        return {"label": label, "seed": seed, "error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
    summary = json.loads((run_dir / "summary.json").read_text())
    models = summary["models"]
    epochs = BASE["student"]["train"]["epochs"]
    # born_again names its models gen0..genN: the last generation is the distilled student.
    student = models["student"] if "student" in models else models[list(models)[-1]]
    result = {
        "label": label, "seed": seed, "run_dir": str(run_dir), "wall_seconds": time.perf_counter() - started,
        "accuracy": student["accuracy"],
        # online (dml) logs the cohort's epochs: its val_accuracy is the student's
        "val": best_val(run_dir, "student" if "student" in models else list(models)[-1])
        or best_val(run_dir, "cohort"),
        "baseline_val": best_val(run_dir, "baseline") if "baseline" in models else None,
        "teacher": models.get("teacher", {}).get("accuracy"),
        "peer_teacher": models.get("peer_teacher", {}).get("accuracy"),
        "assistant": models.get("assistant", {}).get("accuracy"),
        "baseline": models.get("baseline", {}).get("accuracy"),
        "seconds_per_epoch": student["train_seconds"] / epochs,
        "baseline_seconds_per_epoch": models.get("baseline", {}).get("train_seconds", 0) / epochs or None,
    }
    if reverse:  # kept apart: its teacher and baseline are other models than the table's
        result["reverse"] = {"small_teacher": result.pop("teacher"), "large_alone": result.pop("baseline")}
        result["baseline_seconds_per_epoch"] = None
    return result


def table(results: list[dict], command: str, planned: int, elapsed: float, tuning: dict | None = None) -> str:
    ok = [r for r in results if "error" not in r]
    teacher = next((r["teacher"] for r in ok if r.get("teacher") is not None), None)
    baselines = [r["baseline"] for r in ok if r.get("baseline") is not None]
    base_mean, base_std = spread(baselines) if baselines else (None, 0.0)
    lines = [
        "# Methods benchmark: Fashion-MNIST, one teacher/student pair", "",
        "Made by:", "", "```bash", command, "```", "",
        "`--teacher-checkpoint` is the demo recipe's teacher, trained once by `distill run "
        "examples/fashion_mnist.yaml --set runtime.threads=1` (seed 0) and loaded by every run that has a "
        "trained teacher (mutual learning, born-again and reverse train their own models).", "",
        f"The demo regime (`examples/fashion_mnist.yaml`): teacher `{BASE['teacher']['model']}`, student "
        f"`{BASE['student']['model']}`, student recipe `{BASE['student']['train']}`, cache `{BASE['cache']}`, "
        "full training set (55k, 5k validation, 10k test); each method with its default options "
        "(feature methods on the last stage, `features.2`; AT on `features.1` and `features.2`; RKD, PKT and "
        "CRD on the penultimate embeddings, the student's head input `pool` and the teacher's hidden layer "
        "`head.2`; CRD with a 1,024-entry queue instead of its default 16,384, whose "
        "cost per step exceeds the tiny student's own), and `kd (demo recipe)` with the demo's KD settings "
        f"(`{DEMO['distill']}`, chosen on seed 0's validation split); its runs also train each seed's baseline. "
        "One CPU thread per run on a shared 2-core machine.", "",
        f"Progress: {len(results)} of {planned} planned runs finished ({len(results) - len(ok)} failed) "
        f"in {elapsed / 60:.0f} minutes.", "",
    ]
    if teacher is not None:
        lines.append(f"Teacher test accuracy: **{teacher * 100:.2f}%**. "
                     f"Baseline (student alone): **{base_mean * 100:.2f}% ± {base_std * 100:.2f}** "
                     f"over {len(baselines)} seed(s).")
        lines.append("")
    base_by_seed = {r["seed"]: r["baseline"] for r in ok if r.get("baseline") is not None}
    lines += ["| method | seeds | val acc (mean) | test acc (mean) | spread (std) | vs baseline "
              "| paired vs baseline (mean ± std) | gap recovered | s / epoch |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    labels = list(dict.fromkeys(r["label"] for r in results if "reverse" not in r))
    for label in labels:
        runs = [r for r in ok if r["label"] == label]
        if not runs:
            errors = [r["error"] for r in results if r["label"] == label]
            lines.append(f"| {label} | 0 | | failed: {errors[0]} | | | | | |")
            continue
        mean, std = spread([r["accuracy"] for r in runs])
        delta = gap = "-"
        if base_mean is not None:
            delta = f"{(mean - base_mean) * 100:+.2f} pp" + ("" if mean > base_mean else " (does not beat baseline)")
            if teacher is not None and abs(teacher - base_mean) > 1e-12:
                gap = f"{(mean - base_mean) / (teacher - base_mean) * 100:.0f}%"
        # Same seed, same student initialisation and data order: the paired difference removes seed noise.
        paired = [r["accuracy"] - base_by_seed[r["seed"]] for r in runs if r["seed"] in base_by_seed]
        p_mean, p_std = spread(paired) if paired else (None, 0.0)
        paired_text = "-" if p_mean is None else f"{p_mean * 100:+.2f} ± {p_std * 100:.2f} pp"
        epoch = statistics.mean(r["seconds_per_epoch"] for r in runs)
        vals = [r["val"] for r in runs if r.get("val") is not None]
        val = f"{statistics.mean(vals) * 100:.2f}%" if vals else "-"
        lines.append(f"| {label} | {len(runs)} | {val} | {mean * 100:.2f}% | {std * 100:.2f} | {delta} | {paired_text} "
                     f"| {gap} | {epoch:.1f} |")
    if base_mean is not None:
        epoch = statistics.mean(r["baseline_seconds_per_epoch"] for r in ok if r.get("baseline_seconds_per_epoch"))
        base_vals = [r["baseline_val"] for r in ok if r.get("baseline_val") is not None and "reverse" not in r]
        base_val = f"{statistics.mean(base_vals) * 100:.2f}%" if base_vals else "-"
        lines.append(f"| baseline (no teacher) | {len(baselines)} | {base_val} | {base_mean * 100:.2f}% | {base_std * 100:.2f} "
                     f"| 0 | 0 | 0% | {epoch:.1f} |")
    if base_mean is not None:
        lines += target_lines(ok, labels, base_by_seed, base_mean, teacher)
    lines += published_ranking(ok, base_by_seed)
    lines += tuning_lines(tuning)
    lines += reverse_table([r for r in ok if "reverse" in r])
    assistants = [r["assistant"] for r in ok if r.get("assistant") is not None]
    if assistants:
        lines += ["", f"The assistant of `takd (kd)` (cnn [16, 32, 64], distilled from the teacher, then teaching "
                  f"the student) reached {statistics.mean(assistants) * 100:.2f}% (mean of {len(assistants)} "
                  f"seed(s)). `born-again (kd)` is generation 1, taught by generation 0 (the student architecture "
                  f"trained on labels, i.e. the baseline's twin)."]
    peers = [r["peer_teacher"] for r in ok if r.get("peer_teacher") is not None]
    if peers:
        lines += ["", f"The teacher-sized peer trained alongside the student in `mutual (dml)` reached "
                  f"{statistics.mean(peers) * 100:.2f}% (mean of {len(peers)} seed(s)); it had no trained teacher."]
    lines += ["", "`paired vs baseline` is the method minus the baseline of the same seed (same initial weights "
              "and data order), mean ± std over seeds; with 3 seeds a difference smaller than its ± is not "
              "distinguishable from noise, so `does not beat baseline` for a small difference means "
              "'no measurable gain', not 'measurably worse'."]
    lines += ["", "Gap recovered = (method - baseline) / (teacher - baseline), on seed means. "
              "`mutual (dml)` trains an untrained teacher-sized peer alongside the student "
              "(no trained teacher), so its gap is measured against the offline teacher only for comparison. "
              "Seconds per epoch include the teacher's forward pass (and the peer's training for dml); they were "
              "measured on a shared, busy CPU and vary by tens of percent between runs.",
              "", "Every method without `(tuned)` runs at its default options, most of which were chosen in the "
              "papers for 200-epoch CIFAR runs; a method that does not beat the baseline here is reported as such, "
              "not tuned until it does. The `(tuned)` rows changed one option, chosen on validation within the "
              "budget below.", "",
              "The regression methods (`mse_kd`, `mae_kd`) need a regression task; they are benchmarked on the "
              "diabetes data in [regression_benchmark.md](regression_benchmark.md).", ""]
    return "\n".join(lines)


def target_lines(ok: list[dict], labels: list[str], base_by_seed: dict[int, float], base_mean: float,
                 teacher: float | None) -> list[str]:
    """Issue 11's targets, counted: methods ahead by more than 2 sd of the paired difference, best gap closed."""
    clear, best = [], (None, float("-inf"))
    for label in labels:
        paired = [r["accuracy"] - base_by_seed[r["seed"]] for r in ok if r["label"] == label and r["seed"] in base_by_seed]
        if len(paired) >= 2 and statistics.mean(paired) > 2 * statistics.stdev(paired):
            clear.append(label)
        runs = [r["accuracy"] for r in ok if r["label"] == label]
        if runs and teacher is not None and teacher > base_mean:
            gap = (statistics.mean(runs) - base_mean) / (teacher - base_mean)
            best = max(best, (label, gap), key=lambda x: x[1])
    text = (f"Targets (issue 11): methods ahead of the baseline by more than 2 sd of the paired difference "
            f"(at least 2 seeds): **{len(clear)}** ({', '.join(clear) or 'none'}; target >= 8); ")
    text += f"best gap closed: **{best[1] * 100:.0f}%** ({best[0]}; target >= 50%)." if best[0] else "best gap closed: -."
    return ["", text]


# Published CIFAR-100 top-1 accuracy for resnet32x4 -> resnet8x4 (the papers' own tables: DKD, Zhao et al.
# 2022, table 1; CRD, Tian et al. 2020; LSKD, Sun et al. 2024, table 1 "KD + ours"); student alone 72.50.
PUBLISHED = {"kd": 73.33, "crd": 75.51, "dkd": 76.32, "lskd": 76.62}
PUBLISHED_ALONE = 72.50


def published_ranking(ok: list[dict], base_by_seed: dict[int, float]) -> list[str]:
    """Our paired gain beside the published gain over the student alone, for the methods the papers share."""
    rows = []
    for label, published in PUBLISHED.items():
        paired = [r["accuracy"] - base_by_seed[r["seed"]] for r in ok if r["label"] == label and r["seed"] in base_by_seed]
        ours = f"{statistics.mean(paired) * 100:+.2f} pp ({len(paired)} seeds)" if paired else "not run"
        tuned = [r["accuracy"] - base_by_seed[r["seed"]] for r in ok
                 if r["label"] == label + TUNED_SUFFIX and r["seed"] in base_by_seed]
        if tuned:
            ours += f"; tuned on validation {statistics.mean(tuned) * 100:+.2f} pp ({len(tuned)} seeds)"
        rows.append(f"| {label} | {published:.2f}% | {published - PUBLISHED_ALONE:+.2f} pp | {ours} |")
    return ["", "Published ranking beside ours: CIFAR-100, resnet32x4 teacher (79.42%) -> resnet8x4 student "
            f"(alone {PUBLISHED_ALONE:.2f}%), 240 epochs, from the DKD, CRD and LSKD papers' tables (LSKD is "
            "their logit standardisation added to KD); ours is the paired gain on this page's pair.", "",
            "| method | published top-1 | published gain over alone | our paired gain |", "| --- | --- | --- | --- |",
            *rows]


def reverse_table(runs: list[dict]) -> list[str]:
    """Reverse KD on its own: the large model from the small teacher vs the large model alone."""
    if not runs:
        return []
    small, _ = spread([r["reverse"]["small_teacher"] for r in runs])
    alone, alone_std = spread([r["reverse"]["large_alone"] for r in runs])
    taught, taught_std = spread([r["accuracy"] for r in runs])
    paired, paired_std = spread([r["accuracy"] - r["reverse"]["large_alone"] for r in runs])
    return ["", "Reverse distillation (Yuan et al. 2020): the student architecture above, trained first "
            "(the students' recipe), teaches the teacher architecture (the students' recipe):", "",
            "| model | seeds | test acc (mean) | spread (std) | paired vs large alone (mean ± std) |",
            "| --- | --- | --- | --- | --- |",
            f"| small teacher (the student) | {len(runs)} | {small * 100:.2f}% | | |",
            f"| large alone | {len(runs)} | {alone * 100:.2f}% | {alone_std * 100:.2f} | 0 |",
            f"| large from small (reverse kd) | {len(runs)} | {taught * 100:.2f}% | {taught_std * 100:.2f} "
            f"| {paired * 100:+.2f} ± {paired_std * 100:.2f} pp |"]


# The page's hand-written reading of the table starts at this heading; regenerating the table keeps it.
NOTES_HEADING = "## What the table says"


def write_doc(path: Path, generated: str) -> None:
    """Write the generated table, keeping the hand-written section that follows it on the page."""
    old = path.read_text() if path.is_file() else ""
    notes = old[old.index(NOTES_HEADING):] if NOTES_HEADING in old else ""
    path.write_text(generated.rstrip("\n") + "\n\n" + notes if notes else generated)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", help="labels from METHODS (default: all)")
    parser.add_argument("--tuned", nargs="?", const=str(ROOT / "benchmarks" / "results" / "methods_tuning.json"),
                        help="also run '<method> (tuned)' with the values benchmarks/methods_tuning.py chose "
                             "(default file: benchmarks/results/methods_tuning.json)")
    parser.add_argument("--set", action="append", default=[], help="config overrides, as for distill run")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--doc", default=str(ROOT / "docs" / "methods_benchmark.md"))
    parser.add_argument("--append", action="store_true",
                        help="keep the other methods' results in the JSON and replace only those of --methods")
    parser.add_argument("--teacher-checkpoint", help="the teacher every run loads (teacher-best.safetensors of a run "
                                                     "of examples/fashion_mnist.yaml); default: train it in the first run")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each")
    parser.add_argument("--finished-only", action="store_true",
                        help="only read back the runs an interrupted benchmark finished; start none")
    parser.add_argument("--report", action="store_true",
                        help="only rewrite the Markdown table from the JSON of an earlier (or interrupted) run")
    args = parser.parse_args()
    out = Path(args.out)
    tuning = add_tuned(Path(args.tuned)) if args.tuned else None
    args.methods = args.methods or list(METHODS)
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown method label(s) {unknown}; known: {list(METHODS)}"
                     + ("" if args.tuned else " (the '(tuned)' labels need --tuned)"))
    if args.report:
        saved = json.loads((out / "methods_fashion_mnist.json").read_text())
        write_doc(Path(args.doc), table(saved["results"], saved["command"], saved["planned_runs"],
                                        saved["elapsed_seconds"], saved.get("tuning")))
        return
    runs = out / "methods_runs"
    command = "python benchmarks/methods_fashion_mnist.py " + shlex.join(sys.argv[1:])
    planned = len(args.seeds) * len(args.methods)
    started = time.perf_counter()
    results: list[dict] = []
    if args.append:
        saved = json.loads((out / "methods_fashion_mnist.json").read_text())
        results = [r for r in saved["results"] if r["label"] not in args.methods]
        command = f"{saved['command']}\n{command}"
        planned += len(args.seeds) * len({r["label"] for r in results})  # the kept methods' full plan
        started -= saved["elapsed_seconds"]
        tuning = tuning or saved.get("tuning")
    teacher_ckpt = args.teacher_checkpoint
    todo = schedule(args.seeds, args.methods)
    # A run reading a shared cache waits until the run building it has finished.
    built = {(seed, CACHE_GROUPS[label]): threading.Event() for seed, label in todo if label in CACHE_GROUPS}
    users = {key: sum(1 for seed, label in todo if (seed, CACHE_GROUPS.get(label)) == key) for key in built}
    lock = threading.Lock()
    builder_of = {}
    for seed, label in todo:
        if label in CACHE_GROUPS:
            builder_of.setdefault((seed, CACHE_GROUPS[label]), label)

    def run_in_turn(label: str, seed: int) -> dict:
        key = (seed, CACHE_GROUPS.get(label))
        if key in built and builder_of[key] != label:
            built[key].wait()
        try:
            return run_one(label, seed, METHODS[label], args, teacher_ckpt, runs)
        finally:
            if key in built and builder_of[key] == label:
                built[key].set()
            if key in users:
                with lock:
                    users[key] -= 1
                    last = users[key] == 0
                if last:  # feature caches take gigabytes per seed: free the disk once every reader is done
                    shutil.rmtree(shared_cache_dir(runs, label, seed), ignore_errors=True)

    def record(result: dict | None) -> None:
        if result is None:  # --finished-only: not run
            return
        results.append(result)
        print(json.dumps(result), flush=True)
        elapsed = time.perf_counter() - started
        (out / "methods_fashion_mnist.json").write_text(json.dumps(
            {"command": command, "base_config": BASE, "methods": METHODS, "planned_runs": planned,
             "elapsed_seconds": elapsed, "results": results, "tuning": tuning}, indent=1))
        write_doc(Path(args.doc), table(results, command, planned, elapsed, tuning))

    if teacher_ckpt is None and todo:  # the first run trains the teacher every other run loads
        seed, label = todo.pop(0)
        result = run_in_turn(label, seed)
        record(result)
        trained_teacher = Path(result.get("run_dir", "-")) / "checkpoints" / "teacher-best.safetensors"
        if "error" not in result and "reverse" not in result and trained_teacher.is_file():
            teacher_ckpt = str(trained_teacher)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(run_in_turn, label, seed) for seed, label in todo]
        for future in futures:
            record(future.result())


if __name__ == "__main__":
    main()
