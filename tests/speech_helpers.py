"""A tiny spoken-word set made by the real generator: one clip of each word per split (seconds, not a minute)."""

from __future__ import annotations

import shutil

import numpy as np

import distill.data.spoken_words as spoken_words

TINY_PER_WORD = {"train": 1, "val": 1, "test": 1}


def fake_synthesis(monkeypatch) -> None:
    """Without espeak-ng only the slow synthesis is replaced: a tone per word, the rest of generate() runs."""
    monkeypatch.setattr(spoken_words.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(spoken_words, "voice_variants", lambda: [f"v{i}" for i in range(8)])

    def speak(word, voice, rate, pitch):
        t = np.arange(4000) / 16000
        return (0.5 * np.sin(2 * np.pi * (200 + 40 * len(word) + pitch) * t)).astype(np.float32), 16000

    monkeypatch.setattr(spoken_words, "speak", speak)


def tiny_first_use(monkeypatch) -> None:
    """The first use generates :data:`TINY_PER_WORD` clips instead of the default minute's worth."""
    if shutil.which("espeak-ng") is None:
        fake_synthesis(monkeypatch)
    monkeypatch.setattr(spoken_words, "DEFAULT_PER_WORD", TINY_PER_WORD)
