"""Log-mel spectrograms in plain torch (torchaudio does not install beside the CPU torch used here).

``log_mel`` runs on whatever device the waveforms are on: a Hann-windowed ``torch.stft``, the
power spectrum, a triangular mel filterbank (HTK mel scale, ``mel = 2595 log10(1 + f / 700)``)
and ``log(x + eps)``. The same function is the preprocessing step of an exported speech student.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class MelSpec:
    sample_rate: int = 8000
    n_fft: int = 256  # 32 ms at 8 kHz
    hop: int = 128  # 16 ms
    n_mels: int = 40
    f_min: float = 20.0
    f_max: float | None = None  # None = Nyquist
    eps: float = 1e-6


def hz_to_mel(f: Tensor) -> Tensor:
    return 2595.0 * torch.log10(1.0 + f / 700.0)


def mel_to_hz(m: Tensor) -> Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(spec: MelSpec) -> Tensor:
    """(n_mels, n_fft // 2 + 1) triangular filters, equally spaced on the mel scale, peak 1."""
    f_max = spec.f_max or spec.sample_rate / 2
    edges = mel_to_hz(torch.linspace(hz_to_mel(torch.tensor(spec.f_min)).item(),
                                     hz_to_mel(torch.tensor(f_max)).item(), spec.n_mels + 2, dtype=torch.float64))
    bins = torch.arange(spec.n_fft // 2 + 1, dtype=torch.float64) * spec.sample_rate / spec.n_fft
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


def frames(samples: int, spec: MelSpec) -> int:
    return samples // spec.hop + 1  # torch.stft with center=True


def log_mel(waveforms: Tensor, spec: MelSpec = MelSpec(), filters: Tensor | None = None) -> Tensor:
    """(N, samples) float waveforms -> (N, 1, n_mels, frames) log-mel power spectrograms."""
    if waveforms.dim() != 2:
        raise ValueError(f"log_mel takes (N, samples) waveforms, got shape {tuple(waveforms.shape)}")
    window = torch.hann_window(spec.n_fft, periodic=True, device=waveforms.device, dtype=waveforms.dtype)
    stft = torch.stft(waveforms, spec.n_fft, hop_length=spec.hop, window=window, center=True,
                      pad_mode="reflect", return_complex=True)
    power = stft.real**2 + stft.imag**2  # (N, n_fft // 2 + 1, frames)
    if filters is None:
        filters = mel_filterbank(spec)
    mel = torch.matmul(filters.to(power), power)
    return torch.log(mel + spec.eps).unsqueeze(1)


def log_mel_chunked(waveforms: Tensor, spec: MelSpec = MelSpec(), chunk: int = 512) -> Tensor:
    """``log_mel`` over a large set, ``chunk`` clips at a time (bounds the complex STFT's memory)."""
    filters = mel_filterbank(spec).to(waveforms.device)
    parts = [log_mel(waveforms[i: i + chunk], spec, filters) for i in range(0, len(waveforms), chunk)]
    return torch.cat(parts) if parts else waveforms.new_zeros(0, 1, spec.n_mels, frames(waveforms.shape[-1], spec))


def seconds_to_frames(seconds: float, spec: MelSpec) -> int:
    return max(1, math.ceil(seconds * spec.sample_rate / spec.hop))
