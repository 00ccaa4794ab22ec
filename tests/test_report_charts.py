"""The hand-written SVG charts: tick labels and point labels that do not overprint."""

import re
import xml.etree.ElementTree as ET

import pytest

from distill.report.plots import CHAR_PX, tradeoff_chart
from distill.report.svg import nice_ticks, tick_labels


@pytest.mark.parametrize("lo, hi, expected", [
    (0, 2500, ["0", "500", "1000", "1500", "2000", "2500"]),
    (0, 25000, ["0", "5k", "10k", "15k", "20k", "25k"]),
    (65, 76, ["65.0", "67.5", "70.0", "72.5", "75.0"]),
    (0, 0.02, ["0", "0.005", "0.010", "0.015", "0.020"]),
    (0, 1.6e6, ["0", "0.5M", "1.0M", "1.5M"]),
])
def test_tick_labels_are_plain_and_exact(lo, hi, expected):
    assert tick_labels(nice_ticks(lo, hi)) == expected


def boxes(svg: str) -> list[tuple[float, float, float, float]]:
    out = []
    for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text"):
        if t.get("class") != "lbl":
            continue
        x, y, width = float(t.get("x")), float(t.get("y")), CHAR_PX * len(t.text)
        x0 = x - {"start": 0, "middle": width / 2, "end": width}[t.get("text-anchor")]
        out.append((x0, y - 9, x0 + width, y + 3))
    return out


def test_point_labels_do_not_overprint():
    # student, its ONNX export and int8 sit almost on one spot (as in a real run)
    rows = [{"name": "teacher", "latency_ms_b1": 0.16, "accuracy": 0.71},
            {"name": "baseline", "latency_ms_b1": 0.018, "accuracy": 0.756},
            {"name": "student", "latency_ms_b1": 0.016, "accuracy": 0.674},
            {"name": "student onnx", "latency_ms_b1": 0.010, "accuracy": 0.674},
            {"name": "student int8", "latency_ms_b1": 0.008, "accuracy": 0.678}]
    svg = tradeoff_chart(rows, "latency_ms_b1", "Accuracy vs latency (batch 1)", "latency (ms)")
    placed = boxes(svg)
    assert len(placed) == 5
    for i, a in enumerate(placed):
        for b in placed[i + 1:]:
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1]), (a, b)
    assert not re.search(r">[0-9.]+e[+-][0-9]+<", svg)  # no 1e+03 style ticks
