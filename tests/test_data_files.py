"""Data from files, from the YAML alone: image folders, tables, HF datasets, audio folders, unlabelled pools.

Each source is generated tiny in the test; each bad input is refused by ``distill run --check``
with one line and exit code 2; the unlabelled pool reaches the distilled student and never the
baseline or the teacher (asserted on the batches the trainer is given).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from distill.cli import main
from distill.config.schema import DataConfig
from distill.data.bundle import load_data

TINY_MODELS = {
    "teacher": {"model": {"name": "mlp", "hidden": [16]}, "train": {"epochs": 1, "batch_size": 16}},
    "student": {"model": {"name": "mlp", "hidden": [8]}, "train": {"epochs": 1, "batch_size": 16}},
    "evaluate": {"latency": False}, "runtime": {"threads": 1},
}


def write_images(root: Path, classes=("cat", "dog"), per_class: int = 12, size=(10, 12), seed: int = 0) -> Path:
    """root/<class>/<i>.png of random RGB pixels; the class shifts the red channel so it can be learnt."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = (rng.random((size[0], size[1], 3)) * 120).astype("uint8")
            pixels[..., 0] += np.uint8(120 * c)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def run_check(tmp_path: Path, data: dict, capsys, extra: dict | None = None) -> tuple[int, str]:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"name": "files", "data": data, **TINY_MODELS, **(extra or {})}))
    try:
        code = main(["run", str(path), "--check", "--quiet", "--out", str(tmp_path / "out")])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    return code, lines[-1] if lines else ""


def assert_refused(tmp_path, data, capsys, *fragments, extra=None):
    code, line = run_check(tmp_path, data, capsys, extra)
    assert code == 2, line
    assert line.startswith("error:") and "Traceback" not in line, line
    for fragment in fragments:
        assert fragment in line, line
    assert not (tmp_path / "out").exists()


# -- image folders ----------------------------------------------------------------------------------
def test_image_folder_reads_classes_carves_splits_and_normalises(tmp_path):
    root = write_images(tmp_path / "imgs", classes=("b_dog", "a_cat"), per_class=15)
    data = load_data(DataConfig(dataset="image_folder", images={"train": str(root), "val_fraction": 0.2,
                                                                 "test_fraction": 0.2}))
    assert data.class_names == ["a_cat", "b_dog"]  # sorted, as torchvision's ImageFolder
    assert (len(data.train), len(data.val), len(data.test)) == (18, 6, 6)
    assert data.input_shape == (3, 10, 12)
    # normalised with the training split's own statistics: mean 0, std 1 per channel
    x = data.train.inputs
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4)
    # a pixel maps back to its file: (value * std + mean) * 255
    from PIL import Image

    files = sorted((root / "a_cat").glob("*.png")) + sorted((root / "b_dog").glob("*.png"))
    stacked = torch.stack([torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1)
                           for f in files]).double() / 255
    order = torch.randperm(30, generator=torch.Generator().manual_seed(0)).tolist()
    train_rows = sorted(order[12:])
    mean = stacked[train_rows].mean(dim=(0, 2, 3))
    std = stacked[train_rows].std(dim=(0, 2, 3))
    expected = ((stacked[train_rows] - mean[None, :, None, None]) / std[None, :, None, None]).float()
    assert torch.allclose(data.train.inputs, expected, atol=1e-5)
    assert data.train.targets.tolist() == [0 if r < 15 else 1 for r in train_rows]


def test_image_folder_options_resize_crop_grayscale_given_stats(tmp_path):
    root = write_images(tmp_path / "imgs", size=(20, 30))
    val = write_images(tmp_path / "val", per_class=3, size=(24, 24), seed=1)
    test = write_images(tmp_path / "test", per_class=2, size=(40, 40), seed=2)
    data = load_data(DataConfig(dataset="image_folder", images={
        "train": str(root), "val": str(val), "test": str(test), "resize": 16, "center_crop": 14,
        "grayscale": True, "mean": [0.5], "std": [0.25]}))
    assert data.input_shape == (1, 14, 14)
    assert (len(data.train), len(data.val), len(data.test)) == (24, 6, 4)
    from PIL import Image

    # torchvision's Resize(16) on 30x20 (w x h): the shorter side 16, the longer 24; then CenterCrop(14)
    image = Image.open(sorted((root / "cat").glob("*.png"))[0]).convert("L").resize((24, 16), Image.BILINEAR)
    crop = np.array(image.crop((5, 1, 19, 15)), dtype=np.float32) / 255
    assert torch.allclose(data.train.inputs[0, 0], (torch.from_numpy(crop) - 0.5) / 0.25, atol=1e-5)


