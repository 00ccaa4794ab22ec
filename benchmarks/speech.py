"""Keyword spotting on the synthetic spoken-word set: teacher, student alone, distilled student, 3 seeds.

    python benchmarks/speech.py [--seeds 0 1 2] [--teacher-checkpoint RUN/checkpoints/teacher-best.safetensors]

The config is examples/speech.yaml (generate the data first: python -m distill.data.spoken_words).
The teacher is trained once (seed 0), or loaded; for each seed the DS-CNN student is trained alone
and distilled (KD from the cached teacher over 15 SpecAugment views, one per epoch), from the same initial weights.
Latency: PyTorch on one CPU thread at batch 1 (median), from each run's summary, and the ONNX
student (fp32) from the export of the first seed. Writes benchmarks/results/speech.json and
prints the table for docs/speech.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from seeded_runs import ROOT, Clock, gap_recovered, mean_std, paired, run_config, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--teacher-checkpoint", default=None)
    parser.add_argument("--runs", default=str(ROOT / "runs" / "bench-speech"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override the example's fields (a recipe chosen on validation, e.g. by "
                             "distill search benchmarks/configs/speech_kd_search.yaml)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "speech.json"))
    parser.add_argument("--no-export", action="store_true")
    args = parser.parse_args()
    base = yaml.safe_load((ROOT / "examples" / "speech.yaml").read_text())
    for item in args.set:
        key, value = item.split("=", 1)
        *parents, last = key.split(".")
        node = base
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = yaml.safe_load(value)
    runs, clock = Path(args.runs), Clock()
    teacher_ckpt = args.teacher_checkpoint
    results: list[dict] = []
    out = Path(args.json)
    for i, seed in enumerate(args.seeds):
        cfg = dict(base)
        cfg["export"] = {"enabled": i == 0 and not args.no_export, "quantize": "int8", "latency_repeats": 50,
                         "threads": 1}
        if teacher_ckpt:
            cfg["teacher"] = {**cfg["teacher"], "checkpoint": teacher_ckpt}
        summary = run_config(cfg, runs / f"seed{seed}", seed)
        if not teacher_ckpt:
            teacher_ckpt = str(runs / f"seed{seed}" / "checkpoints" / "teacher-best.safetensors")
        m = summary["models"]
        row = {"seed": seed, **{f"{role}_accuracy": m[role]["accuracy"] for role in ("teacher", "baseline", "student")},
               **{f"{role}_latency_ms_b1": m[role]["latency_ms_b1"] for role in ("teacher", "baseline", "student")},
               **{f"{role}_params": m[role]["params"] for role in ("teacher", "student")},
               **{f"{role}_size_bytes": m[role]["size_bytes"] for role in ("teacher", "student")},
               "student_train_seconds": m["student"]["train_seconds"],
               "baseline_train_seconds": m["baseline"]["train_seconds"]}
        if "export" in summary:
            row["export"] = summary["export"]
        results.append(row)
        write_json(out, {"config": "examples/speech.yaml", "sets": args.set, "seeds": args.seeds,
                         "teacher_checkpoint": teacher_ckpt,
                         "runs": results, "minutes": clock.minutes()})
        print(f"seed {seed}: teacher {row['teacher_accuracy']:.4f} baseline {row['baseline_accuracy']:.4f} "
              f"student {row['student_accuracy']:.4f} ({clock.minutes():.1f} min)", flush=True)
    print(markdown(results))


def markdown(results: list[dict]) -> str:
    acc = {role: [r[f"{role}_accuracy"] * 100 for r in results] for role in ("teacher", "baseline", "student")}
    lat = {role: sorted(r[f"{role}_latency_ms_b1"] for r in results)[len(results) // 2]
           for role in ("teacher", "baseline", "student")}
    t, b, s = (mean_std(acc[k])[0] for k in ("teacher", "baseline", "student"))
    gain = paired(acc["student"], acc["baseline"])
    gap = gap_recovered(t, b, s)
    first = results[0]
    lines = [f"| model | params | size | test acc (mean ± std, {len(results)} seeds) | paired vs alone | "
             "latency b1 (PyTorch) |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for role, name in (("teacher", "teacher speech_cnn"), ("baseline", "DS-CNN alone"),
                       ("student", "DS-CNN distilled (KD)")):
        key = "teacher" if role == "teacher" else "student"
        m, sd = mean_std(acc[role])
        vs = f"{gain[0]:+.2f} ± {gain[1]:.2f} pp" if role == "student" else ("0" if role == "baseline" else "")
        lines.append(f"| {name} | {first[f'{key}_params']:,} | {first[f'{key}_size_bytes'] / 1024:.1f} KiB | "
                     f"{m:.2f} ± {sd:.2f}% | {vs} | {lat[role]:.3f} ms |")
    lines.append("")
    lines.append(f"Gap recovered (seed means): {gap * 100:.0f}%." if gap is not None else "")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
