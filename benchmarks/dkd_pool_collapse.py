"""Why does DKD collapse in the few-label regime? Short runs that separate the teacher cache from the augmentation.

In ``unlabeled_regime.py`` DKD (2,000 labels plus the 53,000-image pool) falls to one class within
two epochs. Each case here is that distilled run cut to 3 epochs (the same teacher, student, labels
and pool; label weight 1.0, mdistiller's), varying one thing: the teacher cache (on, float16 or
float32) or the live teacher (``cache.mode: off``), and the augmentation (crops and flips, crops
only, flips only, none). Two cases without the pool show DKD training on the labels alone. Prints
the validation accuracy after each epoch and writes ``benchmarks/results/dkd_pool_collapse.json``.

    python benchmarks/unlabeled_regime.py teacher      # once, if not done yet
    python benchmarks/dkd_pool_collapse.py             # about 15 minutes on 2 cores, two runs at a time
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from seeded_runs import run_config, write_json  # noqa: E402
from unlabeled_regime import RESULTS, run_configuration  # noqa: E402

CROP_FLIP, CROP, FLIP = {"crop_padding": 2, "hflip": True}, {"crop_padding": 2, "hflip": False}, \
    {"crop_padding": 0, "hflip": True}
CACHE16, CACHE32, LIVE = {"mode": "on", "views": 4}, {"mode": "on", "views": 4, "dtype": "float32"}, {"mode": "off"}
# name: (seed, augmentation, cache, pool, epochs, batch size)
CASES = {
    "pool, cache float16, crops + flips": (0, CROP_FLIP, CACHE16, True, 3, 128),
    "pool, cache float32, crops + flips": (0, CROP_FLIP, CACHE32, True, 3, 128),
    "pool, cache float32, crops + flips, seed 1": (1, CROP_FLIP, CACHE32, True, 3, 128),
    "pool, live teacher, crops + flips": (0, CROP_FLIP, LIVE, True, 3, 128),
    "pool, live teacher, crops + flips, seed 1": (1, CROP_FLIP, LIVE, True, 3, 128),
    "pool, cache float32, no augmentation": (0, None, CACHE32, True, 3, 128),
    "pool, live teacher, no augmentation": (0, None, LIVE, True, 3, 128),
    "pool, cache float32, flips only": (0, FLIP, CACHE32, True, 3, 128),
    "pool, cache float32, crops only": (0, CROP, CACHE32, True, 3, 128),
    "pool, live teacher, crops only": (0, CROP, LIVE, True, 3, 128),
    "no pool, cache, crops + flips, 20 epochs": (0, CROP_FLIP, CACHE16, False, 20, 128),
    "no pool, cache, crops + flips, batch 5": (0, CROP_FLIP, CACHE16, False, 3, 5),
}


def case_config(name: str) -> tuple[dict, int]:
    seed, augment, cache, pool, epochs, batch = CASES[name]
    cfg = run_configuration("distilled", 2000, seed)
    cfg["data"]["augment"] = augment
    if not pool:
        cfg["data"].pop("unlabeled", None)
    cfg["student"]["train"].update({"epochs": epochs, "batch_size": batch})
    cfg["distill"] = {"method": "dkd", "label_weight": 1.0}
    cfg["cache"] = cache
    cfg["baseline"] = False
    return cfg, seed


def run_case(name: str) -> dict:
    import shutil

    cfg, seed = case_config(name)
    run_dir = RESULTS / "runs" / ("dkd_pool_collapse-" + "".join(c if c.isalnum() else "-" for c in name))
    shutil.rmtree(run_dir, ignore_errors=True)
    run_config(cfg, run_dir, seed)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    shutil.rmtree(run_dir / "cache", ignore_errors=True)
    return {"case": name, "val_accuracy": [r["val_accuracy"] for r in records if r.get("model", "student") == "student"],
            "losses": [r["train_loss"] for r in records]}


def main() -> int:
    with ProcessPoolExecutor(2) as pool:  # two runs at a time, one thread each
        rows = list(pool.map(run_case, CASES))
    write_json(RESULTS / "dkd_pool_collapse.json", {"cases": rows, "setup": {k: list(map(str, v)) for k, v in CASES.items()}})
    print("| case | validation % after each epoch |\n| --- | --- |")
    for row in rows:
        print(f"| {row['case']} | {', '.join(f'{v * 100:.1f}' for v in row['val_accuracy'])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
