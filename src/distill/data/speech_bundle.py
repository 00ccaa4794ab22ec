"""The spoken-word set as a DataBundle: waveforms -> normalised log-mels, with SpecAugment masking.

Features are computed once, in torch, on the GPU when there is one (else the CPU): ``log_mel`` of
each clip, then each mel channel standardised with the training split's mean and standard
deviation. ``meta["speech"]`` records all of it, so a deployed student can apply the same
preprocessing (``distill.data.speech_bundle.features``).
"""

from __future__ import annotations

import torch

from distill.config.schema import DataConfig
from distill.data.bundle import DataBundle, Split
from distill.data.log_mel import MelSpec, frames, log_mel_chunked
from distill.data.spec_augment import SpecAugment
from distill.data.spoken_words import SPLITS, load_spoken_words


def features(audio: torch.Tensor, spec: MelSpec, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """int16 or float (N, samples) clips -> (N, 1, mels, frames) standardised log-mels (the preprocessing)."""
    wave = audio.float() / 32768.0 if not audio.is_floating_point() else audio.float()
    return (log_mel_chunked(wave, spec) - mean.to(wave.device)) / std.to(wave.device)


def load_speech_bundle(cfg: DataConfig) -> DataBundle:
    raw = load_spoken_words(cfg.root)
    s = cfg.speech
    spec = MelSpec(sample_rate=int(raw.get("sample_rate", 8000)), n_fft=s.n_fft, hop=s.hop, n_mels=s.n_mels)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    logmels = {split: log_mel_chunked(torch.from_numpy(raw[f"{split}_audio"]).to(device).float() / 32768.0, spec)
               for split in SPLITS}
    train = logmels["train"]
    mean = train.mean(dim=(0, 1, 3), keepdim=True)[0]  # per mel channel: (1, mels, 1)
    std = train.std(dim=(0, 1, 3), keepdim=True)[0].clamp_min(1e-5)
    splits = {split: Split(((x - mean) / std).cpu(), torch.from_numpy(raw[f"{split}_labels"]).long())
              for split, x in logmels.items()}
    train_split = splits["train"].head(cfg.train_subset)
    augment = None
    if s.spec_augment is not None:
        a = s.spec_augment
        augment = SpecAugment(a.time_masks, a.time_width, a.freq_masks, a.freq_width,
                              frames=frames(raw["train_audio"].shape[1], spec), mels=s.n_mels)
    words = [str(w) for w in raw["words"]]
    meta = {"speech": {"sample_rate": spec.sample_rate, "n_fft": spec.n_fft, "hop": spec.hop, "n_mels": spec.n_mels,
                       "samples": int(raw["train_audio"].shape[1]), "mean": mean.flatten().cpu().tolist(),
                       "std": std.flatten().cpu().tolist(), "synthetic": True}}
    return DataBundle("spoken_words", train_split, splits["val"], splits["test"].head(cfg.test_subset), len(words),
                      words, augment, meta=meta)


def write_preprocessing(data: DataBundle, run_dir) -> None:
    """``RUN/preprocessing.json``: what turns a clip into the exported model's input (speech runs only)."""
    if "speech" not in data.meta:
        return
    import json
    from pathlib import Path

    from distill.io import atomic_write_text

    atomic_write_text(Path(run_dir) / "preprocessing.json", json.dumps({"log_mel": data.meta["speech"]}, indent=1))


def features_from_file(audio: torch.Tensor, path) -> torch.Tensor:
    """(N, samples) int16 or float clips -> the exported student's input, with ``RUN/preprocessing.json``."""
    import json
    from pathlib import Path

    p = json.loads(Path(path).read_text())["log_mel"]
    spec = MelSpec(sample_rate=p["sample_rate"], n_fft=p["n_fft"], hop=p["hop"], n_mels=p["n_mels"])
    mean = torch.tensor(p["mean"]).reshape(1, -1, 1)
    std = torch.tensor(p["std"]).reshape(1, -1, 1)
    return features(audio, spec, mean, std)
