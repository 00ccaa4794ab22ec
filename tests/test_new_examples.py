"""The speech, tree and two-way examples load; the quick ones run end to end (shortened)."""

from pathlib import Path

import pytest

from distill.config import load_config
from distill.pipeline.experiment import run_experiment

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("name", ["speech", "soft_tree_digits", "gbdt_breast_cancer", "gbdt_diabetes", "two_way"])
def test_example_loads(name):
    cfg = load_config(EXAMPLES / f"{name}.yaml")
    assert cfg.name == name


BENCHMARK_CONFIGS = EXAMPLES.parent / "benchmarks" / "configs"


@pytest.mark.parametrize("path", sorted([*EXAMPLES.glob("*.yaml"), *BENCHMARK_CONFIGS.glob("*.yaml")]),
                         ids=lambda p: p.stem)
def test_every_example_validates(path):
    """Every shipped YAML (search blocks and the benchmarks' configs included) passes the config schema
    and option checks."""
    cfg = load_config(path)
    assert cfg.name


@pytest.mark.parametrize("name,extra", [
    ("gbdt_breast_cancer", ["teacher.train.epochs=3", "student.model.max_iter=10"]),
    ("soft_tree_digits", ["teacher.train.epochs=1", "student.train.epochs=1", "data.train_subset=200",
                          "student.model.depth=3"]),
])
def test_tree_examples_run(tmp_path, name, extra):
    pytest.importorskip("sklearn")
    cfg = load_config(EXAMPLES / f"{name}.yaml", [*extra, "evaluate.latency=false"])
    summary = run_experiment(cfg, tmp_path / "run", quiet=True)
    assert {"teacher", "baseline", "student"} <= set(summary["models"])
    if name == "soft_tree_digits":
        report = (tmp_path / "run" / "report.html").read_text()
        assert 'id="tree-student"' in report and "Greedy paths" in report
