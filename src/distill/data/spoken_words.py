"""Spoken words: a SYNTHETIC keyword-spotting set, generated once with espeak-ng and cached.

No registry package ships recorded speech inside it (the package lists were searched), so the
clips are made by a speech synthesiser: 20 words (Speech Commands' ten commands and the digits),
spoken by espeak-ng over 8 accents x ~90 voice variants at random rate and pitch, then
resampled to 8 kHz, placed at a random offset in a 1-second window (time shift), scaled by a
random gain and mixed with coloured noise at a random signal-to-noise ratio.

The split is by speaker: a voice variant is in exactly one of train / val / test, so the test
score is on voices never heard in training. This is synthetic speech: far less varied than
people; numbers on it show that the audio path works and how methods compare, not
keyword-spotting accuracy on real recordings.

``python -m distill.data.spoken_words [DIR]`` writes ``DIR/spoken_words.npz`` (default
``$DISTILL_SPEECH_DIR`` or ``~/.cache/distill/spoken_words``); ``load_spoken_words`` reads it, and
generates it first when it is missing (the first ``distill run examples/speech.yaml``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

from distill.errors import DataError

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
         "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
           "en-029", "en-us-nyc")
SAMPLE_RATE = 8000
CLIP_SECONDS = 1.0
FILE_NAME = "spoken_words.npz"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
DEFAULT_PER_WORD = {"train": 150, "val": 40, "test": 40}  # clips of each word per split
PROGRESS_WORDS = 5  # a progress line after every this many words of a split


def default_dir() -> Path:
    return Path(os.environ.get("DISTILL_SPEECH_DIR") or Path.home() / ".cache" / "distill" / "spoken_words")


def _missing(directory: Path) -> DataError:
    return DataError(f"the spoken-word data is missing in {directory} and espeak-ng, which generates it on first "
                     f"use, is not installed: apt-get install espeak-ng (or `make setup`), or set data.root / "
                     f"$DISTILL_SPEECH_DIR to where the data is")


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)  # stderr, beside the run's own progress


def ensure_spoken_words(directory: Path, log=_progress) -> None:
    """Generate the set on first use (about a minute with espeak-ng), as a data set download would."""
    if (directory / FILE_NAME).is_file():
        return
    if shutil.which("espeak-ng") is None:
        raise _missing(directory)
    clips = sum(DEFAULT_PER_WORD.values()) * len(WORDS)
    log(f"spoken words: {directory / FILE_NAME} is not there yet; generating it once with espeak-ng "
        f"({clips} clips, about a minute)")
    generate(directory, DEFAULT_PER_WORD, log=log)


def load_spoken_words(root: str | Path | None = None, generate_missing: bool = True) -> dict[str, np.ndarray]:
    """``{split}_audio`` (N, samples) int16 and ``{split}_labels`` (N,) int64 for train/val/test, and ``words``.

    A missing set is generated first (``generate_missing``), when espeak-ng is installed.
    """
    directory = Path(root) if root else default_dir()
    path = directory / FILE_NAME
    if not path.is_file() and not generate_missing:
        raise DataError(f"the spoken-word data is missing in {directory}: generate it with "
                        f"`python -m distill.data.spoken_words {directory}`, or set data.root / $DISTILL_SPEECH_DIR "
                        f"to where it is")
    ensure_spoken_words(directory)  # a no-op when it is there
    try:
        with np.load(path, allow_pickle=False) as archive:
            data = {k: archive[k] for k in archive.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} is not a readable spoken-word archive ({exc}); delete it and generate it again "
                        f"with `python -m distill.data.spoken_words {directory}`") from None
    needed = [f"{s}_{kind}" for s in SPLITS for kind in ("audio", "labels")] + ["words", "version"]
    absent = [k for k in needed if k not in data]
    if absent:
        raise DataError(f"{path} lacks {', '.join(absent)}; delete it and generate it again "
                        f"with `python -m distill.data.spoken_words {directory}`")
    if int(data["version"]) != FORMAT_VERSION:
        raise DataError(f"{path} is format version {int(data['version'])}, this distill reads {FORMAT_VERSION}; "
                        f"generate it again with `python -m distill.data.spoken_words {directory}`")
    for split in SPLITS:
        audio, labels = data[f"{split}_audio"], data[f"{split}_labels"]
        if audio.ndim != 2 or len(audio) != len(labels) or len(audio) == 0:
            raise DataError(f"{path}: {split} holds {audio.shape} clips for {labels.shape} labels; generate it again")
        if labels.min() < 0 or labels.max() >= len(data["words"]):
            raise DataError(f"{path}: {split} labels outside 0..{len(data['words']) - 1}; generate it again")
    return data


# -- generation --------------------------------------------------------------------------------


def voice_variants() -> list[str]:
    """espeak-ng's voice variants (``+name``), from ``espeak-ng --voices=variant``."""
    listing = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True).stdout
    names = [line.split()[4].split("/")[-1] for line in listing.splitlines()[1:] if len(line.split()) >= 5]
    return sorted(set(names))


