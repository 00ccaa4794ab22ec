"""Speed of distillation on Fashion-MNIST: is distilling as cheap as training the student alone?

Per teacher (a small MLP, ~2.4M parameters, and a conv-heavy CNN, ~290k parameters), the same
student is trained for a few epochs as
  (a) the student alone (cross-entropy),
  (b) KD with the teacher run live on every batch,
  (c) KD with the teacher knowledge cache (``knowledge/cache.py``), built once before training,
with the three interleaved epoch by epoch so machine load hits them alike. Reported: median epoch
wall time (the first epoch is a warm-up and left out), b/a and c/a, samples/s, the peak resident
memory seen while each ran, and the one-off cache build time. Augmentation (crop + flip) is on.

``--pair`` times a pair unlike the ones above instead (issue 16): a 1.23M-parameter ResNet teacher
(resnet depth 8, width 4: the zoo's nearest to 1.21M) and a 28.9k-parameter CNN student, batch 128,
the student alone against KD from the cache, epochs alternating inside this one process, process
CPU time per epoch, with and without augmentation; ``--profile`` adds the ops whose CPU time differs
most between the two steps.

A second, reduced part compares accuracy at equal epochs: live KD (a fresh augmentation every
epoch) against the cache with 1 stored view and with k views (Beyer et al. 2022: "Knowledge
distillation: A good teacher is patient and consistent").

Runs on one CPU thread (torch.set_num_threads(1)) so that it disturbs other work on the machine
little and its numbers do not depend on how busy the other cores are.

    .venv/bin/python benchmarks/speed.py                 # about 20-40 minutes on a busy 2-core machine
    .venv/bin/python benchmarks/speed.py --quick         # a smoke run of a minute
    .venv/bin/python benchmarks/speed.py --pair          # the ResNet / small-CNN pair, about 10-20 minutes
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from distill.config.schema import AugmentConfig, DataConfig, TrainConfig
from distill.data.batches import InMemoryBatches
from distill.data.bundle import load_data
from distill.knowledge.cache import CacheOptions, build_cache
from distill.knowledge.teacher import LiveTeacher, freeze
from distill.methods.base import build_method
from distill.methods.supervised import Supervised
from distill.models.predict import predict
from distill.models.registry import build_model
from distill.train.trainer import Trainer, input_preparer

try:
    from distill.train.label_loss import label_loss
    from distill.types import Outputs
except ImportError:  # the code before issue 16 (methods returned their own label term): --pair runs on it too
    from distill.methods.base import Outputs

    label_loss = None

TEACHERS = {
    "small (MLP 1536-768)": ("mlp", {"hidden": [1536, 768]}),
    "large (CNN 32-64-128 x2 convs)": ("cnn", {"channels": [32, 64, 128], "convs_per_stage": 2}),
}
STUDENT = ("cnn", {"channels": [16, 32, 64]})
PAIR_TEACHER = ("resnet", {"depth": 8, "width": 4.0})  # 1,226,442 parameters on Fashion-MNIST
PAIR_STUDENT = ("cnn", {"channels": [32, 32], "convs_per_stage": 2, "hidden": 16})  # 28,890 parameters
RESULTS = Path(__file__).parent / "results"


class EpochShift:
    """Presents epoch ``shift`` of ``source`` as epoch 0, so one-epoch ``fit`` calls walk through epochs.

    Also times the epoch from the first batch asked for to the end of the last step: ``wall`` seconds
    and ``cpu`` seconds of this process (CPU time is less sensitive to other load on a shared machine).
    """

    def __init__(self, source: InMemoryBatches, shift: int):
        self.source, self.shift = source, shift
        self.wall = self.cpu = 0.0

    def __len__(self) -> int:
        return len(self.source)

    def epoch(self, epoch: int):
        wall, cpu = time.perf_counter(), time.process_time()
        yield from self.source.epoch(epoch + self.shift)
        self.wall, self.cpu = time.perf_counter() - wall, time.process_time() - cpu


class PeakRSS:
    """Polls this process's resident set size while open; ``peak`` is the largest value seen (bytes)."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak = interval, 0
        self._stop = threading.Event()

    @staticmethod
    def now() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peak = self.now()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def model(spec: tuple[str, dict], data, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(spec[0], data.input_shape, data.num_classes, **spec[1])


def trainer(name, student, method, teacher_fn, train_cfg) -> Trainer:
    return Trainer(name, student, train_cfg, method, teacher=teacher_fn, seed=0)


def batches(data, batch_size: int, views: int | None = None) -> InMemoryBatches:
    return InMemoryBatches(data.train.inputs, data.train.targets, batch_size, augment=data.augment, seed=0,
                           views=views)


def cached(teacher, data, views: int, epochs: int, directory: Path | None):
    live = LiveTeacher(teacher, prepare=input_preparer(teacher, True))
    return build_cache(live, data.train.inputs, data.train.targets, data.augment, 0, epochs,
                       CacheOptions(views=views, dtype="float16"), directory, torch.device("cpu"), log=lambda _: None)


def time_teacher(label: str, spec, data, args, workdir: Path) -> dict:
    teacher = freeze(model(spec, data, seed=1))
    one_epoch = TrainConfig(epochs=1, batch_size=args.batch_size)
    cache = cached(teacher, data, 1, args.timing_epochs, workdir / "cache")
    runs = {
        "a_student_alone": (trainer("a", model(STUDENT, data), Supervised(), None, one_epoch), batches(data, args.batch_size)),
        "b_kd_live": (trainer("b", model(STUDENT, data), build_method("kd"),
                              LiveTeacher(teacher, prepare=input_preparer(teacher, True)), one_epoch),
                      batches(data, args.batch_size)),
        "c_kd_cached": (trainer("c", model(STUDENT, data), build_method("kd"), cache, one_epoch),
                        batches(data, args.batch_size, views=cache.views)),
    }
    seconds: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    peaks = dict.fromkeys(runs, 0)
    for epoch in range(args.timing_epochs):
        for key, (tr, source) in runs.items():
            shifted = EpochShift(source, epoch)
            with PeakRSS() as rss:
                tr.fit(shifted, data.val.inputs[:500], data.val.targets[:500])
            seconds[key].append(shifted.wall)
            cpu[key].append(shifted.cpu)
            peaks[key] = max(peaks[key], rss.peak)
    n = len(data.train)
    out = {"teacher": label, "teacher_params": sum(p.numel() for p in teacher.parameters()),
           "cache_build_seconds": cache.build_seconds, "cache_bytes": cache.nbytes, "configs": {}}
    for key in runs:
        med = statistics.median(seconds[key][1:] or seconds[key])
        out["configs"][key] = {"epoch_seconds": seconds[key], "median_epoch_seconds": med,
                               "epoch_cpu_seconds": cpu[key],
                               "median_epoch_cpu_seconds": statistics.median(cpu[key][1:] or cpu[key]),
                               "samples_per_second": n / med, "peak_rss_mib": peaks[key] / 2**20}
    ratios(out)
    print(f"{label}: wall b/a {out['b_over_a']:.2f}, c/a {out['c_over_a']:.2f}; cpu b/a {out['b_over_a_cpu']:.2f}, "
          f"c/a {out['c_over_a_cpu']:.2f}; cache build {cache.build_seconds:.1f}s", flush=True)
    return out


def ratios(out: dict) -> None:
    """b/a and c/a as ratios of medians, and as medians of per-epoch ratios (epochs ran side by side, so
    a burst of load hits a, b and c of one epoch alike); wall and CPU time; the warm-up epoch left out."""
    c = out["configs"]
    for kind in ("", "_cpu"):
        a = c["a_student_alone"][f"median_epoch{kind}_seconds"]
        a_epochs = c["a_student_alone"][f"epoch{kind}_seconds"]
        for x, key in (("b", "b_kd_live"), ("c", "c_kd_cached")):
            out[f"{x}_over_a{kind}"] = c[key][f"median_epoch{kind}_seconds"] / a
            paired = [t / s for t, s in zip(c[key][f"epoch{kind}_seconds"], a_epochs, strict=True)]
            out[f"{x}_over_a{kind}_paired"] = statistics.median(paired[1:] or paired)


def accuracy_part(data, args, workdir: Path) -> dict:
    """Equal epochs: live KD (fresh views) vs cache with 1 view vs cache with k views; plus the student alone."""
    spec = TEACHERS["large (CNN 32-64-128 x2 convs)"]
    teacher = model(spec, data, seed=1)
    t_cfg = TrainConfig(epochs=args.teacher_epochs, batch_size=args.batch_size)
    trainer("teacher", teacher, Supervised(), None, t_cfg).fit(batches(data, args.batch_size),
                                                                data.val.inputs, data.val.targets)
    freeze(teacher)
    test_x, test_y = data.test.inputs, data.test.targets
    acc = lambda m: float((predict(m, test_x, 1000, input_preparer(m, True)).argmax(-1) == test_y).float().mean())  # noqa: E731
    s_cfg = TrainConfig(epochs=args.acc_epochs, batch_size=args.batch_size)
    out = {"teacher_test_accuracy": acc(teacher), "epochs": args.acc_epochs, "train_samples": len(data.train),
           "students": {}}
    setups = {
        "student alone": (Supervised(), None, None),
        "KD live (fresh view each epoch)": (build_method("kd"), LiveTeacher(teacher, prepare=input_preparer(teacher, True)), None),
        "KD cache, 1 view": (build_method("kd"), cached(teacher, data, 1, args.acc_epochs, workdir / "acc1"), 1),
        f"KD cache, {args.views} views": (build_method("kd"), cached(teacher, data, args.views, args.acc_epochs,
                                                                     workdir / "acck"), args.views),
    }
    for name, (method, teacher_fn, views) in setups.items():
        student = model(STUDENT, data)
        started = time.perf_counter()
        result = trainer(name, student, method, teacher_fn, s_cfg).fit(
            batches(data, args.batch_size, views), data.val.inputs, data.val.targets)
        out["students"][name] = {"final_test_accuracy": acc(student), "best_val_accuracy": result.best_val_accuracy,
                                 "train_seconds": result.seconds, "wall_seconds": time.perf_counter() - started}
        print(f"{name}: test acc {out['students'][name]['final_test_accuracy']:.4f}", flush=True)
    return out


def markdown(result: dict) -> str:
    lines = ["| teacher | params | (a) alone s/epoch | (b) KD live s/epoch | (c) KD cached s/epoch | b/a | c/a "
             "| b/a, c/a per-epoch pairs | b/a, c/a in CPU time | samples/s a / b / c | peak RSS MiB a / b / c "
             "| cache build s (size) |",
             "|---|---:|---:|---:|---:|---:|---:|---|---|---|---|---|"]
    for t in result["timing"]:
        c = t["configs"]
        cells = [c[k] for k in ("a_student_alone", "b_kd_live", "c_kd_cached")]
        lines.append(
            f"| {t['teacher']} | {t['teacher_params']:,} | "
            + " | ".join(f"{x['median_epoch_seconds']:.2f}" for x in cells)
            + f" | {t['b_over_a']:.2f} | {t['c_over_a']:.2f} | {t['b_over_a_paired']:.2f}, {t['c_over_a_paired']:.2f}"
            + f" | {t['b_over_a_cpu']:.2f}, {t['c_over_a_cpu']:.2f} | "
            + " / ".join(f"{x['samples_per_second']:.0f}" for x in cells) + " | "
            + " / ".join(f"{x['peak_rss_mib']:.0f}" for x in cells)
            + f" | {t['cache_build_seconds']:.1f} ({t['cache_bytes'] / 1024:.0f} KiB) |")
    acc = result.get("accuracy")
    if acc:
        lines += ["", f"Accuracy at equal epochs ({acc['epochs']} epochs, {acc['train_samples']} training samples, "
                      f"teacher test accuracy {acc['teacher_test_accuracy']:.4f}):", "",
                  "| student | test accuracy | best val accuracy | train s |", "|---|---:|---:|---:|"]
        for name, s in acc["students"].items():
            lines.append(f"| {name} | {s['final_test_accuracy']:.4f} | {s['best_val_accuracy']:.4f} | "
                         f"{s['train_seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def pair_part(args, workdir: Path) -> dict:
    """Student alone vs KD from the cache on the ResNet / small-CNN pair, epochs alternating in-process."""
    out = {"teacher": PAIR_TEACHER, "student": PAIR_STUDENT, "batch_size": args.batch_size,
           "epochs": args.timing_epochs, "runs": {}}
    for augmented in (False, True):
        data = load_data(DataConfig(train_subset=args.train_samples, augment=AugmentConfig() if augmented else None))
        teacher = freeze(model(PAIR_TEACHER, data, seed=1))
        cache = cached(teacher, data, 1, args.timing_epochs, workdir / f"pair-{augmented}")
        one_epoch = TrainConfig(epochs=1, batch_size=args.batch_size)
        runs = {"alone": (trainer("alone", model(PAIR_STUDENT, data), Supervised(), None, one_epoch),
                          batches(data, args.batch_size)),
                "kd_cached": (trainer("kd", model(PAIR_STUDENT, data), build_method("kd"), cache, one_epoch),
                              batches(data, args.batch_size, views=cache.views))}
        cpu: dict[str, list[float]] = {k: [] for k in runs}
        for epoch in range(args.timing_epochs):
            for key, (tr, source) in (runs.items() if epoch % 2 == 0 else reversed(runs.items())):
                shifted = EpochShift(source, epoch)  # alternate the order too: neither always runs first
                tr.fit(shifted, data.val.inputs[:500], data.val.targets[:500])
                cpu[key].append(shifted.cpu)
        paired = [k / a for k, a in zip(cpu["kd_cached"], cpu["alone"], strict=True)][1:]  # epoch 0: warm-up
        entry = {"augmentation": augmented, "teacher_params": sum(p.numel() for p in teacher.parameters()),
                 "student_params": sum(p.numel() for p in model(PAIR_STUDENT, data).parameters()),
                 "epoch_cpu_seconds": cpu, "ratio_paired_median": statistics.median(paired),
                 "ratio_of_medians": statistics.median(cpu["kd_cached"][1:]) / statistics.median(cpu["alone"][1:]),
                 "cache_build_seconds": cache.build_seconds}
        entry["steps_per_epoch"] = len(runs["alone"][1])
        entry["alone_step_cpu_ms"] = 1000 * statistics.median(cpu["alone"][1:]) / entry["steps_per_epoch"]
        entry["loss_side_us"] = loss_side_cost(cache, runs["kd_cached"][1], data.num_classes)
        extra = entry["loss_side_us"]["kd_cached"] - entry["loss_side_us"]["alone"]
        entry["loss_side_share"] = extra / 1000 / entry["alone_step_cpu_ms"]
        if args.profile:
            entry["profile"] = profile_steps({k: tr for k, (tr, _) in runs.items()},
                                             {k: src for k, (_, src) in runs.items()}, data)
        out["runs"]["augmented" if augmented else "plain"] = entry
        print(f"pair, augmentation {'on' if augmented else 'off'}: KD cached / alone CPU time per epoch "
              f"{entry['ratio_paired_median']:.3f} (paired median), {entry['ratio_of_medians']:.3f} (ratio of medians); "
              f"student step {entry['alone_step_cpu_ms']:.1f} ms CPU, of which KD's extra work (cache lookup + loss, "
              f"forward and backward) {extra:.0f} us = {100 * entry['loss_side_share']:.2f}%", flush=True)
    return out


def loss_side_cost(cache, source, classes: int, repeats: int = 300) -> dict[str, float]:
    """CPU microseconds per step of what KD adds to a step: the cache lookup and the KD loss (forward and
    backward), against the student-alone loss, on the logits of one real batch (the models left out)."""
    batch = next(iter(source.epoch(0)))
    kd = build_method("kd")
    logits = torch.randn(len(batch.targets), classes, requires_grad=True)

    def label(weight: float):  # the trainer's one label term, as in TrainStep
        return weight * label_loss(logits, batch.targets, all_labelled=True) if label_loss else 0.0

    def kd_side():
        (label(getattr(kd, "label_weight", 0.0)) + sum(kd.losses(Outputs(logits), cache(batch), batch).values())).backward()

    def alone_side():
        (label(1.0) + sum(Supervised().losses(Outputs(logits), None, batch).values())).backward()

    out = {}
    for key, fn in (("kd_cached", kd_side), ("alone", alone_side)) * 2:  # twice: the first round warms up
        started = time.process_time()
        for _ in range(repeats):
            fn()
        out[key] = 1e6 * (time.process_time() - started) / repeats
    return out


def profile_steps(trainers: dict, sources: dict, data, steps: int = 40) -> dict:
    """Self CPU time per op over ``steps`` training steps of each run; the ops KD spends most extra time in."""
    from torch.profiler import ProfilerActivity, profile

    tables = {}
    for key, tr in trainers.items():
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            tr.fit(Steps(sources[key], steps), data.val.inputs[:2], data.val.targets[:2])
        tables[key] = {e.key: e.self_cpu_time_total for e in prof.key_averages()}
    alone, kd = tables["alone"], tables["kd_cached"]
    extra = {op: (kd.get(op, 0) - alone.get(op, 0)) / steps for op in set(alone) | set(kd)}
    top = dict(sorted(extra.items(), key=lambda kv: -abs(kv[1]))[:15])
    print("ops with the largest extra self CPU time per step, KD cached - alone (microseconds):")
    for op, us in top.items():
        print(f"  {op:<48} {us:+9.1f}")
    return {"extra_us_per_step": top, "alone_total_us_per_step": sum(alone.values()) / steps,
            "kd_total_us_per_step": sum(kd.values()) / steps}


class Steps:
    """The first ``n`` batches of one epoch of ``source`` (a short, profiled fit)."""

    def __init__(self, source, n: int):
        self.source, self.n = source, n

    def __len__(self) -> int:
        return self.n

    def epoch(self, epoch: int):
        for i, batch in enumerate(self.source.epoch(epoch)):
            if i == self.n:
                return
            yield batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-samples", type=int, default=12000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--timing-epochs", type=int, default=5, help="the first is a warm-up, not in the median")
    parser.add_argument("--teacher-epochs", type=int, default=4)
    parser.add_argument("--acc-epochs", type=int, default=8)
    parser.add_argument("--views", type=int, default=4, help="k for the k-view cache in the accuracy part")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    parser.add_argument("--pair", action="store_true", help="only the ResNet teacher / 28.9k CNN student pair")
    parser.add_argument("--profile", action="store_true", help="with --pair: profile the two training steps")
    parser.add_argument("--out", type=Path, default=RESULTS / "speed.json")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="only recompute the ratios and the table from a results file this script wrote")
    args = parser.parse_args()
    if args.render:
        result = json.loads(args.render.read_text())
        for t in result["timing"]:
            ratios(t)
        args.render.write_text(json.dumps(result, indent=1))
        args.render.with_suffix(".md").write_text(markdown(result))
        print(markdown(result))
        return
    if args.quick:
        args.train_samples, args.timing_epochs, args.teacher_epochs, args.acc_epochs = 1000, 2, 1, 2
    torch.set_num_threads(1)
    if args.pair:
        with tempfile.TemporaryDirectory() as tmp:
            result = {"command": "python benchmarks/speed.py " + " ".join(sys.argv[1:]), "torch": torch.__version__,
                      "threads": torch.get_num_threads(), "train_samples": args.train_samples,
                      "pair": pair_part(args, Path(tmp))}
        path = args.out if args.out != RESULTS / "speed.json" else RESULTS / "speed_pair.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1))
        print(f"wrote {path}")
        return
    data = load_data(DataConfig(train_subset=args.train_samples, test_subset=2000 if args.quick else None))
    result = {"command": "python benchmarks/speed.py " + " ".join(sys.argv[1:]), "settings": {
                  k: str(v) for k, v in vars(args).items()},
              "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.processor(),
              "train_samples": len(data.train), "augmentation": "crop padding 2 + horizontal flip",
              "student": STUDENT, "timing": []}
    with tempfile.TemporaryDirectory() as tmp:
        for label, spec in TEACHERS.items():
            result["timing"].append(time_teacher(label, spec, data, args, Path(tmp) / label.split()[0]))
        if not args.skip_accuracy:
            result["accuracy"] = accuracy_part(data, args, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    table = markdown(result)
    args.out.with_suffix(".md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
