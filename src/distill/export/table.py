"""Rich tables for `distill bench` and `distill export`."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.table import Table

RUNTIMES = {"onnxruntime": "ort", "pytorch": "torch"}


def _ms(row: dict, key: str) -> str:
    if row.get(key) is None:
        return "-"
    return f"{row[key]:.3f}/{row[f'{key}_p90']:.3f}"


def cost_table(rows: list[dict], title: str) -> Table:
    """One row per model; the accuracy column only when some row has one. bN is the rows' `batch`."""
    with_accuracy = any("accuracy" in r for r in rows)
    batch = rows[0].get("batch", "N") if rows else "N"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
                  caption=f"latency in ms, median/p90 after warm-up; throughput k = 1000 samples/s at batch {batch}")
    table.add_column("model", overflow="fold")
    table.add_column("runtime", no_wrap=True)
    if with_accuracy:
        table.add_column("acc", justify="right")
    for header in ("params", "KiB", "b1 ms", f"b{batch} ms", "k/s"):
        table.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        cells = [Path(str(row.get("model", "?"))).name, RUNTIMES.get(row.get("runtime"), str(row.get("runtime")))]
        if with_accuracy:
            cells.append("-" if row.get("accuracy") is None else f"{row['accuracy']:.2%}")
        cells += [f"{row['params']:,}", f"{row['size_bytes'] / 1024:.1f}", _ms(row, "latency_ms_b1"),
                  _ms(row, "latency_ms_bN"), f"{row['throughput_per_s'] / 1000:,.1f}"]
        table.add_row(*cells)
    return table
