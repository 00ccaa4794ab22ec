"""Speech: log-mels against a loop DFT with hand-written mel filters, SpecAugment replay through the
batches and the teacher cache, the loader's errors, a tiny generated set, and the two models."""

import math

import numpy as np
import pytest
import torch

from distill.data.batches import InMemoryBatches
from distill.data.log_mel import MelSpec, log_mel
from distill.data.spec_augment import MaskParams, SpecAugment
from distill.data.spoken_words import FILE_NAME, load_spoken_words
from distill.errors import DataError
from distill.knowledge.cache import CacheOptions, build_cache
from distill.knowledge.teacher import LiveTeacher
from distill.models import build_model


def reference_log_mel(wave: np.ndarray, sr: int, n_fft: int, hop: int, n_mels: int, f_min: float, eps: float):
    """Straightforward: reflect-pad, frame, Hann window, a DFT by its sum, triangles on the HTK mel scale."""
    pad = n_fft // 2
    x = np.concatenate([wave[1:pad + 1][::-1], wave, wave[-pad - 1:-1][::-1]])
    window = [0.5 - 0.5 * math.cos(2 * math.pi * n / n_fft) for n in range(n_fft)]
    n_frames = len(wave) // hop + 1
    mel = lambda f: 2595 * math.log10(1 + f / 700)  # noqa: E731
    hz = lambda m: 700 * (10 ** (m / 2595) - 1)  # noqa: E731
    lo, hi = mel(f_min), mel(sr / 2)
    edges = [hz(lo + (hi - lo) * i / (n_mels + 1)) for i in range(n_mels + 2)]
    out = np.zeros((n_mels, n_frames))
    for t in range(n_frames):
        frame = [x[t * hop + n] * window[n] for n in range(n_fft)]
        power = []
        for k in range(n_fft // 2 + 1):
            re = sum(frame[n] * math.cos(2 * math.pi * k * n / n_fft) for n in range(n_fft))
            im = -sum(frame[n] * math.sin(2 * math.pi * k * n / n_fft) for n in range(n_fft))
            power.append(re * re + im * im)
        for m in range(n_mels):
            left, centre, right = edges[m], edges[m + 1], edges[m + 2]
            total = 0.0
            for k, p in enumerate(power):
                f = k * sr / n_fft
                if left < f <= centre:
                    total += p * (f - left) / (centre - left)
                elif centre < f < right:
                    total += p * (right - f) / (right - centre)
            out[m, t] = math.log(total + eps)
    return out


def test_log_mel_matches_a_loop_dft_with_triangular_filters():
    g = np.random.default_rng(0)
    t = np.arange(160) / 1000
    wave = (0.5 * np.sin(2 * math.pi * 120 * t) + 0.1 * g.standard_normal(160)).astype(np.float64)
    spec = MelSpec(sample_rate=1000, n_fft=32, hop=16, n_mels=6, f_min=20.0)
    got = log_mel(torch.from_numpy(wave)[None], spec)[0, 0].numpy()
    expected = reference_log_mel(wave, 1000, 32, 16, 6, 20.0, spec.eps)
    assert got.shape == expected.shape == (6, 11)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)  # the filterbank is float32


def test_spec_augment_masks_bands_and_replays_exactly():
    aug = SpecAugment(time_masks=1, time_width=3, freq_masks=1, freq_width=2, frames=10, mels=6, fill=-1.0)
    x = torch.zeros(4, 1, 6, 10)
    params = MaskParams(time=torch.tensor([[[2, 3]]] * 4), freq=torch.tensor([[[0, 0]]] * 3 + [[[4, 2]]]))
    out = aug.apply(x, params)
    assert (out[:, :, :, 2:5] == -1).all() and (out[:3, :, :, :2] == 0).all() and (out[:3, :, :, 5:] == 0).all()
    assert (out[3, :, 4:6] == -1).all() and (out[3, :, :4, :2] == 0).all()
    drawn = aug.sample(4, torch.Generator().manual_seed(3))
    assert torch.equal(aug.apply(x, drawn), aug.apply(x, drawn.stored(torch.arange(4), 0)))
    assert (drawn.time[..., 1] <= 3).all() and (drawn.time.sum(-1) <= 10).all()


def test_stored_masked_views_are_replayed_by_batches_and_teacher_cache():
    torch.manual_seed(0)
    x, y = torch.randn(24, 1, 6, 10), torch.arange(24) % 3
    aug = SpecAugment(time_masks=2, time_width=4, freq_masks=1, freq_width=2, frames=10, mels=6)
    teacher = build_model("ds_cnn", (1, 6, 10), 3, channels=4, blocks=1, first_stride=[1, 1]).eval()
    live = LiveTeacher(teacher)
    cache = build_cache(live, x, y, aug, seed=5, epochs=2, options=CacheOptions(views=2, dtype="float32"),
                        directory=None, device=torch.device("cpu"))
    batches = InMemoryBatches(x, y, 8, augment=aug, seed=5, views=2)
    for epoch in range(2):
        for batch in batches.epoch(epoch):
            assert batch.view.id == epoch % 2
            assert torch.allclose(cache(batch).logits, live(batch).logits, atol=1e-5)  # the stored view is this one