def test_image_folder_bad_inputs_are_one_line_errors(tmp_path, capsys):
    root = write_images(tmp_path / "imgs")
    (root / "cat" / "broken.png").write_bytes(b"not an image")
    assert_refused(tmp_path, {"dataset": "image_folder", "images": {"train": str(root)}}, capsys,
                   "broken.png", "not a readable image")
    (root / "cat" / "broken.png").unlink()
    from PIL import Image

    Image.fromarray(np.zeros((5, 7, 3), dtype="uint8")).save(root / "dog" / "odd.png")
    assert_refused(tmp_path, {"dataset": "image_folder", "images": {"train": str(root)}}, capsys,
                   "odd.png", "7x5", "data.images.resize")
    (root / "dog" / "odd.png").unlink()
    (root / "empty").mkdir()
    assert_refused(tmp_path, {"dataset": "image_folder", "images": {"train": str(root)}}, capsys,
                   "empty", "no files")
    (root / "empty").rmdir()
    val = write_images(tmp_path / "val", classes=("cat", "horse"), per_class=2)
    assert_refused(tmp_path, {"dataset": "image_folder", "images": {"train": str(root), "val": str(val)}}, capsys,
                   "horse", "outside the training classes")
    assert_refused(tmp_path, {"dataset": "image_folder", "images": {"train": str(tmp_path / "nowhere")}}, capsys,
                   "nowhere", "not a folder")
    assert_refused(tmp_path, {"dataset": "image_folder"}, capsys, "data.images.train")


# -- the unlabelled pool ----------------------------------------------------------------------------
def test_labeled_subset_is_stratified_and_the_rest_becomes_the_pool(tmp_path):
    root = write_images(tmp_path / "imgs", classes=("a", "b", "c"), per_class=20)
    cfg = DataConfig(dataset="image_folder", images={"train": str(root)}, labeled_subset=12, unlabeled="rest")
    data = load_data(cfg)
    full = load_data(DataConfig(dataset="image_folder", images={"train": str(root)}))
    counts = torch.bincount(data.train.targets, minlength=3)
    full_counts = torch.bincount(full.train.targets, minlength=3)
    # largest remainders of 12 * share, independently computed here
    share = full_counts.double() * 12 / len(full.train)
    quota = share.floor().long()
    quota[torch.argsort(share - quota, descending=True)[: 12 - int(quota.sum())]] += 1
    assert counts.tolist() == quota.tolist()
    pool = data.meta["transfer"]
    assert len(pool) == len(full.train) - 12 and (pool.targets == -1).all()
    # kept and pooled rows together are the training split, each once
    together = torch.cat([data.train.inputs, pool.inputs]).flatten(1)
    assert sorted(map(tuple, together.tolist())) == sorted(map(tuple, full.train.inputs.flatten(1).tolist()))
    per_class = load_data(DataConfig(dataset="image_folder", images={"train": str(root)}, labels_per_class=2))
    assert torch.bincount(per_class.train.targets).tolist() == [2, 2, 2] and "transfer" not in per_class.meta


def test_unlabeled_folder_of_images(tmp_path, capsys):
    root = write_images(tmp_path / "imgs")
    pool = write_images(tmp_path / "pool", classes=("x",), per_class=7, seed=3)
    data = load_data(DataConfig(dataset="image_folder", images={"train": str(root)}, unlabeled=str(pool)))
    assert len(data.meta["transfer"]) == 7 and (data.meta["transfer"].targets == -1).all()
    small = write_images(tmp_path / "small", classes=("x",), per_class=2, size=(4, 4))
    assert_refused(tmp_path, {"dataset": "image_folder", "images": {"train": str(root)}, "unlabeled": str(small)},
                   capsys, "data.unlabeled", "data.images.resize")
    assert_refused(tmp_path, {"dataset": "fashion_mnist", "unlabeled": str(pool)}, capsys,
                   "data.unlabeled", "fashion_mnist")


