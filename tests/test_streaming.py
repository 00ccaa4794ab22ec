"""Data bigger than memory: images read from disk by DataLoader workers (data/lazy.py, data/stream.py).

The streamed batches must be the in-memory path's batches (same order, same augmentation draws,
mixed views included), the teacher cache built from disk must hold the teacher's outputs on the
very view the student then sees (looked up by sample id and view), memory-mapped, and a whole run
over a folder of PNGs must stay under a memory budget smaller than the decoded images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from distill.data.augment import BatchAugment
from distill.data.batches import InMemoryBatches
from distill.data.lazy import LazyInputs
from distill.data.stream import StreamBatches
from distill.errors import DataError
from distill.knowledge.cache import CachedTeacher, CacheOptions, build_cache
from distill.knowledge.teacher import LiveTeacher, freeze


class GrayDecode:
    """PNG -> (1, H, W) float in [0, 1] (picklable, as a worker needs)."""

    def __call__(self, path: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(Image.open(path), dtype=np.float32) / 255.0).unsqueeze(0)


def write_pngs(folder, images: torch.Tensor) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"{i:05d}.png"
        Image.fromarray(image.numpy()).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    images = torch.randint(0, 256, (150, 12, 12), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    paths = write_pngs(tmp_path_factory.mktemp("pngs"), images)
    return paths, images.float().unsqueeze(1) / 255.0, torch.arange(150) % 5


def test_lazy_inputs_decode_only_what_is_asked(pngs):
    paths, dense, _ = pngs
    lazy = LazyInputs(paths, GrayDecode())
    assert len(lazy) == 150 and lazy.shape == dense.shape and lazy.dim() == 4 and lazy.is_floating_point()
    assert lazy.nbytes == dense.numel() * 4
    assert torch.equal(lazy[:3], dense[:3]) and torch.equal(lazy[torch.tensor([7, 2])], dense[[7, 2]])
    part = lazy.subset(torch.tensor([4, 9]))  # still files: nothing decoded
    assert isinstance(part, LazyInputs) and part.paths == [paths[4], paths[9]]


@pytest.mark.parametrize("augment", [None, BatchAugment(2, True), BatchAugment(2, True, mixup=0.4, cutmix=1.0)],
                         ids=["plain", "crop-flip", "mixup-cutmix"])
@pytest.mark.parametrize("views", [None, 2], ids=["fresh", "stored-views"])
def test_streamed_batches_are_the_in_memory_batches(pngs, augment, views):
    paths, dense, targets = pngs
    memory = InMemoryBatches(dense, targets, 32, augment=augment, seed=3, views=views)
    stream = StreamBatches(LazyInputs(paths, GrayDecode()), targets, 32, augment=augment, seed=3, views=views,
                           workers=2)
    assert len(stream) == len(memory)
    for epoch in range(2):
        pairs = list(zip(memory.epoch(epoch), stream.epoch(epoch), strict=True))
        assert len(pairs) == len(memory)
        for a, b in pairs:
            assert torch.equal(a.index, b.index) and torch.equal(a.targets, b.targets)
            torch.testing.assert_close(b.inputs, a.inputs)
            assert getattr(a.view, "id", None) == getattr(b.view, "id", None)


def tiny_teacher() -> torch.nn.Module:
    torch.manual_seed(0)
    return freeze(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(144, 5)))


def test_cache_from_disk_replays_the_students_view_and_is_memory_mapped(pngs, tmp_path):
    paths, dense, targets = pngs
    teacher, augment = tiny_teacher(), BatchAugment(2, True, mixup=0.4)
    options = CacheOptions(views=2, dtype="float32", workers=2)
    cache = build_cache(LiveTeacher(teacher, ()), LazyInputs(paths, GrayDecode()), targets, augment, 5, 2, options,
                        tmp_path / "cache", "cpu", log=lambda _: None)
    assert isinstance(cache, CachedTeacher) and not cache.in_memory  # memory-mapped although it is tiny
    assert isinstance(cache.arrays["logits"], np.memmap)
    stream = StreamBatches(LazyInputs(paths, GrayDecode()), targets, 40, augment=augment, seed=5, views=2, workers=2)
    for epoch in range(2):
        for batch in stream.epoch(epoch):
            with torch.no_grad():
                live = teacher(batch.inputs)  # the teacher on exactly what the student sees
            torch.testing.assert_close(cache(batch).logits, live, rtol=1e-5, atol=1e-5)
    # the in-memory cache of the same images holds the same values
    memory = build_cache(LiveTeacher(teacher, ()), dense, targets, augment, 5, 2, options, None, "cpu",
                         log=lambda _: None)
    torch.testing.assert_close(torch.from_numpy(np.array(cache.arrays["logits"])), memory.arrays["logits"])


def test_cache_key_follows_the_files(pngs, tmp_path):
    import shutil

    paths = [shutil.copy(p, tmp_path) for p in pngs[0][:20]]  # own copies: one is edited below
    targets = pngs[2]
    options = CacheOptions(views=1, workers=0)
    build = lambda: build_cache(LiveTeacher(tiny_teacher(), ()), LazyInputs(paths[:20], GrayDecode()),  # noqa: E731
                                targets[:20], None, 0, 1, options, tmp_path / "c", "cpu", log=logs.append)
    logs: list[str] = []
    build(), build()
    assert "reusing" in logs[1]
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(paths[3])  # a file changed: the cache is rebuilt
    build()
    assert "building" in logs[2]


def test_a_file_of_another_size_is_one_line_naming_it(pngs, tmp_path):
    paths, _, targets = pngs
    odd = tmp_path / "odd.png"
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(odd)
    stream = StreamBatches(LazyInputs([*paths[:10], str(odd)], GrayDecode()), targets[:11], 4, workers=1)
    with pytest.raises(DataError, match="odd.png: decodes to shape") as info:
        list(stream.epoch(0))
    assert "\n" not in str(info.value)


# -- whole runs from the YAML alone ---------------------------------------------------------------------
MEASURE = """
import json, sys
from distill.cli import main

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

