"""Training modes other than offline distillation, each a small function over the one Trainer.

offline (the default) lives in ``distill.experiment``; the others:

- online: deep mutual learning, a teacher-sized model and the student trained together
- born_again: generation k teaches generation k+1 of the same architecture
- takd: teacher -> assistant -> student
- reverse: a small trained model teaches a larger one
- two_way: a pretrained teacher keeps learning while it teaches (reverse KD from the student)
"""

from __future__ import annotations

from distill.recipes import born_again, online, reverse, takd, two_way

MODES = {"online": online.run, "born_again": born_again.run, "takd": takd.run, "reverse": reverse.run,
         "two_way": two_way.run}


def run_mode(mode: str, experiment, teacher, student, method) -> dict:
    """The stages (role -> Stage) of one mode's run, ready for ``Experiment.finish``."""
    return MODES[mode](experiment, teacher, student, method)