def trainer_inputs(monkeypatch) -> dict[str, tuple[int, int]]:
    """{role: (rows, unlabelled rows)} of the batches each trainer is given."""
    from distill.train.trainer import Trainer

    seen = {}
    original = Trainer.fit

    def fit(self, batches, *args, **kwargs):
        seen[self.name] = (len(batches.targets), int((batches.targets < 0).sum()))
        return original(self, batches, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", fit)
    return seen


def test_the_pool_reaches_the_distilled_student_only(tmp_path, monkeypatch):
    import distill

    root = write_images(tmp_path / "imgs", per_class=15)
    seen = trainer_inputs(monkeypatch)
    cfg = {"name": "pool", "data": {"dataset": "image_folder", "images": {"train": str(root)},
                                    "labeled_subset": 6, "unlabeled": "rest", "augment": None},
           **TINY_MODELS}
    distill.run(cfg, out=tmp_path / "run", quiet=True)
    n_train = 30 - 3 - 3
    assert seen["teacher"] == (6, 0)
    assert seen["baseline"] == (6, 0)
    assert seen["student"] == (n_train, n_train - 6)
    # `distill evaluate` rebuilds the run's image-folder split from its config.yaml
    import json

    assert main(["evaluate", str(tmp_path / "run" / "checkpoints" / "student-best.safetensors"), "--no-latency"]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["test_samples"] == 3


# -- tables -----------------------------------------------------------------------------------------
def write_table(path: Path, rows: int = 40, seed: int = 0, label: str = "kind", regression: bool = False):
    import pandas as pd

    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=rows), rng.normal(size=rows) * 3 + 1
    frame = pd.DataFrame({"a": a, "b": b, "note": ["x"] * rows})
    frame[label] = (2 * a - b) if regression else np.where(a > 0, "big", "small")
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_table_classification_from_each_format(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    frame = write_table(path)
    cfg = DataConfig(dataset="table", table={"train": str(path), "label": "kind", "features": ["a", "b"],
                                             "val_fraction": 0.2, "test_fraction": 0.2})
    data = load_data(cfg)
    assert data.class_names == ["big", "small"] and data.input_shape == (2,)
    assert (len(data.train), len(data.val), len(data.test)) == (24, 8, 8)
    order = torch.randperm(40, generator=torch.Generator().manual_seed(0)).tolist()
    train_rows = sorted(order[16:])
    x = torch.tensor(frame[["a", "b"]].to_numpy(), dtype=torch.float64)[train_rows]
    expected = ((x - x.mean(0)) / x.std(0)).float()
    assert torch.allclose(data.train.inputs, expected, atol=1e-6)
    assert data.train.targets.tolist() == [0 if frame["kind"][r] == "big" else 1 for r in train_rows]


def test_table_regression_and_unlabeled_file(tmp_path, capsys):
    train, pool = tmp_path / "train.csv", tmp_path / "pool.jsonl"
    frame = write_table(train, regression=True, label="y")
    write_table(pool, rows=9, seed=1, label="y", regression=True)
    data = load_data(DataConfig(dataset="table", unlabeled=str(pool),
                                table={"train": str(train), "label": "y", "features": ["a", "b"],
                                       "task": "regression"}))
    assert data.train.targets.dtype == torch.float32 and data.train.targets.shape[1] == 1
    y = torch.tensor(frame["y"].to_numpy())
    order = torch.randperm(40, generator=torch.Generator().manual_seed(0)).tolist()
    train_y = y[sorted(order[8:])]
    assert data.meta["target_std"] == pytest.approx(float(train_y.std()))
    pool_split = data.meta["transfer"]
    assert len(pool_split) == 9 and torch.isnan(pool_split.targets).all()
    code, line = run_check(tmp_path, {"dataset": "table", "table": {"train": str(train), "label": "y",
                                                                    "features": ["a", "b"], "task": "regression"}},
                           capsys)
    assert code == 2 and "task: regression" in line, line


def test_table_bad_inputs_are_one_line_errors(tmp_path, capsys):
    train, val = tmp_path / "train.csv", tmp_path / "val.csv"
    write_table(train)
    assert_refused(tmp_path, {"dataset": "table", "table": {"train": str(train), "label": "class"}}, capsys,
                   "train.csv", "no label column 'class'")
    assert_refused(tmp_path, {"dataset": "table", "table": {"train": str(train), "label": "kind",
                                                            "features": ["a", "c"]}}, capsys,
                   "train.csv", "no column 'c'")
    assert_refused(tmp_path, {"dataset": "table", "table": {"train": str(train), "label": "kind"}}, capsys,
                   "'note'", "not numeric")
    frame = write_table(val, rows=5)
    frame.loc[3, "kind"] = "huge"
    frame.to_csv(val, index=False)
    assert_refused(tmp_path, {"dataset": "table", "table": {"train": str(train), "val": str(val), "label": "kind",
                                                            "features": ["a", "b"]}}, capsys,
                   "val.csv", "label 'huge'", "outside the classes")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 nonsense")
    assert_refused(tmp_path, {"dataset": "table", "table": {"train": str(tmp_path / "bad.parquet")}}, capsys,
                   "bad.parquet", "not a readable parquet table")


# -- Hugging Face datasets --------------------------------------------------------------------------
def test_hf_dataset_of_images_with_classlabel(tmp_path):
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    rng = np.random.default_rng(0)
    images = [Image.fromarray((rng.random((8, 8)) * 255).astype("uint8")) for _ in range(30)]
    features = datasets.Features({"img": datasets.Image(), "y": datasets.ClassLabel(names=["no", "yes"])})
    ds = datasets.Dataset.from_dict({"img": images, "y": [i % 2 for i in range(30)]}, features=features)
    ds.save_to_disk(str(tmp_path / "hf"))
    pool = datasets.Dataset.from_dict({"img": images[:5]}, features=datasets.Features({"img": datasets.Image()}))
    pool.save_to_disk(str(tmp_path / "pool"))
    data = load_data(DataConfig(dataset="hf_dataset", unlabeled=str(tmp_path / "pool"), images={"grayscale": True},
                                hf={"path": str(tmp_path / "hf"), "input_column": "img", "label_column": "y"}))
    assert data.class_names == ["no", "yes"] and data.input_shape == (1, 8, 8)
    assert len(data.train) + len(data.val) + len(data.test) == 30 and len(data.meta["transfer"]) == 5
    # pixels: the first training row is dataset row order[6 + 3 + ...] sorted; check against its image
    order = torch.randperm(30, generator=torch.Generator().manual_seed(0)).tolist()
    first = sorted(order[6:])[0]
    pixels = torch.from_numpy(np.array(images[first], dtype=np.float32) / 255)
    mean, std = data.meta["images"]["mean"][0], data.meta["images"]["std"][0]
    assert torch.allclose(data.train.inputs[0, 0], (pixels - mean) / std, atol=1e-5)


def test_hf_dataset_of_audio_arrays_feeds_the_log_mel_front_end(tmp_path):
    datasets = pytest.importorskip("datasets")
    from distill.data.log_mel import MelSpec, log_mel

    rng = np.random.default_rng(0)
    clips = [rng.normal(size=4000).astype("float32") * (0.1 + 0.5 * (i % 2)) for i in range(20)]
    ds = datasets.Dataset.from_dict({"audio": [{"array": c, "sampling_rate": 8000} for c in clips],
                                     "label": ["quiet", "loud"] * 10})
    datasets.DatasetDict({"train": ds, "test": ds.select(range(4))}).save_to_disk(str(tmp_path / "hf"))
    data = load_data(DataConfig(dataset="hf_dataset", speech={"spec_augment": None},
                                hf={"path": str(tmp_path / "hf"), "input_column": "audio"}))
    assert data.class_names == ["loud", "quiet"] and len(data.test) == 4
    spec = MelSpec(sample_rate=8000, n_fft=256, hop=128, n_mels=40)
    assert data.input_shape == (1, 40, 4000 // 128 + 1)
    mel = log_mel(torch.from_numpy(clips[0])[None], spec)[0]
    mean = torch.tensor(data.meta["speech"]["mean"]).reshape(1, -1, 1)
    std = torch.tensor(data.meta["speech"]["std"]).reshape(1, -1, 1)
    assert torch.allclose(data.test.inputs[0], (mel - mean) / std, atol=1e-4)


def test_hf_dataset_of_text_is_tokenised_like_the_text_sets(tmp_path):
    datasets = pytest.importorskip("datasets")
    from distill.models.hf import default_model_dir, load_tokenizer

    if not default_model_dir().exists():
        pytest.skip("the packaged MiniLM tokenizer is not installed")
    texts = [f"a {'good' if i % 2 else 'bad'} film number {i}" for i in range(20)]
    datasets.Dataset.from_dict({"text": texts, "label": [i % 2 for i in range(20)]}).save_to_disk(str(tmp_path / "t"))
    data = load_data(DataConfig(dataset="hf_dataset", text={"max_length": 16},
                                hf={"path": str(tmp_path / "t"), "input_column": "text"}))
    tokenizer = load_tokenizer(None)
    order = torch.randperm(20, generator=torch.Generator().manual_seed(0)).tolist()
    first = texts[sorted(order[4:])[0]]
    ids = tokenizer(first)["input_ids"]
    assert data.train.inputs[0, : len(ids)].tolist() == ids
    assert data.meta["model_context"]["pad_id"] == tokenizer.pad_token_id


def test_a_hf_dataset_of_text_is_known_as_text_so_export_and_evaluate_tokenise_it(tmp_path):
    """`distill export/evaluate CHECKPOINT` rebuild a text run's tokenised data; the dataset name alone
    (hf_dataset) does not say text, the input column does."""
    datasets = pytest.importorskip("datasets")
    from distill.data.run_data import is_text_config, is_text_section, text_context

    datasets.Dataset.from_dict({"text": ["a film", "a play"] * 5, "label": [0, 1] * 5}).save_to_disk(
        str(tmp_path / "t"))
    datasets.Dataset.from_dict({"pixels": [[[0, 1], [2, 3]]] * 10, "label": [0, 1] * 5}).save_to_disk(
        str(tmp_path / "i"))
    text = {"dataset": "hf_dataset", "hf": {"path": str(tmp_path / "t"), "input_column": "text"}}
    images = {"dataset": "hf_dataset", "hf": {"path": str(tmp_path / "i"), "input_column": "pixels"}}
    assert is_text_section(text) and not is_text_section(images)
    assert is_text_section({**images, "hf": {**images["hf"], "modality": "text"}})  # said, not guessed
    assert is_text_section({"dataset": "sst2"}) and not is_text_section({"dataset": "fashion_mnist"})
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"data": text, "teacher": {"model": {"path": "/models/t"}}}))
    assert is_text_config(run) and text_context(run) == {"teacher_path": "/models/t"}


