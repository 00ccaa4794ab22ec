"""audio_folder with ``data.stream: true``: the clips stay files, turned into log-mels per batch by loader workers.

Each split is a :class:`LazyInputs` over its clips whose decode is the in-memory path's own steps
for one clip (``read_clip``, resample, cut or pad to the run's length, ``log_mel``) and whose
finish standardises each mel channel, so a streamed sample is the in-memory one. The run's
length (the longest training clip when ``data.audio.seconds`` is not given) is read from the
files' headers; the per-channel mean and standard deviation come from one pass over the training
clips, one clip in memory at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import Tensor

from distill.config.schema import DataConfig
from distill.data.audio_files import fixed_length, mel_spec, read_clip, speech_bundle, to_rate
from distill.data.bundle import DataBundle, Split
from distill.data.lazy import LazyInputs, running_channel_stats
from distill.data.log_mel import MelSpec, log_mel
from distill.data.unlabeled import add_unlabeled
from distill.errors import DataError


@dataclass(frozen=True)
class ClipLogMel:
    """One clip file -> its (1, mels, frames) log-mel at the run's rate and length (picklable for workers)."""

    rate: int
    length: int
    spec: MelSpec

    def __call__(self, path: str) -> Tensor:
        samples, rate = read_clip(path)
        return log_mel(fixed_length([to_rate(samples, rate, self.rate)], self.length), self.spec)[0]


def standardise(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    return (x - mean) / std


def header(path: Path) -> tuple[int, int]:
    """(frames, sample rate) from the file's header, without reading its samples."""
    import soundfile

    try:
        info = soundfile.info(str(path))
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: not a readable audio file ({type(exc).__name__}: {exc}); remove or replace "
                        f"it") from None
    return int(info.frames), int(info.samplerate)


def run_rate_and_length(files: list[Path], cfg: DataConfig) -> tuple[int, int]:
    """The run's sample rate (data.audio.sample_rate, else the first training clip's) and clip length."""
    rate = cfg.audio.sample_rate or header(files[0])[1]
    if cfg.audio.seconds:
        return rate, round(cfg.audio.seconds * rate)
    longest = 0
    for path in files:
        n, file_rate = header(path)
        if file_rate != rate:  # the resampled length, exactly as the in-memory path computes it
            samples, file_rate = read_clip(path)
            n = len(to_rate(samples, file_rate, rate))
        longest = max(longest, n)
    return rate, longest


def channel_stats(files: list[Path], decode: ClipLogMel) -> tuple[Tensor, Tensor]:
    """Per mel channel mean and (unbiased) standard deviation over the clips' frames, as (1, mels, 1)."""
    mean, std = running_channel_stats(decode(str(path))[0] for path in files)  # each (mels, frames)
    return mean.float().reshape(1, -1, 1), std.float().clamp_min(1e-5).reshape(1, -1, 1)


def streamed_audio_bundle(cfg: DataConfig, parts: dict[str, tuple[list, list[int]]], classes: list[str],
                          pool_files: list[Path] | None) -> DataBundle:
    """The audio_folder bundle with every split (and the pool) left on disk."""
    rate, length = run_rate_and_length(parts["train"][0], cfg)
    spec = mel_spec(cfg, rate, length, "audio_folder")
    decode = ClipLogMel(rate, length, spec)
    mean, std = channel_stats(parts["train"][0], decode)
    describe = f"audio_folder rate {rate} samples {length} {spec} mean {mean.flatten().tolist()} " \
               f"std {std.flatten().tolist()}"

    def lazy(files) -> LazyInputs:
        return LazyInputs([str(f) for f in files], decode, describe=describe,
                          finish=partial(standardise, mean=mean, std=std))

    splits = {name: Split(lazy(files), torch.tensor(labels, dtype=torch.long)) for name, (files, labels) in parts.items()}
    bundle = speech_bundle("audio_folder", splits, classes, cfg, spec, length, mean, std)
    if pool_files:
        add_unlabeled(bundle, lazy(pool_files))
    return bundle
