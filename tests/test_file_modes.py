"""Files written atomically get the usual permissions (0666 minus the umask), not mkstemp's 0600."""

import os
import stat

import pytest
import torch

from distill.train.checkpoint import atomic_write_text, save_tensors


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_respect_the_umask(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "config.yaml", "a: 1\n")
        save_tensors(tmp_path / "w.safetensors", {"w": torch.zeros(2)})
    finally:
        os.umask(previous)
    for name in ("config.yaml", "w.safetensors"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode
