"""Fuzz the CLI: bad configs generated from the schema and every registered option, bad files, bad arguments.

Each case runs through ``distill.cli.main`` in-process. It fails on a traceback, an exit code other
than the documented one (2 for bad input; 0 only for the good inputs listed), an error longer than
one line, or a file written by a refused run. The default run takes every fifth config case and all
file and argument cases (a few seconds); ``pytest -m fuzz`` runs all of them.
"""

from __future__ import annotations

import json
import os
import random

import pytest
import torch
import yaml

from distill.cli import main
from distill.models import build_model
from distill.train.checkpoint import save_tensors
from tests.fuzz_cases import BASE, Case, config_cases, flow

ALL_CASES = config_cases()


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def check_outcome(label: str, code: int, out: str, err: str, allowed: tuple[int, ...]) -> None:
    assert "Traceback" not in out + err, f"{label}: traceback\n{err}"
    assert code in allowed, f"{label}: exit {code}, expected {allowed}: {err.strip()[:300]}"
    if code != 0:
        lines = [line for line in err.splitlines() if line.strip() and not line.startswith("note:")]
        assert len(lines) == 1, f"{label}: {len(lines)} lines of error:\n{err[:2000]}"
        assert lines[0].startswith("error:"), f"{label}: {lines[0]}"
        assert len(lines[0]) < 600, f"{label}: error of {len(lines[0])} characters"


def run_config_case(case: Case, tmp_path, capsys) -> None:
    out_dir = tmp_path / "out"
    path = tmp_path / "case.yaml"
    argv = ["run", str(path), "--check", "--quiet", "--out", str(out_dir), *case.extra]
    if case.via_set:
        path.write_text(yaml.safe_dump(case.set_base or BASE))
        argv += ["--set", f"{case.set_key}={flow(case.set_value)}"]
    else:
        path.write_text(yaml.safe_dump(case.config, allow_unicode=True))
    code, out, err = run_cli(argv, capsys)
    check_outcome(case.label, code, out, err, case.allowed)
    assert not out_dir.exists(), f"{case.label}: a checked run wrote {out_dir}"


def test_fuzz_config_sample(tmp_path, capsys, tiny_fashion_mnist):
    sample = ALL_CASES[::5] + [c for c in ALL_CASES if c.allowed != (2,)]
    for case in sample:
        run_config_case(case, tmp_path, capsys)
    print(f"{len(sample)} of {len(ALL_CASES)} generated config cases")


@pytest.mark.fuzz
def test_fuzz_config_all(tmp_path, capsys, tiny_fashion_mnist, request):
    if "fuzz" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the whole generated set: pytest -m fuzz")
    for case in ALL_CASES:
        run_config_case(case, tmp_path, capsys)
    rng = random.Random(0)  # pairs of bad values: the first problem is still one line
    for _ in range(300):
        a, b = rng.sample([c for c in ALL_CASES if c.config is not None and c.allowed == (2,)], 2)
        merged = {**a.config, **{k: v for k, v in b.config.items() if k not in ("name",)}}
        run_config_case(Case(f"{a.label} + {b.label}", merged, allowed=(0, 2)), tmp_path, capsys)


def bad_yaml_files(tmp_path) -> dict[str, bytes]:
    nested = "a: " + "[" * 50_000 + "]" * 50_000
    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(6))
    return {
        "latin-1": "name: café\n".encode("latin-1"),
        "utf-16": "name: x\n".encode("utf-16"),
        "random bytes": bytes(random.Random(1).randrange(256) for _ in range(300)),
        "top-level list": b"- a\n- b\n",
        "top-level list of pairs": b"- [name, x]\n- [seed, 1]\n",
        "top-level string": b"just words\n",
        "top-level number": b"42\n",
        "top-level boolean": b"true\n",
        "deep nesting": nested.encode(),
        "alias bomb": bomb.encode(),
        "duplicate key": b"name: a\nname: b\n",
        "duplicate section": b"student:\n  train: {epochs: 1}\nstudent:\n  train: {epochs: 2}\n",
        "NUL character": b"name: a\x00b\n",
        "NUL in run name": b'name: "a\\0b"\n',
        "300-character run name": f"name: {'x' * 300}\n".encode(),
        "name with ..": b"name: ../../x\n",
        "unclosed bracket": b"student: {train: [1, 2\n",
        "tab indentation": b"student:\n\ttrain: 1\n",
        "huge seed": f"seed: {2**128}\n".encode(),
        "a directory": b"",
    }


