"""The report's plots, each an inline SVG string built from run data (summary, metrics, trials)."""

from __future__ import annotations

from html import escape

from distill.report.svg import PALETTE, Chart, blend, empty_chart, nice_ticks, padded

ROLE_COLORS = {"teacher": PALETTE[0], "baseline": "#7f7f7f", "student": PALETTE[1], "student int8": PALETTE[2]}


def color_of(name: str, index: int = 0) -> str:
    return ROLE_COLORS.get(name, PALETTE[index % len(PALETTE)])


def epoch_series(metrics: list[dict], key: str) -> dict[str, list[tuple[float, float]]]:
    """``{model: [(epoch, value), ...]}``; a resumed run may log an epoch twice, the last record wins."""
    by_model: dict[str, dict[int, float]] = {}
    for record in metrics:
        if record.get(key) is not None:
            by_model.setdefault(record["model"], {})[record["epoch"]] = record[key]
    return {model: sorted(epochs.items()) for model, epochs in by_model.items()}


def curve_chart(series: dict[str, list[tuple[float, float]]], title: str, ylabel: str,
                colors: dict[str, str] | None = None, width: int = 440) -> str:
    points = [p for line in series.values() for p in line]
    if not points:
        return empty_chart(title, "no epochs logged")
    xs = [p[0] for p in points]
    chart = Chart(title, "epoch", ylabel, (min(xs) - 0.2, max(xs) + 0.2), padded([p[1] for p in points]),
                  width=width)
    for i, (name, line) in enumerate(series.items()):
        chart.line(line, (colors or {}).get(name) or color_of(name, i), label=name)
    xticks = [t for t in nice_ticks(min(xs), max(xs), min(6, max(1, int(max(xs) - min(xs))))) if t == int(t)]
    return chart.svg(xticks=xticks or [min(xs)])


def term_series(metrics: list[dict], model: str) -> dict[str, list[tuple[float, float]]]:
    """One model's training loss per epoch: the total, and each term when there are several."""
    by_term: dict[str, dict[int, float]] = {}
    for record in metrics:
        if record.get("model") != model or record.get("train_loss") is None:
            continue
        by_term.setdefault("total", {})[record["epoch"]] = record["train_loss"]
        terms = record.get("terms") or {}
        if len(terms) > 1:
            for term, value in terms.items():
                by_term.setdefault(term, {})[record["epoch"]] = value
    return {term: sorted(epochs.items()) for term, epochs in by_term.items()}


def learning_curves(metrics: list[dict]) -> list[str]:
    """Validation accuracy and validation loss (the same quantity for every model, so one axis), then
    each model's training loss in a panel of its own: a distillation loss (KL at temperature T, plus
    weights) and a cross-entropy are different quantities and do not share an axis."""
    regression = any("val_mse" in r for r in metrics)
    charts = []
    if not regression:
        charts.append(curve_chart(epoch_series(metrics, "val_accuracy"), "Validation accuracy per epoch",
                                  "val accuracy"))
    charts.append(curve_chart(epoch_series(metrics, "val_loss"), "Validation loss per epoch",
                              "val MSE" if regression else "val cross-entropy"))
    models = list(dict.fromkeys(r["model"] for r in metrics if "model" in r))
    for i, model in enumerate(models):
        series = term_series(metrics, model)
        colors = {"total": color_of(model, i)}
        colors.update({term: PALETTE[(j + 3) % len(PALETTE)] for j, term in enumerate(t for t in series if t != "total")})
        charts.append(curve_chart(series, f"Training loss: {model}", "train loss", colors, width=340))
    return charts


CHAR_PX, LINE_PX = 6.2, 12  # the label font's average character width and line height (11 px font)
# Where a point's label may go: (dx, dy, text-anchor), tried in order; then stacked further below/above.
LABEL_SPOTS = [(8, -6, "start"), (8, 14, "start"), (-8, -6, "end"), (-8, 14, "end"), (0, -10, "middle"),
               (0, 20, "middle")] + [(8, -6 - LINE_PX * k * sign, "start") for k in range(1, 6) for sign in (-1, 1)]


def _box(px: float, py: float, spot: tuple, text: str) -> tuple[float, float, float, float]:
    dx, dy, anchor = spot
    width = CHAR_PX * len(text)
    x0 = px + dx - {"start": 0, "middle": width / 2, "end": width}[anchor]
    return x0, py + dy - 9, x0 + width, py + dy + 3


def _overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def place_labels(points: list[tuple[float, float, str]], width: float, height: float) -> list[tuple]:
    """A spot for each label (pixel positions), so that no two labels and no label and point overprint.

    Greedy, in order: the first spot that touches nothing already placed and stays in the chart;
    else the spot with the least overlap. Returns (x, y, anchor, text) per label.
    """
    taken = [(px - 5, py - 5, px + 5, py + 5) for px, py, _ in points]  # the markers themselves
    placed = []
    for i, (px, py, text) in enumerate(points):
        others = taken[:i] + taken[i + 1:]
        best, best_cost = None, None
        for spot in LABEL_SPOTS:
            box = _box(px, py, spot, text)
            outside = box[0] < 0 or box[2] > width or box[1] < 22 or box[3] > height
            cost = sum(_overlap(box, t) for t in others) + (1e6 if outside else 0)
            if best_cost is None or cost < best_cost:
                best, best_cost = spot, cost
            if cost == 0:
                break
        taken.append(_box(px, py, best, text))
        placed.append((px + best[0], py + best[1], best[2], text))
    return placed


