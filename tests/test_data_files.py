"""Data from files, from the YAML alone: image folders, tables, HF datasets, audio folders, unlabelled pools.

Each source is generated tiny in the test; each bad input is refused by ``distill run --check``
with one line and exit code 2; the unlabelled pool reaches the distilled student and never the
baseline or the teacher (asserted on the batches the trainer is given).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
