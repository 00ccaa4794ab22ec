"""Audio from files: data.dataset: audio_folder (root/<class>/<clip>.wav), and the waveforms of hf_dataset.

Clips are read with soundfile (WAV, FLAC, OGG; several channels are averaged), resampled to one
rate (``data.audio.sample_rate``, default the first training clip's), cut or padded with silence
to one length (``data.audio.seconds``, default the longest training clip) and turned into the
same standardised log-mels as the spoken-word set (``data/log_mel.py``, options in
``data.speech``), with its SpecAugment. ``meta["speech"]`` records the preprocessing, so
``RUN/preprocessing.json`` describes an exported student's input as for spoken_words.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from distill.config.schema import DataConfig
from distill.data.bundle import DataBundle, Split
from distill.data.file_splits import labelled_file_splits
from distill.data.image_files import class_folders
from distill.data.log_mel import MelSpec, frames, log_mel_chunked
from distill.data.spec_augment import SpecAugment
from distill.data.unlabeled import REST, add_unlabeled
from distill.errors import DataError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")


def read_clip(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """(float32 mono samples, sample rate) of one file; an unreadable file is a DataError naming it."""
    import soundfile

    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError) as exc:  # soundfile.LibsndfileError is a RuntimeError
        raise DataError(f"{path}: not a readable audio file ({type(exc).__name__}: {exc}); remove or replace "
                        f"it") from None
    if len(samples) == 0:
        raise DataError(f"{path}: the clip has no samples; remove it")
    return samples.mean(axis=1), int(rate)


def to_rate(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    if rate == target:
        return samples
    from distill.data.spoken_words import resample

    return resample(samples, rate, target)


def fixed_length(clips: list[np.ndarray], length: int) -> torch.Tensor:
    """(N, length) float32: each clip cut to ``length`` samples or padded with silence at its end."""
    out = torch.zeros(len(clips), length)
    for i, clip in enumerate(clips):
        n = min(len(clip), length)
        out[i, :n] = torch.from_numpy(np.ascontiguousarray(clip[:n]))
    return out


def mel_spec(cfg: DataConfig, rate: int, length: int, name: str) -> MelSpec:
    """The log-mel front end of data.speech at ``rate``; clips of ``length`` samples must fill one FFT."""
    s = cfg.speech
    if length < s.n_fft // 2 + 1:
        raise DataError(f"{name}: clips of {length} samples are too short for data.speech.n_fft={s.n_fft}; "
                        f"set data.audio.seconds or a smaller n_fft")
    return MelSpec(sample_rate=rate, n_fft=s.n_fft, hop=s.hop, n_mels=s.n_mels)


def speech_bundle(name: str, splits: dict[str, Split], class_names: list[str], cfg: DataConfig, spec: MelSpec,
                  length: int, mean: torch.Tensor, std: torch.Tensor) -> DataBundle:
    """The bundle of standardised log-mel splits (in memory or on disk): SpecAugment and ``meta["speech"]``."""
    s = cfg.speech
    augment = None
    if s.spec_augment is not None:
        a = s.spec_augment
        augment = SpecAugment(a.time_masks, a.time_width, a.freq_masks, a.freq_width, frames=frames(length, spec),
                              mels=s.n_mels)
    meta = {"speech": {"sample_rate": spec.sample_rate, "n_fft": spec.n_fft, "hop": spec.hop, "n_mels": spec.n_mels,
                       "samples": length, "mean": mean.flatten().tolist(), "std": std.flatten().tolist(),
                       "synthetic": False}}
    return DataBundle(name, splits["train"].head(cfg.train_subset), splits["val"],
                      splits["test"].head(cfg.test_subset), len(class_names), class_names, augment, meta=meta)


def waveform_bundle(name: str, clips: dict[str, list[np.ndarray]], labels: dict[str, list[int]],
                    class_names: list[str], rate: int, cfg: DataConfig,
                    pool: list[np.ndarray] | None = None) -> DataBundle:
    """Clips at one rate per split -> standardised log-mels, SpecAugment and the bundle (plus a pool)."""
    seconds = cfg.audio.seconds
    length = round(seconds * rate) if seconds else max(len(c) for c in clips["train"])
    spec = mel_spec(cfg, rate, length, name)
    mels = {split: log_mel_chunked(fixed_length(c, length), spec) for split, c in clips.items()}
    mean = mels["train"].mean(dim=(0, 1, 3), keepdim=True)[0]  # per mel channel: (1, mels, 1)
    std = mels["train"].std(dim=(0, 1, 3), keepdim=True)[0].clamp_min(1e-5)
    splits = {split: Split((x - mean) / std, torch.tensor(labels[split], dtype=torch.long))
              for split, x in mels.items()}
    bundle = speech_bundle(name, splits, class_names, cfg, spec, length, mean, std)
    if pool:
        add_unlabeled(bundle, (log_mel_chunked(fixed_length(pool, length), spec) - mean) / std)
    return bundle


def read_clips(files: list[Path], rate: int | None) -> tuple[list[np.ndarray], int | None]:
    clips = []
    for path in files:
        samples, file_rate = read_clip(path)
        rate = rate or file_rate
        clips.append(to_rate(samples, file_rate, rate))
    return clips, rate


def unlabeled_clips(source: str) -> list[Path]:
    """The audio files of ``data.unlabeled`` (one file, or every clip under a folder)."""
    folder = Path(source)
    files = [folder] if folder.is_file() else sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS) if folder.is_dir() else []
    if not files:
        raise DataError(f"data.unlabeled: {folder} holds no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    return files


def load_audio_folder(cfg: DataConfig, teacher_path: str | None = None) -> DataBundle:
    """Your folders of clips, root/<class>/<clip>.wav, as log-mels (data.audio, data.speech; docs/data.md)."""
    o = cfg.audio
    if not o.train:
        raise DataError("data.dataset audio_folder needs data.audio.train: a folder root/<class>/<clip>.wav")
    list_fn = lambda root, split: class_folders(root, f"data.audio.{split}", AUDIO_EXTENSIONS)  # noqa: E731
    parts, classes = labelled_file_splits(o, list_fn, cfg.split_seed, "clips")
    pool_files = unlabeled_clips(cfg.unlabeled) if cfg.unlabeled not in (None, REST) else None
    if cfg.stream:  # data bigger than memory: clips read and turned into log-mels per batch (data/audio_stream.py)
        from distill.data.audio_stream import streamed_audio_bundle

        return streamed_audio_bundle(cfg, parts, classes, pool_files)
    rate = o.sample_rate
    clips = {}
    for split in ("train", "val", "test"):
        clips[split], rate = read_clips(parts[split][0], rate)
    pool = read_clips(pool_files, rate)[0] if pool_files else None
    return waveform_bundle("audio_folder", clips, {s: parts[s][1] for s in clips}, classes, rate, cfg, pool)
