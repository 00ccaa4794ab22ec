"""Training modes: each is one small file here, a short sequence of the stages in ``pipeline/stages.py``.

A mode is a function ``run(exp, teacher, student, method) -> {role: Stage}`` registered with
``@register_mode("name")``; ``distill.mode: name`` in a config runs it. Every module in this
folder is imported when the modes are first needed, so adding a mode means adding one file
(see docs/architecture.md, "Adding a mode").

- offline (default): a frozen trained teacher teaches the student
- online: deep mutual learning, a teacher-sized model and the student trained together
- born_again: generation k teaches generation k+1 of the same architecture
- takd: teacher -> assistant -> student
- reverse: a small trained model teaches a larger one
- two_way: a pretrained teacher keeps learning while it teaches (reverse KD from the student)
- sequence_kd (causal_lm): the student learns the teacher's own generated responses
- on_policy (causal_lm): GKD, the student's own samples scored by the teacher with probability lmbda
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import TYPE_CHECKING

from distill.registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from distill.methods.base import Method
    from distill.pipeline.experiment import Experiment
    from distill.pipeline.stages import Stage

ModeFn = Callable[["Experiment", "nn.Module", "nn.Module", "Method"], "dict[str, Stage]"]
MODES: Registry[ModeFn] = Registry("mode")


def register_mode(name: str, summary: str = "", paper: str = "",
                  reads: dict[str, str] | None = None) -> Callable[[ModeFn], ModeFn]:
    """Function decorator: ``@register_mode("my_mode")`` makes ``distill.mode: my_mode`` usable in configs.

    ``summary`` (one line), ``paper`` and ``reads`` (config key -> what this mode does with it) are
    what ``distill modes`` lists; they are kept on the function.
    """
    def decorator(fn: ModeFn) -> ModeFn:
        fn.mode_summary, fn.mode_paper, fn.mode_reads = summary, paper, dict(reads or {})
        return MODES.register(name)(fn)

    return decorator


def describe_mode(fn: ModeFn) -> dict:
    """What ``distill modes`` shows of one mode: summary, paper, the module's docstring, the keys it reads."""
    import inspect
    import sys

    doc = sys.modules[fn.__module__].__doc__ if fn.__module__ in sys.modules else None
    return {"summary": getattr(fn, "mode_summary", ""), "paper": getattr(fn, "mode_paper", ""),
            "doc": inspect.cleandoc(doc) if doc else "", "reads": dict(getattr(fn, "mode_reads", {}))}


def load_modes() -> Registry[ModeFn]:
    """The mode registry with every built-in mode (each module of this package) imported."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return MODES


def run_mode(mode: str, experiment: Experiment, teacher: nn.Module, student: nn.Module, method: Method) -> dict:
    """The stages (role -> Stage) of one mode's run, ready for ``Experiment.finish``."""
    return load_modes().get(mode)(experiment, teacher, student, method)
