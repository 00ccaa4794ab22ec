"""Bad input found by feeding it (issue 22): one line, exit code 2, before anything trains or is written."""

import json

import pytest

from distill.cli import main
from distill.data.text import read_sentences

from .tiny_run import ROOT, TINY

# a tiny run, so that a check that came too late costs seconds, not the whole quick experiment
QUICK = [str(ROOT / "examples" / "quick.yaml"), *(arg for s in TINY for arg in ("--set", s))]


def one_line_error(capsys) -> str:
    """The one error line (`distill run` names its config on the line before)."""
    err = capsys.readouterr().err.strip()
    assert err.splitlines()[-1].startswith("error:") and err.count("error:") == 1 and "Traceback" not in err, err
    return err.splitlines()[-1]


@pytest.mark.parametrize("key", ["student.train.lr", "teacher.train.lr", "student.train.weight_decay"])
def test_an_overflowing_learning_rate_is_refused_before_training(tmp_path, capsys, key):
    out = tmp_path / "run"
    assert main(["run", *QUICK, "--set", f"{key}=1.0e+308", "--out", str(out)]) == 2
    err = one_line_error(capsys)
    assert f"'{key}'" in err and "less than or equal to 10" in err
    assert not out.exists()


@pytest.mark.parametrize("below", ["", "/sub/dir"])
def test_a_cache_dir_that_is_or_is_below_a_file_is_refused_before_training(tmp_path, capsys, below):
    file = tmp_path / "notes.txt"
    file.write_text("not a folder")
    out = tmp_path / "run"
    assert main(["run", *QUICK, "--set", f"cache.dir={file}{below}", "--set", "cache.mode=on", "--out", str(out)]) == 2
    err = one_line_error(capsys)
    assert "cache.dir" in err and "a file, not a folder" in err
    assert not out.exists()


def test_export_refuses_zero_calibration_batches(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["export", str(tmp_path), "--quantize", "int8", "--calibration-batches", "0"])
    assert stop.value.code == 2
    err = one_line_error(capsys)
    assert "--calibration-batches" in err and ">= 1" in err


def test_a_byte_order_mark_at_the_start_of_a_sentence_file_is_accepted(tmp_path):
    bom = "\ufeff"
    txt = tmp_path / "d.txt"
    txt.write_text(f"{bom}0 a bad film\n1 a good one\n", encoding="utf-8")
    data = read_sentences(txt)
    assert data.labels == [0, 1] and data.texts == ["a bad film", "a good one"]
    table = tmp_path / "d.csv"
    table.write_text(f"{bom}text,label\nfine,1\nawful,0\n", encoding="utf-8")
    assert read_sentences(table).labels == [1, 0]
    rows = tmp_path / "d.jsonl"
    rows.write_text(bom + "\n".join(json.dumps({"text": t, "label": y}) for t, y in [("ok", 1), ("no", 0)]) + "\n",
                    encoding="utf-8")
    assert read_sentences(rows).texts == ["ok", "no"]
