"""The teacher's own responses for sequence-level KD (mode sequence_kd), generated once and kept.

Kim & Rush 2016: the student learns from the sequences the teacher generates instead of the
references. Generating is the expensive part (the teacher decodes token by token), so the
responses are stored in ``<cache>/sequences.safetensors`` (flat tokens + per-prompt offsets),
keyed by the teacher's weights, the prompts and the generation settings; a run with the same key
reads them back instead of generating again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from distill.checkpoint import load_tensors, save_tensors
from distill.knowledge.cache import hash_tensor, hash_weights

FILE = "sequences.safetensors"


def sequences_key(teacher: nn.Module, prompts: list[Tensor], settings: dict) -> str:
    h = hashlib.blake2b(digest_size=20)
    hash_weights(h, teacher)
    for p in prompts:
        hash_tensor(h, p)
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()


def teacher_sequences(teacher: nn.Module, prompts: list[Tensor], settings: dict, directory: Path | None,
                      generate: Callable[[list[Tensor]], list[Tensor]],
                      log: Callable[[str], None] = print) -> tuple[list[Tensor], dict]:
    """(one response per prompt, info): read from ``directory`` when its key matches, else generated and stored."""
    key = sequences_key(teacher, prompts, settings)
    path = directory / FILE if directory is not None else None
    if path is not None and path.is_file():
        tensors, meta = load_tensors(path)
        if meta.get("key") == key:
            offsets = tensors["offsets"].tolist()
            responses = [tensors["tokens"][a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
            log(f"teacher sequences: reusing {path} ({len(responses)} responses)")
            return responses, {"reused": True, "seconds": 0.0, **meta.get("info", {})}
    log(f"teacher sequences: generating {len(prompts)} responses ({settings})")
    started = time.perf_counter()
    responses = generate(prompts)
    seconds = time.perf_counter() - started
    tokens = sum(len(r) for r in responses)
    info = {"responses": len(responses), "tokens": tokens, "generation_seconds": seconds,
            "tokens_per_s": tokens / seconds if seconds else None, **settings}
    if path is not None:
        directory.mkdir(parents=True, exist_ok=True)
        lengths = torch.tensor([0, *[len(r) for r in responses]])
        save_tensors(path, {"tokens": torch.cat(responses) if responses else torch.zeros(0, dtype=torch.long),
                            "offsets": torch.cumsum(lengths, 0)}, {"key": key, "info": info})
    return responses, {"reused": False, "seconds": seconds, **info}
