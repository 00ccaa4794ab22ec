"""Born-again networks (Furlanello et al. 2018, "Born Again Neural Networks", ICML).

Generation 0 is the student architecture trained on labels (so it is also the baseline);
generation k+1, the same architecture from a fresh initialisation, learns from frozen generation
k with the configured method. ``distill.generations`` distilled generations follow generation 0.
The ``teacher:`` section is not used.
"""

from __future__ import annotations

from distill.pipeline.building import build_from_spec, model_meta
from distill.pipeline.modes import register_mode
from distill.pipeline.stages import check_pair, distil, train_on_labels


@register_mode(
    "born_again", summary="generation k teaches generation k+1 of the same architecture (the teacher: section is unused)",
    paper="Furlanello, Lipton, Tschannen, Itti, Anandkumar 2018, Born Again Neural Networks, ICML, arXiv:1805.04770",
    reads={"student.model": "every generation's architecture", "student.train": "every generation's recipe",
           "distill.generations": "distilled generations after generation 0 (default 2)",
           "distill.method / options": "the loss of each generation", "cache": "each generation's teacher outputs"})
def run(exp, teacher, student, method) -> dict:
    cfg, data = exp.cfg, exp.data
    meta = model_meta(cfg.student.model, data)
    check_pair(exp, student, student, method)
    stages = {"gen0": train_on_labels(exp, "gen0", student, cfg.student.train, meta)}
    for k in range(1, cfg.distill.generations + 1):
        # A new initialisation per generation, as in the paper; seeded so runs repeat.
        model = build_from_spec(cfg.student.model, data, cfg.seed + k)
        stages[f"gen{k}"] = distil(exp, f"gen{k}", model, cfg.student.train, stages[f"gen{k - 1}"].model, meta,
                                   method if k == 1 else None)
    return stages
