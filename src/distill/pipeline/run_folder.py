"""Naming a run folder, finding the latest one, and checking a resumed run uses the same config."""

from __future__ import annotations

import time
from pathlib import Path

from distill.config.schema import ExperimentConfig
from distill.errors import ConfigError


def new_run_dir(cfg: ExperimentConfig, root: Path = Path("runs")) -> Path:
    return root / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"


def latest_run_dir(cfg: ExperimentConfig, root: Path = Path("runs")) -> Path:
    candidates = sorted(root.glob(f"{cfg.name}-*"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise ConfigError(f"--resume: no earlier run named '{cfg.name}' under {root}/; pass --out RUN_DIR")
    return candidates[-1]


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flat(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


# How the run is spread over processes, not what it trains: the checkpoints are full either way, so a
# DDP run resumes under FSDP and back (and under any world size).
HOW_IT_RUNS = frozenset({"runtime.parallel"})


def check_same_config(run_dir: Path, cfg: ExperimentConfig) -> None:
    saved_path = run_dir / "config.yaml"
    if not saved_path.is_file():
        return
    from distill.config.load import load_config  # resolve defaults, so only real differences count

    saved = _flat(load_config(saved_path).model_dump(mode="json"))
    now = _flat(cfg.model_dump(mode="json"))
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) != now.get(key) and key not in HOW_IT_RUNS:
            raise ConfigError(
                f"--resume: '{key}' is {now.get(key)!r} but the run in {run_dir} used {saved.get(key)!r}; "
                f"resume with the same config or start a new run"
            )
