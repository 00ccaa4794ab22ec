"""Collect module outputs by dotted path with forward hooks, so stock models need no changes."""

from __future__ import annotations

from torch import Tensor, nn

from distill.errors import CompatibilityError
from distill.registry import nearest


def find_module(model: nn.Module, path: str, role: str = "model") -> nn.Module:
    modules = dict(model.named_modules())
    if path not in modules:
        names = [n for n in modules if n]
        raise CompatibilityError(
            f"{role} has no module '{path}'{nearest(path, names)}; "
            f"top-level modules: {', '.join(n for n in names if '.' not in n)}"
        )
    return modules[path]


class Taps:
    """Context manager: while open, ``self.outputs[path]`` holds each hooked module's latest output."""

    def __init__(self, model: nn.Module, paths: tuple[str, ...] | list[str], role: str = "model"):
        self.outputs: dict[str, Tensor] = {}
        self._handles = []
        for path in paths:
            module = find_module(model, path, role)
            self._handles.append(module.register_forward_hook(self._hook(path)))

    def _hook(self, path: str):
        def hook(module: nn.Module, args, output):
            self.outputs[path] = output[0] if isinstance(output, tuple) else output

        return hook

    def pop(self) -> dict[str, Tensor]:
        out, self.outputs = self.outputs, {}
        return out

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def __enter__(self) -> Taps:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