def tradeoff_chart(rows: list[dict], key: str, title: str, xlabel: str, scale: float = 1.0) -> str:
    """One point per model: test accuracy against a cost (latency, size); labels placed not to overprint."""
    points = [(r["name"], r[key] * scale, r["accuracy"] * 100, r.get("color")) for r in rows
              if r.get(key) is not None and r.get("accuracy") is not None]
    if not points:
        return empty_chart(title, f"no {xlabel} measured")
    longest = max(len(p[0]) for p in points)
    chart = Chart(title, xlabel, "test accuracy (%)", padded([p[1] for p in points] + [0], 0.15, floor=0),
                  padded([p[2] for p in points], 0.3), width=400 + 6 * longest, margin=(34, 16 + 6 * longest, 44, 58))
    for i, (name, x, y, color) in enumerate(points):
        chart.point(x, y, color or color_of(name, i), radius=5, tip=f"{name}: {y:.2f}% at {x:.3g}")
    pixels = [(chart.x(x), chart.y(y), name) for name, x, y, _ in points]
    for lx, ly, anchor, text in place_labels(pixels, chart.width, chart.height):
        chart.add(f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" class="lbl">{escape(text)}</text>')
    return chart.svg()


def confusion_chart(matrix: list[list[int]], class_names: list[str], title: str) -> str:
    """Rows = true class, columns = predicted; colour = share of the row, numbers = counts."""
    n = len(matrix)
    if n == 0:
        return empty_chart(title, "no confusion matrix")
    names = class_names if len(class_names) == n else [str(i) for i in range(n)]
    chart = Chart(title, "predicted", "true", (0, n), (n, 0), width=380, height=400, margin=(30, 10, 90, 90))
    for r, row in enumerate(matrix):
        total = sum(row) or 1
        for c, count in enumerate(row):
            share = count / total
            chart.rect(c, r, c + 1, r + 1, blend(share), tip=f"true {names[r]}, predicted {names[c]}: {count}")
            if count:
                cls = "cellw" if share > 0.5 else "cell"
                chart.text(c + 0.5, r + 0.68, str(count), cls=cls)
    chart.rotate_x = True
    ticks = [(i + 0.5, name[:12]) for i, name in enumerate(names)]
    return chart.svg(xticks=ticks, yticks=ticks, css_class="chart cm")


def reliability_chart(bins: list[dict], ece: float | None, title: str) -> str:
    """Accuracy per confidence bin against the diagonal of perfect calibration."""
    ece_text = f" (ECE {ece * 100:.2f}%)" if ece is not None else ""
    chart = Chart(title + ece_text, "confidence", "accuracy", (0, 1), (0, 1), width=320, height=300)
    chart.line([(0, 0), (1, 1)], "#999999", dash="4 3", markers=False)
    for b in bins or []:
        if not b.get("count"):
            continue
        tip = f"{b['lower']:.2f}-{b['upper']:.2f}: {b['count']} samples, confidence {b['confidence']:.3f}, " \
              f"accuracy {b['accuracy']:.3f}"
        chart.rect(b["lower"], 0, b["upper"], b["accuracy"], PALETTE[0], tip=tip, opacity=0.75)
        chart.line([(b["lower"], b["confidence"]), (b["upper"], b["confidence"])], PALETTE[1], markers=False)
    chart.legend += [("accuracy", PALETTE[0]), ("confidence", PALETTE[1])]
    return chart.svg(css_class="chart rel")


def bar_chart(items: list[tuple[str, float]], title: str, xlabel: str, xmax: float | None = None,
              percent: bool = False) -> str:
    """Horizontal bars, one per item."""
    if not items:
        return empty_chart(title, "nothing to show")
    top = xmax or max(v for _, v in items) or 1.0
    height = 60 + 26 * len(items)
    # the left margin fits the longest label (about 6 px per character at the tick font), nothing is cut
    left = max(60, 12 + 6 * max(len(name) for name, _ in items))
    chart = Chart(title, xlabel, "", (0, top), (len(items), 0), height=height, margin=(30, 50, 40, left),
                  width=max(460, left + 320))
    for i, (name, value) in enumerate(items):
        chart.rect(0, i + 0.2, value, i + 0.8, color_of(name, i), tip=f"{name}: {value:.4g}")
        chart.text(value, i + 0.62, f" {value * 100:.1f}%" if percent else f" {value:.3g}", anchor="start")
    yticks = [(i + 0.5, name) for i, (name, _) in enumerate(items)]
    return chart.svg(yticks=yticks)


def history_chart(trials: list[dict], direction: str, metric: str) -> str:
    """Each finished trial's value, and the best value so far."""
    done = [t for t in trials if t.get("value") is not None]
    if not done:
        return empty_chart("Optimisation history", "no finished trials")
    xs = [t["number"] for t in done]
    chart = Chart("Optimisation history", "trial", metric, (min(xs) - 0.5, max(xs) + 0.5),
                  padded([t["value"] for t in done], 0.2))
    best, best_line = None, []
    pick = max if direction == "maximize" else min
    for t in sorted(done, key=lambda t: t["number"]):
        best = t["value"] if best is None else pick(best, t["value"])
        best_line.append((t["number"], best))
        color = PALETTE[0] if t["state"] == "COMPLETE" else "#bbbbbb"
        chart.point(t["number"], t["value"], color, tip=f"trial {t['number']} ({t['state']}): {t['value']:.4f}")
    chart.line(best_line, PALETTE[1], label="best so far", markers=False)
    chart.legend.append(("trial (grey = pruned)", PALETTE[0]))
    xticks = [t for t in nice_ticks(min(xs), max(xs), min(8, max(1, max(xs) - min(xs)))) if t == int(t)]
    return chart.svg(xticks=xticks or [min(xs)])
