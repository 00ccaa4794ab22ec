"""The report's search section: best trial, optimisation history, parameter importances, trials table."""

from __future__ import annotations

from html import escape

from distill.report import plots


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
    counts = {state: sum(t.get("state") == state for t in trials) for state in ("COMPLETE", "PRUNED", "FAIL")}
    study = search.get("study_name", search.get("name", "?"))
    lines = [f"Study '{study}': {len(trials)} trials ({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
             f"{counts['FAIL']} failed), sampler {search.get('sampler', '?')}, "
             f"objective: {direction} the distilled student's best {metric} on the validation split."]
    if best:
        params = ", ".join(f"{k} = {_value(v)}" for k, v in best.get("params", {}).items())
        lines.append(f"Best: trial {best.get('number')}, {metric} {_value(best.get('value'))}: {params}. "
                     "Its run's results are shown above; best.yaml holds the config.")
    importances = list((search.get("importances") or {}).items())
    svgs = [plots.history_chart(trials, direction, metric),
            plots.bar_chart(importances, "Parameter importances", "importance (sums to 1)", 1.0)]
    return ('<section id="search"><h2>Hyperparameter search</h2>'
            + "".join(f"<p>{escape(line)}</p>" for line in lines)
            + '<div class="plots">' + "".join(svgs) + "</div>"
            + '<p class="note">Importance: Optuna\'s own (optuna.importance.get_param_importances, its default '
              "evaluator) over the complete trials; shown from two complete trials on, rough with few trials.</p>"
            + trials_table(trials) + "</section>")