def speak(word: str, voice: str, rate: int, pitch: int) -> tuple[np.ndarray, int]:
    """One utterance as float samples in [-1, 1] and its sample rate."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout", word],
                         capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate_hz = w.getframerate()
        frames = w.readframes(w.getnframes() if w.getnframes() < 10**8 else 10**8)  # streamed wavs lie about length
    return np.frombuffer(frames, dtype=np.int16).astype(np.float32) / 32768.0, rate_hz


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    from scipy.signal import resample_poly

    g = np.gcd(rate_in, rate_out)
    return resample_poly(x, rate_out // g, rate_in // g).astype(np.float32)


def coloured_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """White noise shaped by 1/f^a with a random a in [0, 2] (white to brown), unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    spectrum /= f ** (rng.uniform(0.0, 2.0) / 2)
    noise = np.fft.irfft(spectrum, n)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def place(speech: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """Trim silence, then put the word at a random offset in a window of ``length`` samples."""
    loud = np.flatnonzero(np.abs(speech) > 0.02 * (np.abs(speech).max() + 1e-12))
    if len(loud):
        speech = speech[loud[0]: loud[-1] + 1]
    if len(speech) > length:  # a slow voice: keep the middle second
        start = (len(speech) - length) // 2
        speech = speech[start: start + length]
    out = np.zeros(length, dtype=np.float32)
    offset = int(rng.integers(0, length - len(speech) + 1))
    out[offset: offset + len(speech)] = speech
    return out


def make_clip(word: str, voice: str, rng: np.random.Generator, snr_db: tuple[float, float]) -> np.ndarray:
    raw, rate = speak(word, voice, int(rng.integers(110, 231)), int(rng.integers(15, 86)))
    speech = place(resample(raw, rate, SAMPLE_RATE), int(SAMPLE_RATE * CLIP_SECONDS), rng)
    rms = np.sqrt(np.mean(speech**2)) + 1e-12
    speech = speech / rms * 0.05 * 10 ** (rng.uniform(-12, 6) / 20)  # random gain around -26 dBFS, so peaks rarely clip
    snr = rng.uniform(*snr_db)
    noisy = speech + coloured_noise(len(speech), rng) * np.sqrt(np.mean(speech**2)) * 10 ** (-snr / 20)
    return np.clip(np.round(noisy * 32767), -32768, 32767).astype(np.int16)


def speaker_split(variants: list[str], seed: int) -> dict[str, list[str]]:
    """Each voice variant in one split: 70% train, 15% val, 15% test."""
    order = list(np.random.default_rng(seed).permutation(variants))
    n_val = n_test = max(1, round(0.15 * len(order)))
    return {"test": order[:n_test], "val": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}


def generate(directory: Path, per_word: dict[str, int], words=WORDS, seed: int = 0,
             snr_db: tuple[float, float] = (0.0, 20.0), log=print) -> Path:
    """Write ``directory/spoken_words.npz`` (atomically) with ``per_word[split]`` clips of each word per split."""
    if shutil.which("espeak-ng") is None:
        raise DataError("espeak-ng is not installed: apt-get install espeak-ng (Debian/Ubuntu), then generate again")
    rng = np.random.default_rng(seed)
    voices = speaker_split(voice_variants(), seed)
    arrays: dict[str, np.ndarray] = {}
    started = time.perf_counter()
    for split in SPLITS:
        clips, labels = [], []
        for label, word in enumerate(words):
            for _ in range(per_word[split]):
                voice = f"{ACCENTS[rng.integers(len(ACCENTS))]}+{voices[split][rng.integers(len(voices[split]))]}"
                clips.append(make_clip(word, voice, rng, snr_db))
                labels.append(label)
            if (label + 1) % PROGRESS_WORDS == 0 and label + 1 < len(words):
                log(f"spoken words: {split} {len(clips)}/{per_word[split] * len(words)} clips "
                    f"({time.perf_counter() - started:.0f}s)")
        arrays[f"{split}_audio"] = np.stack(clips)
        arrays[f"{split}_labels"] = np.asarray(labels, dtype=np.int64)
        log(f"spoken words: {split} {len(clips)} clips ({time.perf_counter() - started:.0f}s)")
    arrays["words"] = np.asarray(words)
    arrays["version"] = np.asarray(FORMAT_VERSION)
    arrays["sample_rate"] = np.asarray(SAMPLE_RATE)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{FILE_NAME}.{os.getpid()}.tmp.npz"  # two first uses at once do not share one
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, directory / FILE_NAME)
    manifest = {"synthetic": True, "generator": "espeak-ng", "words": list(words), "per_word": per_word,
                "seed": seed, "snr_db": list(snr_db), "sample_rate": SAMPLE_RATE,
                "voices": {k: sorted(v) for k, v in voices.items()}}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return directory / FILE_NAME


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the synthetic spoken-word set with espeak-ng (once).")
    parser.add_argument("directory", nargs="?", default=None, help=f"default {default_dir()}")
    parser.add_argument("--train", type=int, default=DEFAULT_PER_WORD["train"], help="clips per word in train")
    parser.add_argument("--eval", type=int, default=DEFAULT_PER_WORD["val"], help="clips per word in val and in test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="generate again even if the file exists")
    args = parser.parse_args(argv)
    directory = Path(args.directory) if args.directory else default_dir()
    if (directory / FILE_NAME).is_file() and not args.force:
        print(f"spoken words: {directory / FILE_NAME} exists (--force to generate again)")
        return 0
    try:
        path = generate(directory, {"train": args.train, "val": args.eval, "test": args.eval}, seed=args.seed)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"spoken words: wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
