"""How the teacher of examples/regression_diabetes.yaml was chosen, without the test split.

    .venv/bin/python benchmarks/diabetes_teacher_search.py cv '[{"hidden": [64], "dropout": 0.4, "wd": 1.0,
        "lr": 0.001, "epochs": 120, "seed": 0}, ...]'
    .venv/bin/python benchmarks/diabetes_teacher_search.py val '[{"hidden": [8]}, ...]'

``cv``: 5-fold cross-validation on the 354 non-test samples of data.split_seed 0 (the example's
training + validation splits); in each fold the epoch is picked, as in ``distill run``, on a
66-sample validation split carved from the training folds, and the held-out fold is only scored.
Prints the R^2 of the pooled out-of-fold predictions (standardised targets). ``val``: the R^2 on
the example's 66-sample validation split at the epoch kept, for seeds 0-4. One JSON line per
setting; the test split is never used. Every setting is an MLP trained with AdamW, batch 32,
cosine schedule: hidden, dropout, wd (weight decay), lr, epochs, bs, seed.
The runs behind the example are in benchmarks/results/diabetes_teacher_search.jsonl.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from distill.api import train_model
from distill.config.schema import DataConfig
from distill.data.bundle import DataBundle, Split, from_tensors, load_data
from distill.models import build_model


def r2(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    return float(1 - ((targets - predictions) ** 2).sum() / ((targets - targets.mean()) ** 2).sum())


def fit(data: DataBundle, hidden, dropout=0.0, wd=0.01, lr=0.003, epochs=60, bs=32, seed=0):
    torch.manual_seed(seed)
    model = build_model("mlp", (10,), 1, hidden=hidden, dropout=dropout)
    result = train_model(model, data, method="supervised_regression", seed=seed, device="cpu", task="regression",
                         train={"epochs": epochs, "batch_size": bs, "optimizer": "adamw", "lr": lr,
                                "weight_decay": wd})
    return model.eval(), result


def cross_validate(data: DataBundle, **setting) -> dict:
    x = torch.cat([data.train.inputs, data.val.inputs])
    y = torch.cat([data.train.targets, data.val.targets])
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(123))
    predictions, best_epochs = torch.empty_like(y), []
    for k in range(5):
        held_out = order[k::5]
        mask = torch.ones(len(x), dtype=torch.bool)
        mask[held_out] = False
        # The held-out fold goes in as the bundle's test split, which training never reads.
        fold = from_tensors("cv", Split(x[mask], y[mask]), Split(x[held_out], y[held_out]), num_classes=1,
                            val_size=66, seed=k)
        model, result = fit(fold, **setting)
        best_epochs.append(result.best_epoch)
        with torch.no_grad():
            predictions[held_out] = model(x[held_out])
    return {"cv_r2": round(r2(predictions, y), 4), "best_epochs": best_epochs}


def validation(data: DataBundle, **setting) -> dict:
    scores = []
    for seed in range(5):
        _, result = fit(data, **{**setting, "seed": seed})
        scores.append(result.history[result.best_epoch - 1]["val_r2"])
    return {"val_r2_mean": round(sum(scores) / len(scores), 4), "val_r2": [round(s, 4) for s in scores]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["cv", "val"])
    parser.add_argument("grid", help="JSON list of settings")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_data(DataConfig(dataset="diabetes", val_size=66))
    for setting in json.loads(args.grid):
        started = time.perf_counter()
        scores = (cross_validate if args.mode == "cv" else validation)(data, **setting)
        print(json.dumps({"mode": args.mode, **setting, **scores, "s": round(time.perf_counter() - started, 1)}),
              flush=True)


if __name__ == "__main__":
    main()
