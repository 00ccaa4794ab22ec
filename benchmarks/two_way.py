"""Two-way distillation against offline KD from the same pretrained teacher (Fashion-MNIST slice).

    python benchmarks/two_way.py [--seeds 0 1 2] [--teacher-checkpoint PATH]

The pair and recipe of benchmarks/methods_fashion_mnist.py: teacher cnn [32, 64, 128] (6 epochs,
trained once, seed 0, then loaded by every run), student cnn [8, 16, 32], 5 epochs of SGD, 5000
training / 2000 validation / 5000 test images. For each seed, from the same student start:
the student alone, offline KD (kd defaults: T 4, alpha 0.9, beta 0.1, frozen teacher) and
two-way (the same KD term and weights; the teacher keeps learning at teacher_lr 0.005, a tenth
of the student's, from its labels plus reverse KD with weight 0.1). Writes
benchmarks/results/two_way.json and prints the table for docs/two_way.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seeded_runs import ROOT, Clock, gap_recovered, mean_std, paired, run_config, write_json

BASE = {
    "name": "two-way-bench",
    "data": {"train_subset": 5000, "val_size": 2000, "test_subset": 5000},
    "teacher": {"model": {"name": "cnn", "channels": [32, 64, 128]}, "train": {"epochs": 6, "batch_size": 64}},
    "student": {"model": {"name": "cnn", "channels": [8, 16, 32]}, "train": {"epochs": 5, "batch_size": 64}},
    "evaluate": {"latency": False},
}
MODES = {
    "offline kd": {"distill": {"method": "kd"}, "baseline": True},
    "two_way": {"distill": {"mode": "two_way", "method": "two_way", "teacher_lr": 0.005,
                            "label_weight": 0.1, "options": {"temperature": 4.0, "alpha": 0.9, "reverse_weight": 0.1}},
                "baseline": False},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--runs", default=str(ROOT / "runs" / "bench-two-way"))
    parser.add_argument("--teacher-checkpoint", default=None, help="load this teacher instead of training it")
    args = parser.parse_args()
    runs, clock, rows, teacher_ckpt = Path(args.runs), Clock(), [], args.teacher_checkpoint
    out = ROOT / "benchmarks" / "results" / "two_way.json"
    for seed in args.seeds:
        for label, section in MODES.items():
            cfg = {**BASE, **section}
            if teacher_ckpt:
                cfg["teacher"] = {**cfg["teacher"], "checkpoint": teacher_ckpt}
            run_dir = runs / f"{label.replace(' ', '_')}-seed{seed}"
            m = run_config(cfg, run_dir, seed)["models"]
            teacher_ckpt = teacher_ckpt or str(run_dir / "checkpoints" / "teacher-best.safetensors")
            rows.append({"label": label, "seed": seed, "student": m["student"]["accuracy"],
                         "teacher": m["teacher"]["accuracy"], "baseline": m.get("baseline", {}).get("accuracy"),
                         "teacher_after": m.get("teacher_two_way", {}).get("accuracy"),
                         "seconds": m["student"]["train_seconds"]})
            write_json(out, {"base": BASE, "modes": MODES, "rows": rows, "minutes": clock.minutes()})
            print(f"{label} seed {seed}: {rows[-1]['student']:.4f} ({clock.minutes():.1f} min)", flush=True)
    print(markdown(rows))


def markdown(rows: list[dict]) -> str:
    baseline = [r["baseline"] * 100 for r in rows if r["label"] == "offline kd"]
    teacher = rows[0]["teacher"] * 100
    b = mean_std(baseline)
    lines = [f"Teacher (pretrained, frozen for offline KD): {teacher:.2f}%. Student alone: {b[0]:.2f} ± {b[1]:.2f}%.",
             "", "| mode | seeds | student test acc (mean ± std) | paired vs alone | gap recovered | "
                 "teacher after | train s (student stage) |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for label in MODES:
        sel = [r for r in rows if r["label"] == label]
        acc = [r["student"] * 100 for r in sel]
        m, sd = mean_std(acc)
        d, dsd = paired(acc, baseline[: len(acc)])
        gap = gap_recovered(teacher, b[0], m)
        after = [r["teacher_after"] * 100 for r in sel if r["teacher_after"] is not None]
        after_text = f"{mean_std(after)[0]:.2f}%" if after else f"{teacher:.2f}% (frozen)"
        lines.append(f"| {label} | {len(sel)} | {m:.2f} ± {sd:.2f}% | {d:+.2f} ± {dsd:.2f} pp | "
                     f"{gap * 100:.0f}% | {after_text} | {mean_std([r['seconds'] for r in sel])[0]:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
