"""Rich tables for `distill bench` and `distill export`."""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.table import Table

RUNTIMES = {"onnxruntime": "ort", "pytorch": "torch"}


def _ms(row: dict, key: str, digits: int) -> str:
    if row.get(key) is None:
        return "-"
    return f"{row[key]:.{digits}f}/{row[f'{key}_p90']:.{digits}f}"


def _rate(value: float) -> str:
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def cost_table(rows: list[dict], title: str) -> Table:
    """One row per model; the accuracy column only when some row has one, the token-ids column (len)
    only when some row is a text model. bN is the rows' `batch`."""
    from distill.evaluate.cost import format_macs  # here, not at the top: evaluate imports torch

    with_accuracy = any("accuracy" in r for r in rows)
    with_length = any("sequence" in r for r in rows)
    batch = rows[0].get("batch", "N") if rows else "N"
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, padding=0,
                  caption=f"rt: runtime (torch = PyTorch, ort = onnxruntime); latency in ms, median/p90 after "
                          f"warm-up; samples/s at batch {batch}; MACs: multiply-adds per sample" + ("; len: token ids per sentence" if with_length else ""))
    names = [Path(str(row.get("model", "?"))).name for row in rows]
    table.add_column("model", overflow="fold", min_width=min(24, max(map(len, names), default=5)))
    table.add_column("rt", no_wrap=True)
    if with_accuracy:
        table.add_column("acc", justify="right")
    if with_length:
        table.add_column("len", justify="right")
    for header in ("params", "MACs", "KiB", "b1 ms", f"b{batch} ms", "samples/s"):
        table.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        cells = [names.pop(0), RUNTIMES.get(row.get("runtime"), str(row.get("runtime")))]
        if with_accuracy:
            cells.append("-" if row.get("accuracy") is None else f"{row['accuracy']:.2%}")
        if with_length:
            cells.append(str(row.get("sequence", "-")))
        cells += [f"{row['params']:,}", format_macs(row.get("macs")), f"{row['size_bytes'] / 1024:.1f}", _ms(row, "latency_ms_b1", 3),
                  _ms(row, "latency_ms_bN", 2), _rate(row["throughput_per_s"])]
        table.add_row(*cells)
    return table
