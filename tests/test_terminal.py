"""Terminal output, checked on captured output: progress bars, Ctrl-C, colours, width, tables, help texts."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from distill import cli
from distill.config.schema import TrainConfig
from distill.data.batches import InMemoryBatches
from distill.methods.base import build_method
from distill.report.summary import print_summary
from distill.terminal import output_console
from distill.train.progress import NullProgress, RichProgress
from distill.train.trainer import Trainer
from tests.helpers import blobs
from tests.test_api import flat_net

CSI = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


def screen(raw: str) -> list[str]:
    """What a terminal shows after ``raw``: enough of VT100 for rich's live display (cursor up, erase line)."""
    lines, row, col = [""], 0, 0
    pos = 0
    while pos < len(raw):
        match = CSI.match(raw, pos)
        if match:
            arg, code = match.groups()
            n = int(arg) if arg.isdigit() else 1
            if code == "A":
                row = max(0, row - n)
            elif code == "B":
                row += n
            elif code == "K":
                lines[row] = ""
            elif code == "G":
                col = n - 1
            pos = match.end()
            while len(lines) <= row:
                lines.append("")
            continue
        ch = raw[pos]
        pos += 1
        if ch == "\n":
            row, col = row + 1, 0
            while len(lines) <= row:
                lines.append("")
        elif ch == "\r":
            col = 0
        elif ch >= " ":
            line = lines[row].ljust(col)
            lines[row] = line[:col] + ch + line[col + 1:]
            col += 1
    return [line.rstrip() for line in lines if line.strip()]


def test_bars_do_not_pile_up_or_erase_the_lines_logged_between_them():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, color_system=None)
    progress = RichProgress(console)
    for model in ("teacher", "baseline", "student"):
        if model == "student":
            console.print("teacher cache: building 1 view(s)")
        for epoch in (1, 2):
            progress.start(f"{model} epoch {epoch}/2", 3)
            for _ in range(3):
                progress.advance("loss 0.5")
            progress.log(f"  {model} epoch {epoch}/2: loss 0.5")
        progress.stop()
    progress.start("evaluating on the test split", 3)
    for role in ("teacher", "baseline", "student"):
        progress.advance(role)
    progress.stop()
    console.print("result table")
    shown = screen(out.getvalue())
    expected = ["  teacher epoch 1/2: loss 0.5", "  teacher epoch 2/2: loss 0.5", "  baseline epoch 1/2: loss 0.5",
                "  baseline epoch 2/2: loss 0.5", "teacher cache: building 1 view(s)",
                "  student epoch 1/2: loss 0.5", "  student epoch 2/2: loss 0.5", "result table"]
    assert shown == expected  # every logged line stays, no finished bar is left over


def test_the_bar_shows_the_epoch_mean_loss():
    infos = []

    class Recording(NullProgress):
        def advance(self, info=""):
            infos.append(info)

    data = blobs(n=256)
    trainer = Trainer("m", flat_net(), TrainConfig(epochs=1, batch_size=32), build_method("supervised", None),
                      progress=Recording(), log_every=1)  # the shown loss changes at each sync
    result = trainer.fit(InMemoryBatches(data.train.inputs, data.train.targets, 32), data.val.inputs,
                         data.val.targets)
    assert infos[-1] == f"loss {result.history[0]['train_loss']:.4f}"  # not the last batch's loss


def test_ctrl_c_prints_the_command_that_resumes(monkeypatch, capsys, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("distill.pipeline.experiment.run_experiment", interrupted)
    (tmp_path / "my run.yaml").write_text("name: x\n")
    rc = cli.main(["run", "my run.yaml", "--set", "student.train.epochs=2", "--out", "runs/a b"])
    assert rc == 130
    err = capsys.readouterr().err
    assert "distill run 'my run.yaml' --set=student.train.epochs=2 --out 'runs/a b' --resume" in err


def test_no_highlighting_of_numbers_in_a_terminal(monkeypatch, capsys):
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    assert cli.main(["methods", "dkd"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" in out  # a terminal: the name is bold
    assert "beta = 8.0" in out and "arXiv:2203.08679" in out  # but numbers are not coloured


def test_files_get_full_lines_plain_tables_and_rendered_docstrings(capsys):
    assert cli.main(["models", "textcnn"]) == 0
    out = capsys.readouterr().out
    assert "``" not in out and "widths kernel_sizes" in out
    assert any(len(line) > 100 for line in out.splitlines())  # not wrapped at 80 columns
    assert "kernel_sizes (list of int >= 1, default [3, 4, 5]): widths of the 1-D convolutions" in out
    summary = {"name": "run", "dataset": "d", "method": "kd", "models": {
        "teacher": {"accuracy": 0.9, "params": 100, "size_bytes": 1024, "latency_ms_b1": 0.1, "latency_ms_b256": 1.0}}}
    print_summary(summary, output_console())
    table = capsys.readouterr().out
    assert "| model   | test acc |" in table and "┃" not in table


@pytest.mark.parametrize("command, words", [("methods", "registered distillation methods"),
                                             ("models", "what the model is and each of its options")])
def test_methods_and_models_help_describe_the_command(command, words, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    assert words in " ".join(capsys.readouterr().out.split())
