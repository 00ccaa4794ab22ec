"""Text distillation benchmark on SST-2 or TREC: MiniLM teacher -> BiLSTM / TextCNN / small transformer.

The teacher is fine-tuned once (cached in --out); its logits on train, transfer set, val and
test are computed once and reused by every distilled student. For each student and seed:
trained alone (labels), distilled (KD on the training set) and distilled with the transfer
set (KD on train + augmented unlabelled sentences). Results are appended to JSON as they
come in, so a cut-off run still leaves its finished rows.

    .venv/bin/python benchmarks/text.py --out runs/bench-text
    .venv/bin/python benchmarks/text.py --out runs/sst2-bench \
        --teacher-checkpoint runs/sst2/checkpoints/teacher-best.safetensors --transfer-multiplier 4
    .venv/bin/python benchmarks/text.py --dataset trec --out runs/bench-trec
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from distill.config.schema import DataConfig, TrainConfig
from distill.data.text import BucketedBatches, predict_by_length
from distill.data.text_bundle import load_text_data
from distill.evaluate.cost import latency_ms
from distill.knowledge.teacher import freeze
from distill.methods.base import Outputs
from distill.methods.kd import KD
from distill.methods.supervised import Supervised
from distill.models.registry import build_model, count_parameters
from distill.train.checkpoint import load_weights_into
from distill.train.trainer import Trainer

TEACHER = {"name": "hf_classifier", "options": {"trainable_layers": 3}}
TEACHER_TRAIN = TrainConfig(epochs=1, batch_size=32, optimizer="adamw", lr=1e-4, weight_decay=0.01,
                            warmup_epochs=0.1, schedule="cosine", grad_clip=1.0)
STUDENTS = {
    # Token embeddings start from the teacher's and stay frozen (Kim's "static" variant): an AdamW update
    # of 30522 x 384 embedding rows per step would dominate training time on a CPU.
    "textcnn": ({"filters": 100, "freeze_embeddings": True}, TrainConfig(epochs=3, batch_size=50, optimizer="adamw", lr=1e-3,
                                              weight_decay=0.0, schedule="cosine")),
    "bilstm": ({"hidden": 200, "fc": 200, "freeze_embeddings": True}, TrainConfig(epochs=3, batch_size=50, optimizer="adamw", lr=1e-3,
                                                       weight_decay=0.0, schedule="cosine", grad_clip=5.0)),
    "text_transformer": ({"init_from_teacher": {"layers": [0, 5]}, "freeze_embeddings": True},
                         TrainConfig(epochs=1, batch_size=32, optimizer="adamw", lr=2e-4, weight_decay=0.01,
                                     warmup_epochs=0.1, schedule="cosine", grad_clip=1.0)),
}
KD_OPTIONS = {"temperature": 2.0, "alpha": 0.7, "beta": 0.3}
# Per dataset: the data section (as in examples/<name>.yaml) and the teacher's epochs.
DATASETS = {
    "sst2": ({"dataset": "sst2", "text": {"max_length": 64}}, 1),
    "trec": ({"dataset": "trec", "text": {"max_length": 32, "val_fraction": 0.1}}, 2),
}


class CachedTeacher:
    """Looks up the teacher's stored logits by sample index (train rows first, then transfer rows)."""

    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    def __call__(self, batch) -> Outputs:
        if batch.index is None:  # the trainer's probe: shapes only
            return Outputs(self.logits[: len(batch.targets)].clone())
        return Outputs(self.logits[batch.index])


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    return float((logits.argmax(-1) == targets).float().mean())


