"""report.html for task causal_lm: the token-metric table, learning curves and the generations side by side."""

from __future__ import annotations

from html import escape

from distill.report import plots

LM_HEADERS = ["model", "perplexity", "cross-entropy", "KL to teacher", "top-1 agreement", "next-token accuracy",
              "ROUGE-L vs teacher", "generation tokens/s", "params", "size", "train time", "best epoch"]


def _num(value, spec: str, scale: float = 1.0, suffix: str = "") -> str:
    return "-" if value is None else format(value * scale, spec) + suffix


def lm_rows(summary: dict) -> list[list[str]]:
    from distill.report.summary import _roles

    rows = []
    for role in _roles(summary):
        e = summary["models"][role]
        rows.append([role, _num(e.get("perplexity"), ".2f"), _num(e.get("cross_entropy"), ".4f"),
                     _num(e.get("kl_to_teacher"), ".4f"), _num(e.get("top1_agreement"), ".1f", 100, "%"),
                     _num(e.get("accuracy"), ".1f", 100, "%"), _num(e.get("rouge_l"), ".3f"),
                     _num(e.get("gen_tokens_per_s"), ".1f"), "-" if e.get("params") is None else f"{e['params']:,}",
                     _num(e.get("size_bytes"), ".1f", 1 / 2**20, " MiB"), _num(e.get("train_seconds"), ".1f", 1, " s"),
                     "-" if e.get("best_epoch") is None else str(e["best_epoch"])])
    return rows


def generations_table(summary: dict) -> str:
    rows = summary.get("generations") or []
    if not rows:
        return '<p class="note">No generations (evaluate.generations: 0).</p>'
    roles = [r for r in ("teacher", "baseline", "student") if r in rows[0]] + [
        r for r in rows[0] if r not in ("prompt", "reference", "teacher", "baseline", "student")]
    head = "".join(f"<th>{escape(h)}</th>" for h in ["prompt", "reference", *roles])
    body = "".join("<tr>" + "".join(f'<td style="text-align:left;white-space:pre-wrap">{escape(str(r.get(k, "")))}</td>'
                                    for k in ["prompt", "reference", *roles]) + "</tr>" for r in rows)
    return f'<table id="generations"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def lm_sections(run, table, section, plot_row) -> list[str]:
    summary = run.summary
    tokens = summary.get("models", {}).get("teacher", summary.get("models", {}).get("student", {})).get("tokens")
    note = (f'<p class="note">On the test split\'s {tokens or "?"} reference response tokens: perplexity = '
            "exp(mean token cross-entropy); KL to teacher = mean KL(teacher || model) per token, in nats; top-1 "
            "agreement = share of tokens where the model's most likely next token is the teacher's; ROUGE-L = "
            "LCS F-measure of the model's greedy generation against the teacher's (words); generation speed at "
            "batch 1 with a KV cache, on this run's device.</p>")
    return [
        section("Summary", table(LM_HEADERS, lm_rows(summary), "summary-table") + note, "summary"),
        section("Learning curves", plot_row(plots.learning_curves(run.metrics)), "curves"),
        section("Generations", generations_table(summary)
                + '<p class="note">Greedy continuations of the first test prompts, side by side.</p>', "generations"),
    ]
