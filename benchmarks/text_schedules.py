"""The text recipe against the alone student at its own dev-chosen schedule (3 or 8 epochs).

benchmarks/text.py pairs the distilled student with the student alone *on the recipe's schedule*
(8 epochs). That schedule was chosen for the distilled student; the alone student may prefer
another. This reads two benchmarks/text.py results, the recipe's and one with
`--set student.train.epochs=3`, gives the alone student whichever schedule has the better mean dev
accuracy on each dataset (the test split is not looked at for the choice), and prints the recipe's
paired gain over it. Writes benchmarks/results/text_schedules.json.

    python benchmarks/text_schedules.py
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def load(paths: list[Path]) -> dict[str, dict]:
    return {d["dataset"]: d for p in paths for d in json.loads(p.read_text())["datasets"]}


def scores(result: dict, role: str, seeds: list[int]) -> tuple[float, list[float]]:
    """Mean dev accuracy over ``seeds``, and their test accuracies (%) in that order (for pairing)."""
    by_seed = {r["seed"]: r for r in result["seeds"]}
    rows = [by_seed[seed] for seed in seeds]
    return (statistics.mean(100 * r[f"{role}_dev_accuracy"] for r in rows),
            [100 * r[f"{role}_accuracy"] for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", nargs="+", type=Path,
                        default=[RESULTS / "text_sst2_mpqa.json", RESULTS / "text_trec_subj.json"])
    parser.add_argument("--short", nargs="+", type=Path, default=[RESULTS / "text_3_epochs.json"])
    parser.add_argument("--json", type=Path, default=RESULTS / "text_schedules.json")
    args = parser.parse_args()
    recipe, short = load(args.recipe), load(args.short)
    fmt = lambda s: f"{s[0]:.2f} / {statistics.mean(s[1]):.2f} ± {statistics.stdev(s[1]):.2f}"  # noqa: E731
    print("| dataset | alone 3 ep: dev / test | alone 8 ep: dev / test | distilled 3 ep: dev / test "
          "| distilled 8 ep (recipe): dev / test | recipe - alone at its dev-chosen schedule (paired) |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = []
    for name in [d for d in recipe if d in short]:
        seeds = sorted({r["seed"] for r in recipe[name]["seeds"]} & {r["seed"] for r in short[name]["seeds"]})
        alone3, alone8 = scores(short[name], "baseline", seeds), scores(recipe[name], "baseline", seeds)
        dist3, dist8 = scores(short[name], "student", seeds), scores(recipe[name], "student", seeds)
        epochs, alone = (3, alone3) if alone3[0] > alone8[0] else (8, alone8)
        gains = [d - a for d, a in zip(dist8[1], alone[1], strict=True)]
        mean, sd = statistics.mean(gains), statistics.stdev(gains)
        rows.append({"dataset": name, "seeds": seeds, "alone_epochs": epochs, "gain": mean, "gain_sd": sd, "gain_per_seed": gains,
                     "alone3": alone3, "alone8": alone8, "distilled3": dist3, "distilled8": dist8})
        per_seed = ", ".join(f"{g:+.2f}" for g in gains)
        print(f"| {name} | {fmt(alone3)} | {fmt(alone8)} | {fmt(dist3)} | {fmt(dist8)} | {mean:+.2f} ± {sd:.2f} "
              f"(alone {epochs} ep; per seed {per_seed}) |")
    args.json.write_text(json.dumps({"recipe": [str(p) for p in args.recipe], "short": [str(p) for p in args.short],
                                     "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
