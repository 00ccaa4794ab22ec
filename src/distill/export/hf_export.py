"""task causal_lm: the student as a Hugging Face directory (safetensors, config, tokenizer) that transformers loads.

``save_pretrained`` writes the model without the GGUF quantization note of its teacher (the
student's config is a plain one, models/causal_lm.py), and the tokenizer of the run's data goes
beside it. The directory is then loaded back with ``AutoModelForCausalLM.from_pretrained`` and
checked: the same logits as the trained student on a probe, and a few greedy tokens generated.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from distill.errors import ConfigError
from distill.io import atomic_write_text

HF_DIR = "student-hf"


def export_hf(model: nn.Module, tokenizer, out: str | Path, probe: torch.Tensor | None = None) -> dict:
    """Write ``out`` (a directory) and check that transformers loads it and generates; returns the report."""
    from transformers import AutoModelForCausalLM

    lm = getattr(model, "lm", None)
    if lm is None or not hasattr(lm, "save_pretrained"):
        raise ConfigError("only a causal_lm student (a Hugging Face model) exports as a Hugging Face directory")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lm = lm.to("cpu").eval()
    lm.config.use_cache = True  # what generation wants by default; training had it off
    lm.save_pretrained(out)
    tokenizer.save_pretrained(out)
    loaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    probe = probe if probe is not None else torch.tensor([[tokenizer.eos_token_id or 0] * 4])
    probe = probe.to("cpu")
    with torch.inference_mode():
        diff = float((loaded(input_ids=probe).logits - lm(input_ids=probe).logits).abs().max())
        generated = loaded.generate(probe[:1], max_new_tokens=4, do_sample=False,
                                    pad_token_id=tokenizer.pad_token_id)
    report = {"format": "huggingface", "dir": str(out), "files": sorted(p.name for p in out.iterdir()),
              "params": sum(p.numel() for p in loaded.parameters()),
              "size_bytes": sum(p.stat().st_size for p in out.glob("*.safetensors")),
              "max_abs_diff": diff, "generated_tokens": int(generated.shape[1] - probe.shape[1])}
    atomic_write_text(out.parent / "export.json", json.dumps(report, indent=2))
    return report
