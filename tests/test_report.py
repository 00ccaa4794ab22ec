"""report.html for a real (tiny) run, the comparison page, and the page rendered in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from distill.cli import main
from distill.pipeline.experiment import run_experiment
from distill.report.html import write_report

from .tiny_run import ROOT, tiny_config

PLOTS = ["Validation accuracy per epoch", "Validation loss per epoch", "Training loss: teacher",
         "Training loss: baseline", "Training loss: student", "Accuracy vs latency (batch 1)",
         "Accuracy vs size", "Agreement with the teacher (test split)"]
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "run"
    run_experiment(tiny_config(), out, quiet=True)
    return out


def svgs(html: str) -> list[str]:
    return re.findall(r"<svg .*?</svg>", html, flags=re.S)


def test_run_writes_report_with_table_plots_and_config(run_dir):
    html = (run_dir / "report.html").read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    table = re.search(r'<table id="summary-table">.*?</table>', html, flags=re.S).group(0)
    for role in ("teacher", "baseline", "student"):
        assert f"<td>{role}</td>" in table
        assert f"{summary['models'][role]['accuracy'] * 100:.2f}%" in table
    gap = summary["gap_recovered"]
    assert (f"{gap * 100:.1f}%" if gap is not None else "<td>-</td>") in table
    titles = [ET.fromstring(svg).get("aria-label") for svg in svgs(html)]  # each plot is well-formed SVG
    for title in PLOTS:
        assert title in titles
    for role in ("teacher", "baseline", "student"):
        assert role in titles  # one confusion matrix per model
        assert any(t.startswith(f"{role} (ECE ") for t in titles)  # one reliability diagram per model
    assert len(titles) == len(PLOTS) + 6
    assert "train_subset: 256" in html and "temperature: 4.0" in html  # the resolved config
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//', html)  # offline, no scripts


def test_report_command_regenerates_and_shows_int8_export(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "report.html").unlink()
    summary = json.loads((copy / "summary.json").read_text())
    student = summary["models"]["student"]
    summary["export"] = {"int8": {"accuracy": 0.4321, "params": 1234, "size_bytes": 2048, "latency_ms_b1": 0.01,
                                  "confusion_matrix": student["confusion_matrix"], "ece": 0.05,
                                  "reliability": student["reliability"]}}
    (copy / "summary.json").write_text(json.dumps(summary))
    assert main(["report", str(copy)]) == 0
    html = (copy / "report.html").read_text()
    assert "<td>student int8</td>" in html and "43.21%" in html and "2.0 KiB" in html
    titles = [ET.fromstring(svg).get("aria-label") for svg in svgs(html)]
    assert "student int8" in titles and "student int8 (ECE 5.00%)" in titles


def test_export_merges_into_the_summary_and_the_report_shows_onnx_rows(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    assert main(["export", str(copy), "--quantize", "int8", "--repeats", "2", "--batch-size", "4"]) == 0
    summary = json.loads((copy / "summary.json").read_text())
    assert summary["export"]["fp32"]["accuracy"] == json.loads((copy / "export.json").read_text())["fp32"]["accuracy"]
    assert summary["models"]["student"]  # the run's own numbers are kept
    html = (copy / "report.html").read_text()
    table = re.search(r'<table id="summary-table">.*?</table>', html, flags=re.S).group(0)
    assert "<td>student onnx</td>" in table and "<td>student int8</td>" in table
    assert f"{summary['export']['int8']['accuracy'] * 100:.2f}%" in table


def test_run_summary_records_where_it_ran(run_dir):
    import torch

    import distill

    env = json.loads((run_dir / "summary.json").read_text())["environment"]
    assert env["world_size"] == 1 and env["device"] == "cpu" and env["threads"] == 1
    assert env["torch"] == torch.__version__ and env["distill"] == distill.__version__


def test_comparison_lists_settings_no_config_holds(run_dir, tmp_path):
    other = tmp_path / "ddp"
    shutil.copytree(run_dir, other)
    summary = json.loads((other / "summary.json").read_text())
    summary["environment"]["world_size"] = 2  # as under torchrun --nproc-per-node 2
    (other / "summary.json").write_text(json.dumps(summary))
    out = tmp_path / "compare.html"
    assert main(["report", str(run_dir), str(other), "--out", str(out)]) == 0
    diff = re.search(r'<table id="config-diff">.*?</table>', out.read_text(), flags=re.S).group(0)
    assert "<td>environment.world_size</td><td>1</td><td>2</td>" in diff


def test_each_model_has_its_own_training_loss_panel(run_dir):
    html = (run_dir / "report.html").read_text()
    charts = {ET.fromstring(svg).get("aria-label"): ET.fromstring(svg) for svg in svgs(html)}
    assert "Training loss per epoch" not in charts  # KD losses and cross-entropy no longer share an axis
    legend = [t.text for t in charts["Training loss: student"].iter("{http://www.w3.org/2000/svg}text")
              if t.get("class") == "lg"]
    assert legend == ["total", "label", "soft"]


def test_comparison_page_puts_runs_side_by_side(run_dir, tmp_path):
    other = tmp_path / "hot"
    run_experiment(tiny_config(extra=["distill.options.temperature=2.0"]), other, quiet=True)
    out = tmp_path / "compare.html"
    assert main(["report", str(run_dir), str(other), "--out", str(out)]) == 0
    html = out.read_text()
    assert "<td>run / teacher</td>" in html and "<td>hot / student</td>" in html
    diff = re.search(r'<table id="config-diff">.*?</table>', html, flags=re.S).group(0)
    assert "distill.options.temperature" in diff and "<td>4.0</td><td>2.0</td>" in diff
    assert "student.train.epochs" not in diff  # only fields that differ
    assert '<body class="wide">' in html  # the whole window, not clipped at the run page's width
    titles = [ET.fromstring(svg).get("aria-label") for svg in svgs(html)]
    assert "Student validation accuracy" in titles
    assert titles.count("Validation accuracy per epoch") == 2  # one column per run


# -- a real browser ------------------------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")


def chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
             "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]
    return subprocess.run([CHROMIUM, *flags, *args, url], capture_output=True, text=True, timeout=120)


def render(page: Path, tmp_path: Path, screenshot: Path) -> tuple[str, list[str]]:
    """The DOM after load, and every console message; a screenshot is saved on the way."""
    url = page.resolve().as_uri()
    dom = chromium(url, tmp_path / "profile", "--dump-dom")
    shot = chromium(url, tmp_path / "profile", "--window-size=1400,2600", f"--screenshot={screenshot}")
    console = [line for line in (dom.stderr + shot.stderr).splitlines() if ":CONSOLE" in line]
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout, console


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@needs_chromium
def test_browser_renders_report_without_console_errors(run_dir, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    dom, console = render(run_dir / "report.html", tmp_path, screenshot)
    assert console == []
    assert '<table id="summary-table">' in dom and "<td>student</td>" in dom
    assert dom.count("<svg ") == len(PLOTS) + 6
    assert png_size(screenshot) == (1400, 2600) and screenshot.stat().st_size > 50_000  # not a blank page


@needs_chromium
def test_browser_check_catches_script_errors(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><p>x</p><script>undefinedFunction();</script></body></html>")
    _, console = render(page, tmp_path, tmp_path / "broken.png")
    assert any("undefinedFunction is not defined" in line for line in console)


def test_report_refuses_a_folder_without_results(tmp_path):
    with pytest.raises(Exception, match="no summary.json"):
        write_report(tmp_path)