def latencies(model, data, repeats: int) -> dict:
    """Median CPU latency (1 thread) at batch 1 (a median-length test sentence) and batch 64."""
    model = model.cpu().eval()
    lengths = (data.test.inputs != 0).sum(1)
    median_row = int(torch.argsort(lengths)[len(lengths) // 2])
    one = data.test.inputs[median_row : median_row + 1]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        b1 = latency_ms(model, one, 1, repeats)
        b64 = statistics.median(_timed(model, data.test.inputs[i * 64 : (i + 1) * 64]) for i in range(5))
    finally:
        torch.set_num_threads(threads)
    return {"latency_ms_b1": b1, "latency_ms_b64": b64}


@torch.inference_mode()
def _timed(model, x) -> float:
    start = time.perf_counter()
    model(x)
    return (time.perf_counter() - start) * 1000.0


def fit(name, model, cfg, method, data, inputs, targets, teacher=None, seed=0, log=print):
    trainer = Trainer(name, model, cfg, method, teacher=teacher, seed=seed, channels_last=False,
                      callbacks=[lambda t, r: log(f"  {name} epoch {r['epoch']}: val {r['val_accuracy']:.4f}, "
                                                  f"{r['epoch_seconds']:.0f}s")])
    batches = BucketedBatches(inputs, targets, cfg.batch_size, seed=seed)
    started = time.perf_counter()
    # Validation on the whole val split through the trainer (the trainer keeps the best epoch's weights).
    result = trainer.fit(batches, data.val.inputs, data.val.targets)
    return trainer.model, result, time.perf_counter() - started


def teacher_stage(data, out: Path, log, checkpoint: str | None = None) -> dict:
    cached = out / "teacher.pt"
    if cached.is_file():
        log(f"teacher: cached in {cached}")
        record = torch.load(cached, weights_only=True)
        sizes = {name: len(record["logits"][name]) for name in ("train", "transfer") if record["logits"][name] is not None}
        wanted = {"train": len(data.train)}
        if data.meta["transfer"] is not None:
            wanted["transfer"] = len(data.meta["transfer"].targets)
        if sizes != wanted:
            raise SystemExit(f"{cached} holds teacher logits for {sizes} sentences but this run has {wanted}; "
                             f"use another --out for a different --transfer-multiplier or --train-subset")
        return record
    torch.manual_seed(0)
    teacher = build_model(TEACHER["name"], data.input_shape, data.num_classes, **TEACHER["options"])
    if checkpoint:
        # e.g. the teacher `distill run examples/sst2.yaml` fine-tuned; its training time is in that run.
        load_weights_into(teacher, checkpoint)
        seconds = None
        log(f"teacher: weights from {checkpoint}")
    else:
        teacher, result, seconds = fit("teacher", teacher, TEACHER_TRAIN, Supervised(), data, data.train.inputs,
                                       data.train.targets, log=log)
        log(f"teacher trained in {seconds:.0f}s")
    freeze(teacher)
    log("computing the teacher's logits")
    transfer = data.meta["transfer"]
    logits = {"train": predict_by_length(teacher, data.train.inputs),
              "transfer": predict_by_length(teacher, transfer.inputs) if transfer is not None else None,
              "val": predict_by_length(teacher, data.val.inputs),
              "test": predict_by_length(teacher, data.test.inputs)}
    record = {"logits": logits, "train_seconds": seconds, "params": count_parameters(teacher),
              "test_accuracy": accuracy(logits["test"], data.test.targets),
              "val_accuracy": accuracy(logits["val"], data.val.targets), **latencies(teacher, data, 10)}
    torch.save(record, cached)
    return record


def student_run(student, mode, seed, data, teacher, log) -> dict:
    options, cfg = STUDENTS[student]
    torch.manual_seed(seed)
    model = build_model(student, data.input_shape, data.num_classes, **options,
                        **({"vocab_size": None, "pad_id": 0} if student != "text_transformer" else {}))
    inputs, targets, teacher_fn, method = data.train.inputs, data.train.targets, None, Supervised()
    if mode != "alone":
        method = KD(**KD_OPTIONS)
        logits = teacher["logits"]["train"]
        if mode == "kd+transfer":
            transfer = data.meta["transfer"]
            inputs = torch.cat([inputs, transfer.inputs])
            targets = torch.cat([targets, transfer.targets])
            logits = torch.cat([logits, teacher["logits"]["transfer"]])
        teacher_fn = CachedTeacher(logits)
    model, result, seconds = fit(f"{student}/{mode}/s{seed}", model, cfg, method, data, inputs, targets,
                                 teacher_fn, seed, log)
    test_logits = predict_by_length(model, data.test.inputs)
    multiplier = len(data.meta["transfer"].targets) // len(data.train) if mode == "kd+transfer" else 0
    return {"student": student, "mode": mode, "seed": seed, "transfer_multiplier": multiplier,
            "test_accuracy": accuracy(test_logits, data.test.targets),
            "val_accuracy": result.history[-1]["val_accuracy"], "params": count_parameters(model),
            "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad), "train_seconds": seconds,
            "agreement": float((test_logits.argmax(-1) == teacher["logits"]["test"].argmax(-1)).float().mean()),
            **latencies(model, data, 20)}


def mode_label(row: dict) -> str:
    multiplier = row.get("transfer_multiplier", 1)  # rows from before the field existed used x1
    return f"{row['mode']} x{multiplier}" if row["mode"] == "kd+transfer" else row["mode"]


def table(teacher: dict, rows: list[dict]) -> str:
    seconds = teacher["train_seconds"]
    teacher_seconds = "in its run" if seconds is None else f"{seconds:.0f}"
    lines = ["| model | mode | seeds | test acc (mean ± sd) | vs alone | params | ms b1 | ms b64 | speed-up b1 | train s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
             f"| teacher MiniLM-L6 | fine-tuned | 1 | {100 * teacher['test_accuracy']:.2f} | | "
             f"{teacher['params'] / 1e6:.1f}M | {teacher['latency_ms_b1']:.2f} | {teacher['latency_ms_b64']:.1f} | "
             f"1.0x | {teacher_seconds} |"]
    groups: dict[tuple, list[dict]] = {}
    for row in sorted(rows, key=lambda r: (r["student"], r["mode"] != "alone", mode_label(r))):
        groups.setdefault((row["student"], mode_label(row)), []).append(row)
    for (student, mode), group in groups.items():
        acc = [100 * r["test_accuracy"] for r in group]
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        alone = groups.get((student, "alone"))
        gain = "" if mode == "alone" or not alone else \
            f"{statistics.mean(acc) - statistics.mean(100 * r['test_accuracy'] for r in alone):+.2f}"
        b1 = statistics.median(r["latency_ms_b1"] for r in group)
        b64 = statistics.median(r["latency_ms_b64"] for r in group)
        secs = statistics.mean(r["train_seconds"] for r in group)
        lines.append(f"| {student} | {mode} | {len(group)} | {statistics.mean(acc):.2f} ± {sd:.2f} | {gain} | "
                     f"{group[0]['params'] / 1e6:.1f}M | {b1:.2f} | {b64:.1f} | "
                     f"{teacher['latency_ms_b1'] / b1:.1f}x | {secs:.0f} |")
    return "\n".join(lines)


def merge(out: Path, dirs: list[Path]) -> None:
    """Combine runs that shared one cached teacher (e.g. students run in parallel processes)."""
    results = [json.loads((d / "results.json").read_text()) for d in dirs if (d / "results.json").is_file()]
    rows = [r for res in results for r in res["students"]]
    teacher = results[0]["teacher"]
    combined = {"teacher": teacher, "students": rows, "kd_options": results[0]["kd_options"],
                "merged_from": [str(d) for d in dirs]}
    (out / "results.json").write_text(json.dumps(combined, indent=1))
    (out / "table.md").write_text(table(teacher, rows) + "\n")
    print(table(teacher, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="sst2")
    parser.add_argument("--teacher-epochs", type=int, default=None, help="default: 1 for sst2, 2 for trec")
    parser.add_argument("--teacher-checkpoint", default=None,
                        help="use this fine-tuned teacher (a run's checkpoints/teacher-best.safetensors) instead "
                             "of fine-tuning one")
    parser.add_argument("--teacher-layers", type=int, default=None,
                        help="fine-tune the top N of MiniLM's 6 layers (default 3)")
    parser.add_argument("--out", default="runs/bench-text")
    parser.add_argument("--students", nargs="+", default=["textcnn", "bilstm", "text_transformer"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--modes", nargs="+", default=["alone", "kd", "kd+transfer"])
    parser.add_argument("--transfer-multiplier", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--train-subset", type=int, default=None, help="smoke runs: fewer training sentences")
    parser.add_argument("--epochs", type=int, default=None, help="smoke runs: override every epoch count")
    parser.add_argument("--merge", nargs="+", default=[], metavar="DIR",
                        help="only combine the results.json of these runs (same teacher) into --out")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.merge:
        merge(out, [Path(d) for d in args.merge])
        return
    log_file = open(out / "log.txt", "a")

    def log(msg: str) -> None:
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    section, teacher_epochs = DATASETS[args.dataset]
    global TEACHER_TRAIN
    TEACHER_TRAIN = TEACHER_TRAIN.model_copy(update={"epochs": args.teacher_epochs or teacher_epochs})
    if args.teacher_layers:
        TEACHER["options"]["trainable_layers"] = args.teacher_layers
    if args.epochs:
        TEACHER_TRAIN = TEACHER_TRAIN.model_copy(update={"epochs": args.epochs})
        for name, (options, train) in STUDENTS.items():
            STUDENTS[name] = (options, train.model_copy(update={"epochs": args.epochs}))
    transfer = {"size_multiplier": args.transfer_multiplier, "mask_prob": 0.1, "swap_prob": 0.1, "ngram_prob": 0.25}
    cfg = DataConfig(**{**section, "train_subset": args.train_subset,
                        "text": {**section["text"], "transfer_set": transfer}})
    data = load_text_data(cfg)
    log(f"{args.dataset}: teacher {TEACHER}, {TEACHER_TRAIN.epochs} epoch(s); train {len(data.train)}, val {len(data.val)}, test {len(data.test)}, "
        f"transfer {len(data.meta['transfer'].targets)}; lengths {data.meta['lengths']['train']}")
    teacher = teacher_stage(data, out, log, args.teacher_checkpoint)
    log(f"teacher: test {teacher['test_accuracy']:.4f}, b1 {teacher['latency_ms_b1']:.2f} ms")
    results_path = out / "results.json"
    rows = json.loads(results_path.read_text())["students"] if results_path.is_file() else []
    done = {(r["student"], r["mode"], r["seed"]) for r in rows}
    for seed in args.seeds:
        for student in args.students:
            for mode in args.modes:
                if (student, mode, seed) in done:
                    continue
                row = student_run(student, mode, seed, data, teacher, log)
                log(f"{student} {mode} seed {seed}: test {row['test_accuracy']:.4f}, b1 {row['latency_ms_b1']:.2f} ms")
                rows.append(row)
                summary = {k: v for k, v in teacher.items() if k != "logits"}
                results_path.write_text(json.dumps({"dataset": args.dataset, "teacher": summary, "students": rows,
                                                    "kd_options": KD_OPTIONS}, indent=1))
                (out / "table.md").write_text(table(teacher, rows) + "\n")
    print(table(teacher, rows))


if __name__ == "__main__":
    main()