def test_fuzz_bad_config_files(tmp_path, capsys, tiny_fashion_mnist):
    for label, content in bad_yaml_files(tmp_path).items():
        path = tmp_path / "bad.yaml"
        if label == "a directory":
            path = tmp_path / "a-dir.yaml"
            path.mkdir()
        else:
            path.write_bytes(content)
        for command in (["run", str(path), "--check", "--quiet", "--out", str(tmp_path / "o")],
                        ["search", str(path), "--out", str(tmp_path / "s")]):
            code, out, err = run_cli(command, capsys)
            check_outcome(f"{label} ({command[0]})", code, out, err, (2,))
        assert not (tmp_path / "o").exists()


def write_checkpoints(folder) -> dict[str, object]:
    """A good checkpoint and its broken variants; returns label -> path."""
    folder.mkdir(exist_ok=True)
    spec = {"name": "mlp", "options": {"hidden": [4]}, "input_shape": [1, 28, 28], "num_classes": 10}
    weights = build_model("mlp", (1, 28, 28), 10, hidden=[4]).state_dict()
    other = build_model("mlp", (1, 28, 28), 10, hidden=[8]).state_dict()
    paths = {}

    def save(label, tensors, meta):
        paths[label] = folder / f"{label.replace(' ', '_')}.safetensors"
        save_tensors(paths[label], tensors, meta)

    save("good", weights, {"model": spec})
    good = paths["good"].read_bytes()
    for label, data in (("truncated", good[: len(good) // 2]), ("zero bytes", b""),
                        ("random bytes", bytes(random.Random(2).randrange(256) for _ in range(500)))):
        paths[label] = folder / f"{label.replace(' ', '_')}.safetensors"
        paths[label].write_bytes(data)
    save("another architecture", other, {"model": spec})
    save("negative dimension", weights, {"model": {**spec, "input_shape": [1, -28, 28]}})
    save("num_classes text", weights, {"model": {**spec, "num_classes": "ten"}})
    save("no model metadata", weights, {})
    save("unknown model", weights, {"model": {**spec, "name": "no_such_net"}})
    save("bad option", weights, {"model": {**spec, "options": {"hidden": "wide"}}})
    save("NaN weights", {k: torch.full_like(v, float("nan")) for k, v in weights.items()}, {"model": spec})
    return paths


def test_fuzz_bad_checkpoints(tmp_path, capsys, tiny_fashion_mnist):
    paths = write_checkpoints(tmp_path / "ckpt")
    for label, path in paths.items():
        allowed = (0,) if label == "good" else (2,)
        for command in (["evaluate", str(path), "--no-latency"], ["bench", str(path), "--repeats", "1"]):
            code, out, err = run_cli(command, capsys)
            check_outcome(f"{label} checkpoint ({command[0]})", code, out, err, allowed)
    code, _, err = run_cli(["evaluate", str(paths["another architecture"]), "--no-latency"], capsys)
    assert "built for model 'mlp' {hidden: [4]}" in err and "1.weight is [8, 784] in the checkpoint" in err


def test_fuzz_bad_arguments_and_folders(tmp_path, capsys, tiny_fashion_mnist):
    config = tmp_path / "base.yaml"
    config.write_text(yaml.safe_dump(BASE))
    search = tmp_path / "search.yaml"
    search.write_text(yaml.safe_dump({**BASE, "search": {"space": {"distill.options.temperature":
                                                                   {"low": 1.0, "high": 2.0}}}}))
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    empty, used = tmp_path / "empty", tmp_path / "used"
    empty.mkdir()
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    checkpoint = write_checkpoints(tmp_path / "ckpt")["good"]
    run = ["run", str(config), "--check", "--quiet"]
    cases = [
        [*run, "--nproc", "0"], [*run, "--nproc", "-2"], [*run, "--nproc", "two"],
        [*run, "--out", str(a_file)], [*run, "--out", str(a_file / "below")], [*run, "--out", "/dev/null"],
        [*run, "--resume", "--out", str(empty)], [*run, "--resume", "--out", str(tmp_path / "missing")],
        [*run, "--resume", "--overwrite", "--out", str(empty)], [*run, "--out", str(used)],
        [*run, "--overwrite", "--out", str(used)],
        [*run, "--set", "novalue"], [*run, "--set", "=1"], [*run, "--set", "student..train=1"],
        [*run, "--set", "student.train.epochs=[1,"], [*run, "--set", "name={"],
        [*run, "--set", "student.train.lr.x=1"], [*run, "--set", "student.train.lr=1e999"],
        [*run, "--set", "seed=" + str(2**128)], [*run, "--set", "student.model.name=no_such_net"],
        [*run, "--set", "runtime.device=cuda:99"], [*run, "--set", "runtime.device=gpu"],
        [*run, "--set", "runtime.precision=fp16"], [*run, "--set", "task=regression"],
        [*run, "--set", "distill.method=mse_kd"], [*run, "--set", "student.model.hidden=[-16]"],
        ["search", str(search), "--trials", "0"], ["search", str(search), "--trials", "-3"],
        ["search", str(search), "--storage", "bogus://x", "--out", str(tmp_path / "s")],
        ["evaluate", str(checkpoint), "--batch-size", "0"], ["evaluate", str(checkpoint), "--batch-size", "-1"],
        ["bench", str(checkpoint), "--repeats", "0"], ["export", str(checkpoint), "--out", str(a_file)],
        ["report", str(tmp_path / "missing")], ["no-such-command"],
    ]
    for argv in cases:
        if "cuda" in " ".join(argv) and torch.cuda.is_available():
            continue
        code, out, err = run_cli(argv, capsys)
        check_outcome(" ".join(argv[3:] if argv[0] == "run" else argv), code, out, err, (2,))
    assert (used / "notes.txt").read_text() == "mine"


def test_fuzz_run_folder_with_a_broken_config(tmp_path, capsys, tiny_fashion_mnist):
    """evaluate/export on a checkpoint whose run's config.yaml is corrupt or invalid: the error names the file."""
    checkpoint = write_checkpoints(tmp_path / "ckpt")["good"]
    for label, text in (("corrupt", b"data: {dataset: [\n"), ("invalid", b"data: {val_size: -3}\n"),
                        ("latin-1", "name: caf\xe9\n".encode("latin-1"))):
        run_dir = tmp_path / label
        (run_dir / "checkpoints").mkdir(parents=True)
        (run_dir / "checkpoints" / "student-best.safetensors").write_bytes(checkpoint.read_bytes())
        (run_dir / "config.yaml").write_bytes(text)
        for argv in (["evaluate", str(run_dir / "checkpoints" / "student-best.safetensors"), "--no-latency"],
                     ["export", str(run_dir)]):
            code, out, err = run_cli(argv, capsys)
            check_outcome(f"{label} config.yaml ({argv[0]})", code, out, err, (2,))
            assert str(run_dir / "config.yaml") in err, err


def test_fuzz_torn_json_for_report(tmp_path, capsys):
    for label, text in (("torn", '{"name": "x", "models": {'), ("a list", "[1, 2]"), ("not JSON", "\x00\x01"),
                        ("a string", '"summary"')):
        folder = tmp_path / label.replace(" ", "_")
        folder.mkdir()
        (folder / "summary.json").write_text(text)
        code, out, err = run_cli(["report", str(folder)], capsys)
        check_outcome(f"report on {label} summary.json", code, out, err, (2,))


def test_internal_errors_are_one_line_and_debug_shows_traceback(tmp_path, capsys, monkeypatch):
    import distill.cli

    def broken(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(distill.cli, "cmd_models", broken)
    code, _, err = run_cli(["models"], capsys)
    assert code == 1 and err.count("\n") == 1 and "bug in distill" in err and "ZeroDivisionError" in err
    assert "Traceback" not in err
    code, _, err = run_cli(["--debug", "models"], capsys)
    assert code == 1 and "Traceback" in err
    monkeypatch.setenv("DISTILL_DEBUG", "1")
    code, _, err = run_cli(["models"], capsys)
    assert code == 1 and "Traceback" in err


def test_generated_case_count():
    """The generator covers every schema field and every registered option (the count is in the docs)."""
    labels = [c.label for c in ALL_CASES]
    assert any(label.startswith("schema out of range student.train.epochs") for label in labels)
    assert any(label.startswith("model resnet.depth") for label in labels)
    assert any(label.startswith("method kd.temperature") for label in labels)
    assert len(ALL_CASES) > 500, len(ALL_CASES)
    os.environ.get("DISTILL_FUZZ_COUNT") and print(json.dumps({"cases": len(ALL_CASES)}))