growth = []
for config in sys.argv[1:]:  # the first run warms up (imports, allocator, a full cache-build chunk)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current resident size: a peak per run
    before = status("VmRSS")
    assert main(["run", config, "--quiet", "--out", config + ".out"]) == 0
    growth.append(status("VmHWM") - before)
print(json.dumps(growth))
"""


def noise_folder(root, n: int, size: int, seed: int):
    """``n`` grayscale noise PNGs (incompressible: the file size is the pixel count) in 4 class folders."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        (root / f"c{i % 4}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(root / f"c{i % 4}" / f"{i}.png")
    return root


def run_config(tmp_path, name: str, train, stream: bool, models=("mlp", "mlp")) -> str:
    import yaml

    images = {"train": str(train), "val": str(tmp_path / "val"), "test": str(tmp_path / "test"), "grayscale": True,
              "mean": [0.5], "std": [0.29]}
    config = {"name": name, "seed": 0, "baseline": False,
              "data": {"dataset": "image_folder", "stream": stream, "workers": 2, "images": images},
              "teacher": {"model": {"name": models[0], "hidden": [16]} if models[0] == "mlp" else models[0],
                          "train": {"epochs": 1, "batch_size": 32}},
              "student": {"model": {"name": models[1], "hidden": [8]} if models[1] == "mlp" else models[1],
                          "train": {"epochs": 2, "batch_size": 32}},
              "cache": {"views": 2},
              "evaluate": {"eval_batch_size": 32, "latency": False, "latency_repeats": 1},
              "runtime": {"threads": 1}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_a_streamed_run_stays_under_a_memory_budget_its_images_exceed(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    budget = 8 * 2**20  # peak RSS growth the streamed run may take, set here
    n, size = 1000, 96
    big = noise_folder(tmp_path / "big", n, size, 0)
    warm = noise_folder(tmp_path / "warm", 300, size, 1)  # more than a cache-build chunk (256): the same peaks
    noise_folder(tmp_path / "val", 32, size, 2)
    noise_folder(tmp_path / "test", 32, size, 3)
    on_disk = sum(p.stat().st_size for p in big.rglob("*.png"))
    decoded = n * size * size * 4  # float32: what holding the split in memory takes
    assert on_disk > budget
    configs = [run_config(tmp_path, "warm", warm, True), run_config(tmp_path, "streamed", big, True),
               run_config(tmp_path, "in-memory", big, False)]
    # glibc's adaptive mmap threshold keeps freed large blocks in the heap, which would count transient
    # batches as growth; a fixed threshold makes the peak RSS measure what is really held.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", MEASURE, *configs], env=env, capture_output=True, text=True,
                         check=True)
    _, streamed, in_memory = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"peak RSS growth: streamed {streamed / 2**20:.1f} MiB, in memory {in_memory / 2**20:.1f} MiB; "
          f"PNG on disk {on_disk / 2**20:.1f} MiB, decoded {decoded / 2**20:.1f} MiB, budget {budget / 2**20:.0f} MiB")
    assert streamed < budget, f"the streamed run grew {streamed / 2**20:.1f} MiB (budget {budget / 2**20} MiB)"
    assert in_memory > decoded, in_memory  # the measure can fail: the in-memory run of the same files holds them
    cache = Path(configs[1] + ".out") / "cache"
    assert json.loads((cache / "meta.json").read_text())["samples"] == n and (cache / "logits.npy").is_file()


