"""The report's search section: best trial, optimisation history, parameter importances, trials table."""

from __future__ import annotations

from html import escape

from distill.report import plots
from distill.report.importance import param_importances


def _value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def trials_table(trials: list[dict]) -> str:
    names = sorted({k for t in trials for k in t.get("params", {})})
    head = "".join(f"<th>{escape(h)}</th>" for h in ["trial", "state", "value", *names, "seconds", "run"])
    rows = []
    for t in sorted(trials, key=lambda t: t["number"]):
        run = t.get("run_dir")
        finished = run and t.get("state") == "COMPLETE"  # pruned and failed trials stop before their report
        link = f'<a href="{escape(run)}/report.html">{escape(run)}</a>' if finished else escape(run or "-")
        cells = [str(t["number"]), t.get("state", "?"), _value(t.get("value")),
                 *(_value(t.get("params", {}).get(n)) for n in names), _value(t.get("seconds"))]
        rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + f"<td>{link}</td></tr>")
    return f'<table id="trials-table"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def search_section(search: dict) -> str:
    trials = search.get("trials", [])
    metric = search.get("metric", "val_accuracy")
    direction = search.get("direction", "maximize")
    best = search.get("best") or {}
    done = sum(t.get("state") == "COMPLETE" for t in trials)
    pruned = sum(t.get("state") == "PRUNED" for t in trials)
    lines = [f"{len(trials)} trials ({done} complete, {pruned} pruned), sampler {search.get('sampler', '?')}, "
             f"objective: {direction} the distilled student's best {metric} on the validation split."]
    if best:
        params = ", ".join(f"{k} = {_value(v)}" for k, v in best.get("params", {}).items())
        lines.append(f"Best: trial {best.get('number')}, {metric} {_value(best.get('value'))}: {params}. "
                     "Its run's results are shown above; best.yaml holds the config.")
    importances = list(param_importances(trials).items())
    svgs = [plots.history_chart(trials, direction, metric),
            plots.bar_chart(importances, "Parameter importances", "share of the objective's variance", 1.0)]
    return ('<section id="search"><h2>Hyperparameter search</h2>'
            + "".join(f"<p>{escape(line)}</p>" for line in lines)
            + '<div class="plots">' + "".join(svgs) + "</div>"
            + '<p class="note">Importance: share of the variance of the objective over complete trials explained by '
              "each parameter's value groups (eta squared, normalised).</p>"
            + trials_table(trials) + "</section>")