def test_loader_names_what_is_missing_and_how_to_make_it(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="python -m distill.data.spoken_words"):
        load_spoken_words(tmp_path, generate_missing=False)
    import distill.data.spoken_words as spoken_words

    monkeypatch.setattr(spoken_words.shutil, "which", lambda name: None)  # no espeak-ng: nothing can generate it
    with pytest.raises(DataError, match="espeak-ng, which generates it on first use, is not installed: apt-get"):
        load_spoken_words(tmp_path)
    monkeypatch.undo()
    (tmp_path / FILE_NAME).write_bytes(b"not an archive")
    with pytest.raises(DataError, match="not a readable spoken-word archive"):
        load_spoken_words(tmp_path)
    np.savez(tmp_path / FILE_NAME, words=np.array(["a"]), version=np.array(1))
    with pytest.raises(DataError, match="lacks train_audio"):
        load_spoken_words(tmp_path)


@pytest.mark.skipif(__import__("shutil").which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_generated_clips_are_one_second_noisy_and_split_by_voice(tmp_path):
    from distill.data.spoken_words import generate

    generate(tmp_path, {"train": 2, "val": 1, "test": 1}, words=("yes", "no"), log=lambda _: None)
    data = load_spoken_words(tmp_path)
    assert data["train_audio"].shape == (4, 8000) and data["train_audio"].dtype == np.int16
    assert list(data["train_labels"]) == [0, 0, 1, 1] and list(data["words"]) == ["yes", "no"]
    import json

    voices = json.loads((tmp_path / "manifest.json").read_text())["voices"]
    assert not set(voices["train"]) & set(voices["test"]) and json.loads(
        (tmp_path / "manifest.json").read_text())["synthetic"]


@pytest.mark.parametrize("name,options", [("speech_cnn", {"channels": [8, 16]}), ("ds_cnn", {"channels": 8})])
def test_keyword_models_take_log_mels(name, options):
    model = build_model(name, (1, 40, 63), 20, **options)
    assert model(torch.randn(3, 1, 40, 63)).shape == (3, 20)


def write_tone_archive(directory, per_class=16):
    """A stand-in archive in the generator's format: class k is a tone at 300 + 400 k Hz in noise."""
    g = np.random.default_rng(0)
    t = np.arange(8000) / 8000
    arrays = {}
    for split, n in (("train", per_class), ("val", 4), ("test", 4)):
        clips, labels = [], []
        for k in range(3):
            for _ in range(n):
                wave = 0.3 * np.sin(2 * np.pi * (300 + 400 * k) * t + g.uniform(0, 6)) + 0.05 * g.standard_normal(8000)
                clips.append((wave * 32767).astype(np.int16))
                labels.append(k)
        arrays[f"{split}_audio"], arrays[f"{split}_labels"] = np.stack(clips), np.array(labels)
    np.savez(directory / FILE_NAME, words=np.array(["low", "mid", "high"]), version=np.array(1),
             sample_rate=np.array(8000), **arrays)


def test_speech_runs_end_to_end_with_masked_views_cached_and_exported(tmp_path):
    pytest.importorskip("onnxruntime")
    from .test_modes import run

    write_tone_archive(tmp_path)
    summary, ckpt = run(tmp_path, {"method": "kd"}, data={"dataset": "spoken_words", "root": str(tmp_path),
                                                         "speech": {"n_mels": 16}},
                        teacher={"model": {"name": "speech_cnn", "channels": [4, 8]},
                                 "train": {"epochs": 2, "batch_size": 16, "optimizer": "adamw", "lr": 0.01}},
                        student={"model": {"name": "ds_cnn", "channels": 4, "blocks": 1},
                                 "train": {"epochs": 2, "batch_size": 16, "optimizer": "adamw", "lr": 0.01}},
                        cache={"views": 2}, export={"enabled": True, "quantize": None, "latency_repeats": 2})
    assert summary["dataset"] == "spoken_words" and summary["class_names"] == ["low", "mid", "high"]
    assert (ckpt.parent / "cache").is_dir() and (ckpt.parent / "student.onnx").is_file()
    # the deployed preprocessing reproduces the inputs the student was evaluated on
    from distill.config.schema import DataConfig
    from distill.data.bundle import load_data
    from distill.data.speech_bundle import features_from_file

    bundle = load_data(DataConfig(dataset="spoken_words", root=str(tmp_path), speech={"n_mels": 16}))
    clips = torch.from_numpy(load_spoken_words(tmp_path)["test_audio"])
    assert torch.allclose(features_from_file(clips, ckpt.parent / "preprocessing.json"), bundle.test.inputs, atol=1e-4)