def test_hf_dataset_bad_inputs(tmp_path, capsys):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"x": [[0.0] * 4] * 6, "label": [0, 1] * 3}).save_to_disk(str(tmp_path / "hf"))
    assert_refused(tmp_path, {"dataset": "hf_dataset", "hf": {"path": str(tmp_path / "hf")}}, capsys,
                   "no column 'image'", "data.hf.input_column")
    assert_refused(tmp_path, {"dataset": "hf_dataset", "hf": {"path": str(tmp_path / "nothing")}}, capsys,
                   "nothing", "does not exist")


# -- audio folders ----------------------------------------------------------------------------------
def write_clips(root: Path, classes=("hum", "hiss"), per_class: int = 6, rate: int = 8000, seed: int = 0) -> Path:
    import soundfile

    rng = np.random.default_rng(seed)
    t = np.arange(rate // 2) / rate
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            clip = np.sin(2 * np.pi * 440 * t) if c == 0 else rng.normal(size=len(t)) * 0.3
            soundfile.write(root / name / f"{i}.wav", (clip * 0.5).astype("float32"), rate, subtype="FLOAT")
    return root


def test_audio_folder_clips_become_log_mels(tmp_path, capsys):
    import soundfile

    from distill.data.log_mel import MelSpec, log_mel

    root = write_clips(tmp_path / "clips")
    pool = write_clips(tmp_path / "pool", classes=("any",), per_class=3, seed=1)
    data = load_data(DataConfig(dataset="audio_folder", audio={"train": str(root), "seconds": 0.5,
                                                               "val_fraction": 0.2, "test_fraction": 0.2},
                                unlabeled=str(pool)))
    assert data.class_names == ["hiss", "hum"] and len(data.meta["transfer"]) == 3
    spec = MelSpec(sample_rate=8000)
    files = sorted((root / "hiss").glob("*.wav")) + sorted((root / "hum").glob("*.wav"))
    order = torch.randperm(12, generator=torch.Generator().manual_seed(0)).tolist()
    row = sorted(order[6:])[0]
    wave, _ = soundfile.read(files[row], dtype="float32")
    mel = log_mel(torch.from_numpy(wave)[None], spec)[0]
    mean = torch.tensor(data.meta["speech"]["mean"]).reshape(1, -1, 1)
    std = torch.tensor(data.meta["speech"]["std"]).reshape(1, -1, 1)
    assert torch.allclose(data.train.inputs[0], (mel - mean) / std, atol=1e-4)
    (root / "hum" / "bad.wav").write_bytes(b"RIFF nonsense")
    assert_refused(tmp_path, {"dataset": "audio_folder", "audio": {"train": str(root)}}, capsys,
                   "bad.wav", "not a readable audio file")


def test_teacher_mode_then_few_labels_with_its_checkpoint(tmp_path, monkeypatch):
    """The regime of examples/fashion_mnist_few_labels.yaml: a teacher trained once on every label
    (mode teacher), then reused by a run whose student has few labels and the rest as a pool."""
    import distill

    root = write_images(tmp_path / "imgs", per_class=15)
    seen = trainer_inputs(monkeypatch)
    data = {"dataset": "image_folder", "images": {"train": str(root)}, "augment": None}
    summary = distill.run({"name": "t", "data": data, **TINY_MODELS, "distill": {"mode": "teacher"},
                           "baseline": False}, out=tmp_path / "teacher", quiet=True)
    assert set(summary["models"]) == {"teacher"} and seen == {"teacher": (24, 0)}
    checkpoint = tmp_path / "teacher" / "checkpoints" / "teacher-best.safetensors"
    seen.clear()
    few = {**data, "labeled_subset": 6, "unlabeled": "rest"}
    teacher = {**TINY_MODELS["teacher"], "checkpoint": str(checkpoint)}
    summary = distill.run({"name": "few", "data": few, **TINY_MODELS, "teacher": teacher,
                           "baseline_train": {"epochs": 3, "batch_size": 4}}, out=tmp_path / "few", quiet=True)
    assert seen == {"baseline": (6, 0), "student": (24, 18)}
    assert set(summary["models"]) == {"teacher", "baseline", "student"}
    from distill.rundir import read_records

    epochs = [r["epoch"] for r in read_records(tmp_path / "few" / "metrics.jsonl") if r.get("model") == "baseline"]
    assert epochs == [1, 2, 3]  # the baseline's own recipe (baseline_train), not the student's one epoch


def test_text_pool_from_a_file_joins_the_transfer_set(tmp_path, capsys):
    from distill.models.hf import default_model_dir

    if not default_model_dir().exists():
        pytest.skip("the packaged MiniLM tokenizer is not installed")
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"film {i} was {'good' if i % 2 else 'bad'},{i % 2}\n"
                                                                 for i in range(30)))
    (tmp_path / "pool.txt").write_text("an unlabelled sentence\n\nanother one here\n")
    cfg = DataConfig(dataset="text_files", unlabeled=str(tmp_path / "pool.txt"),
                     text={"train": str(tmp_path / "train.csv"), "max_length": 16,
                           "transfer_set": {"size_multiplier": 2}})
    data = load_data(cfg)
    pool = data.meta["transfer"]
    assert len(pool) == 2 * len(data.train) + 2 and (pool.targets == -1).all()
    assert data.meta["sentences"]["transfer"][-2:] == ["an unlabelled sentence", "another one here"]
    assert_refused(tmp_path, {"dataset": "image_folder", "images": {"train": str(tmp_path)}, "unlabeled": "rest"},
                   capsys, "labeled_subset")