def test_a_streamed_run_ends_with_the_in_memory_runs_weights(tmp_path):
    from distill.checkpoint import load_tensors
    from distill.cli import main

    train = noise_folder(tmp_path / "train", 96, 12, 0)
    noise_folder(tmp_path / "val", 16, 12, 1)
    noise_folder(tmp_path / "test", 16, 12, 2)
    weights = {}
    for stream in (True, False):
        assert main(["run", run_config(tmp_path, f"run-{stream}", train, stream, ("cnn", "cnn")), "--quiet",
                     "--out", str(tmp_path / f"out{stream}")]) == 0
        weights[stream] = load_tensors(tmp_path / f"out{stream}" / "checkpoints" / "student-last.safetensors")[0]
    assert weights[True].keys() == weights[False].keys()
    for name, value in weights[False].items():
        torch.testing.assert_close(weights[True][name], value, rtol=0, atol=0, msg=name)


def test_stream_on_a_dataset_held_in_memory_is_refused(tmp_path, capsys):
    import yaml

    from distill.cli import main

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data": {"dataset": "digits", "stream": True, "val_size": 100}}))
    assert main(["run", str(path), "--check", "--quiet", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "data.stream: true" in err and "\n" not in err


def test_streamed_image_folder_keeps_every_split_and_the_pool_on_disk(tmp_path):
    from distill.config.schema import DataConfig
    from distill.data.bundle import load_data
    from distill.data.lazy import cat

    train = noise_folder(tmp_path / "train", 40, 8, 0)
    noise_folder(tmp_path / "pool", 12, 8, 1)
    images = {"train": str(train), "grayscale": True, "val_fraction": 0.2, "test_fraction": 0.2}
    streamed = load_data(DataConfig(dataset="image_folder", stream=True, images=images, unlabeled=str(tmp_path / "pool"),
                                    labeled_subset=16))
    held = load_data(DataConfig(dataset="image_folder", images=images, unlabeled=str(tmp_path / "pool"),
                                labeled_subset=16))
    pool = streamed.meta["transfer"]
    assert all(isinstance(s.inputs, LazyInputs) for s in (streamed.train, streamed.val, streamed.test, pool))
    assert streamed.meta["images"]["mean"] == pytest.approx(held.meta["images"]["mean"])  # the one-pass stats
    for a, b in ((streamed.train, held.train), (streamed.test, held.test), (pool, held.meta["transfer"])):
        torch.testing.assert_close(a.inputs[torch.arange(len(a))], b.inputs)
        assert torch.equal(a.targets, b.targets)
    joined = cat(streamed.train.inputs, pool.inputs)  # what the distilled student trains on
    assert isinstance(joined, LazyInputs) and len(joined) == len(streamed.train) + len(pool)


def test_int8_calibration_decodes_only_the_drawn_files(pngs):
    from distill.export.quantize import calibration_batches

    paths, dense, _ = pngs
    streamed = calibration_batches(LazyInputs(paths, GrayDecode()), 2, 8, seed=4)
    held = calibration_batches(dense.numpy(), 2, 8, seed=4)
    assert len(streamed) == len(held) == 2
    for a, b in zip(streamed, held, strict=True):
        np.testing.assert_array_equal(a, b)


def test_streamed_audio_folder_gives_the_in_memory_log_mels(tmp_path, capsys):
    """audio_folder with data.stream: every split and the pool stay clip files, decoded per batch into the
    very log-mels (and per-channel standardisation) the in-memory path computes; a clip that turns
    unreadable after the start is one line naming it."""
    import soundfile

    from distill.config.schema import DataConfig
    from distill.data.bundle import load_data

    rng = np.random.default_rng(0)
    rates = {"a": 8000, "b": 8000, "c": 16000}  # one class at another rate: resampled in both paths

    def clips(root, classes, per_class):
        for name in classes:
            (root / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                n = int(rates.get(name, 8000) * rng.uniform(0.3, 0.6))  # lengths differ: cut or padded
                soundfile.write(root / name / f"{i}.wav", (rng.normal(size=n) * 0.2).astype("float32"),
                                rates.get(name, 8000), subtype="FLOAT")
        return root

    train = clips(tmp_path / "train", "abc", 6)
    pool = clips(tmp_path / "pool", ["p"], 4)
    audio = {"train": str(train), "val_fraction": 0.2, "test_fraction": 0.2, "sample_rate": 8000}
    for seconds in (None, 0.4):  # the run's length from the files' headers, or given
        options = {**audio, "seconds": seconds}
        streamed = load_data(DataConfig(dataset="audio_folder", stream=True, audio=options, unlabeled=str(pool)))
        held = load_data(DataConfig(dataset="audio_folder", audio=options, unlabeled=str(pool)))
        s, h = streamed.meta["speech"], held.meta["speech"]
        assert s["samples"] == h["samples"] and s["sample_rate"] == h["sample_rate"] == 8000
        assert s["mean"] == pytest.approx(h["mean"], abs=1e-4) and s["std"] == pytest.approx(h["std"], rel=1e-4)
        pairs = [(streamed.train, held.train), (streamed.val, held.val), (streamed.test, held.test),
                 (streamed.meta["transfer"], held.meta["transfer"])]
        for a, b in pairs:
            assert isinstance(a.inputs, LazyInputs) and a.inputs.shape == b.inputs.shape
            torch.testing.assert_close(a.inputs[torch.arange(len(a))], b.inputs, atol=1e-3, rtol=1e-4)
            assert torch.equal(a.targets, b.targets)
    broken = streamed.train.inputs.paths[1]
    with open(broken, "wb") as f:
        f.write(b"RIFF nonsense")
    with pytest.raises(DataError) as info:
        streamed.train.inputs[torch.arange(3)]
    assert broken in str(info.value) and "not a readable audio file" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_streamed_audio_folder_run_trains_from_the_yaml_alone(tmp_path):
    """A whole `distill run` over clip folders with data.stream: loader workers decode the clips (the decode
    must pickle), the teacher cache is built from disk, and the students train and are evaluated."""
    import json

    import soundfile
    import yaml

    from distill.cli import main

    rng = np.random.default_rng(1)
    t = np.arange(4000) / 8000
    for c, name in enumerate(("hum", "hiss", "chirp")):
        (tmp_path / "clips" / name).mkdir(parents=True)
        for i in range(12):
            clip = [np.sin(2 * np.pi * 440 * t), rng.normal(size=len(t)) * 0.3, np.sin(2 * np.pi * 1500 * t * t)][c]
            soundfile.write(tmp_path / "clips" / name / f"{i}.wav", (clip * 0.5).astype("float32"), 8000)
    config = {"name": "clips", "seed": 0,
              "data": {"dataset": "audio_folder", "stream": True, "workers": 2,
                       "audio": {"train": str(tmp_path / "clips"), "val_fraction": 0.2, "test_fraction": 0.2}},
              "teacher": {"model": {"name": "mlp", "hidden": [16]}, "train": {"epochs": 2, "batch_size": 8}},
              "student": {"model": {"name": "mlp", "hidden": [8]}, "train": {"epochs": 2, "batch_size": 8}},
              "cache": {"views": 2}, "evaluate": {"latency": False}, "runtime": {"threads": 1}}
    path = tmp_path / "clips.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path), "--quiet", "--out", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {"teacher", "student", "baseline"} <= set(summary["models"])
    assert json.loads((tmp_path / "out" / "cache" / "meta.json").read_text())["samples"] == 22


def test_streamed_hf_dataset_images_are_the_in_memory_ones(tmp_path, capsys):
    """hf_dataset with data.stream: rows stay in the Arrow files (named and carved splits, and a pool),
    decoded per batch into the in-memory path's pixels; the cache key follows the dataset's files; a
    text column is refused in one line."""
    import json

    import yaml

    datasets = pytest.importorskip("datasets")
    from distill.cli import main
    from distill.config.schema import DataConfig
    from distill.data.bundle import load_data
    from distill.data.lazy import cat

    rng = np.random.default_rng(0)
    image = lambda: Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8))  # noqa: E731
    features = datasets.Features({"img": datasets.Image(), "y": datasets.ClassLabel(names=["a", "b", "c"])})
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"img": [image() for _ in range(40)], "y": [i % 3 for i in range(40)]},
                                            features=features),
        "test": datasets.Dataset.from_dict({"img": [image() for _ in range(9)], "y": [i % 3 for i in range(9)]},
                                           features=features)}).save_to_disk(str(tmp_path / "hf"))
    datasets.Dataset.from_dict({"img": [image() for _ in range(7)]}, features=datasets.Features(
        {"img": datasets.Image()})).save_to_disk(str(tmp_path / "pool"))
    options = dict(dataset="hf_dataset", unlabeled=str(tmp_path / "pool"), images={"resize": [8, 8]},
                   hf={"path": str(tmp_path / "hf"), "input_column": "img", "label_column": "y", "val_fraction": 0.25})
    streamed, held = load_data(DataConfig(stream=True, **options)), load_data(DataConfig(**options))
    assert streamed.meta["images"]["mean"] == pytest.approx(held.meta["images"]["mean"])
    pool = streamed.meta["transfer"]
    for a, b in ((streamed.train, held.train), (streamed.val, held.val), (streamed.test, held.test),
                 (pool, held.meta["transfer"])):
        assert isinstance(a.inputs, LazyInputs) and a.inputs.shape == b.inputs.shape == (len(b), 3, 8, 8)
        torch.testing.assert_close(a.inputs[torch.arange(len(a))], b.inputs)
        assert torch.equal(a.targets, b.targets)
    joined = cat(streamed.train.inputs, pool.inputs)  # what the distilled student trains on
    assert isinstance(joined, LazyInputs) and len(joined) == len(streamed.train) + 7
    key = streamed.train.inputs.fingerprint()
    assert load_data(DataConfig(stream=True, **options)).train.inputs.fingerprint() == key
    datasets.load_from_disk(str(tmp_path / "hf")).save_to_disk(str(tmp_path / "hf2"))  # the same rows elsewhere
    moved = load_data(DataConfig(stream=True, **{**options, "hf": {**options["hf"], "path": str(tmp_path / "hf2")}}))
    assert moved.train.inputs.fingerprint() != key
    # rewritten in place (same path, same row addresses, other pixels): the key follows the files
    import shutil

    edited = datasets.load_from_disk(str(tmp_path / "hf2"))
    edited["train"] = edited["train"].map(lambda row: {"img": image()}, features=features)
    edited.save_to_disk(str(tmp_path / "hf3"))
    fixed = {**options, "images": {"resize": [8, 8], "mean": [0.5] * 3, "std": [0.25] * 3}}  # pixel stats out of the key
    before = load_data(DataConfig(stream=True, **fixed)).train.inputs.fingerprint()
    shutil.rmtree(tmp_path / "hf")
    (tmp_path / "hf3").rename(tmp_path / "hf")
    assert load_data(DataConfig(stream=True, **fixed)).train.inputs.fingerprint() != before
    datasets.Dataset.from_dict({"text": ["a b", "c d"] * 6, "y": [0, 1] * 6}).save_to_disk(str(tmp_path / "txt"))
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"data": {"dataset": "hf_dataset", "stream": True,
                                             "hf": {"path": str(tmp_path / "txt"), "input_column": "text",
                                                    "label_column": "y"}}}))
    capsys.readouterr()  # the datasets progress bars above
    assert main(["run", str(path), "--check", "--quiet", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds text" in err and "remove data.stream" in err and "\n" not in err
    run = {"name": "hf", "seed": 0, "data": {**options, "stream": True, "workers": 2},
           "teacher": {"model": {"name": "mlp", "hidden": [16]}, "train": {"epochs": 1, "batch_size": 8}},
           "student": {"model": {"name": "mlp", "hidden": [8]}, "train": {"epochs": 2, "batch_size": 8}},
           "cache": {"views": 2}, "evaluate": {"latency": False}, "runtime": {"threads": 1}}
    path.write_text(yaml.safe_dump(run))
    assert main(["run", str(path), "--quiet", "--out", str(tmp_path / "run")]) == 0  # workers decode the rows
    assert json.loads((tmp_path / "run" / "cache" / "meta.json").read_text())["samples"] == 30 + 7
