"""What a soft decision tree student learned: its first levels' filters as images, and a few test paths.

At the end of a run whose models include a ``soft_tree``, ``explain_trees`` writes
``<role>-tree.json`` (filters of the first ``LEVELS`` levels, each leaf's most likely class, and the
greedy root-to-leaf path of the first ``SAMPLES`` test samples); ``tree_sections`` turns those files
into report sections (inline SVG: filters and inputs as heat maps when the input is an image).
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

import torch

from distill.io import atomic_write_text

LEVELS = 2
SAMPLES = 4


def _image_shape(input_shape: tuple[int, ...]) -> tuple[int, int] | None:
    dims = [d for d in input_shape if d != 1]
    return tuple(dims) if len(dims) == 2 else None


def explain_trees(stages: dict, data, run_dir: Path) -> list[Path]:
    from distill.models.soft_tree import SoftDecisionTree

    written = []
    for role, stage in stages.items():
        tree = stage.model
        if not isinstance(tree, SoftDecisionTree):
            continue
        tree = tree.to("cpu").eval()
        inner = 2 ** min(LEVELS, tree.depth) - 1
        x = data.test.inputs[:SAMPLES].cpu()
        with torch.no_grad():
            leaf_class = tree.leaves().argmax(1).tolist()
            predicted = tree(x).argmax(1).tolist()
        names = data.class_names
        info = {
            "role": role, "depth": tree.depth, "input_shape": list(tree.input_shape),
            "image_shape": _image_shape(tree.input_shape),
            "filters": tree.gates.filters.weight[:inner].detach().tolist(),
            "leaf_classes": [names[c] for c in leaf_class],
            "samples": [{"label": names[int(y)], "predicted": names[p], "input": xi.flatten().tolist(),
                         "path": [[node, round(prob, 4)] for node, prob in path]}
                        for xi, y, p, path in zip(x, data.test.targets[:SAMPLES], predicted, tree.paths(x), strict=True)],
        }
        path = Path(run_dir) / f"{role}-tree.json"
        atomic_write_text(path, json.dumps(info))
        written.append(path)
    return written


def heat_map(values: list[float], shape: tuple[int, int], title: str, pixels: int = 96) -> str:
    """An SVG image of ``values``: red positive, blue negative, white zero (scaled to the largest |value|)."""
    h, w = shape
    cell = max(2, pixels // max(h, w))
    scale = max(1e-12, max(abs(v) for v in values))
    rects = []
    for i, v in enumerate(values[: h * w]):
        r, c = divmod(i, w)
        t = v / scale
        colour = (255, round(255 * (1 - t)), round(255 * (1 - t))) if t >= 0 else \
            (round(255 * (1 + t)), round(255 * (1 + t)), 255)
        rects.append(f'<rect x="{c * cell}" y="{r * cell + 14}" width="{cell}" height="{cell}" '
                     f'fill="rgb{colour}"/>')
    width = max(w * cell, 7 * len(title))
    return (f'<svg class="chart" width="{width}" height="{h * cell + 16}" xmlns="http://www.w3.org/2000/svg">'
            f'<text x="0" y="11" class="tk">{escape(title)}</text>{"".join(rects)}</svg>')


def _node_name(node: int, inner: int) -> str:
    return f"leaf {node - inner}" if node >= inner else f"node {node}"


def tree_section(info: dict) -> str:
    inner = 2 ** info["depth"] - 1
    shape = tuple(info["image_shape"]) if info.get("image_shape") else None
    parts = [f'<p class="note">Soft decision tree of depth {info["depth"]} ({inner} inner nodes, '
             f'{inner + 1} leaves). Inner node i sends a sample right with probability '
             f'sigmoid(beta (x . w_i + b_i)); red: weights that push right, blue: left.</p>']
    if shape:
        parts.append('<div class="plots">' + "".join(
            heat_map(w, shape, f"node {i} (level {int(math.log2(i + 1))})") for i, w in enumerate(info["filters"]))
            + "</div>")
    else:
        top = [", ".join(f"x{j} {w[j]:+.2f}" for j in sorted(range(len(w)), key=lambda j: -abs(w[j]))[:5])
               for w in info["filters"]]
        parts.append("<ul>" + "".join(f"<li>node {i}: {escape(t)}</li>" for i, t in enumerate(top)) + "</ul>")
    parts.append("<p>Most likely class of each leaf: " + escape(", ".join(
        f"{i}: {c}" for i, c in enumerate(info["leaf_classes"]))) + "</p>")
    rows = []
    for s in info["samples"]:
        steps = []
        for (node, prob), (nxt, _) in zip(s["path"], s["path"][1:], strict=False):
            side = "right" if nxt == 2 * node + 2 else "left"
            steps.append(f"{_node_name(node, inner)} -{side} ({prob:.2f})->")
        steps.append(_node_name(s["path"][-1][0], inner))
        image = heat_map(s["input"], shape, "input", pixels=48) if shape else ""
        rows.append(f"<li>{image} label <b>{escape(s['label'])}</b>, predicted <b>{escape(s['predicted'])}</b>: "
                    f"{escape(' '.join(steps))}</li>")
    parts.append("<p>Greedy paths of the first test samples (the branch taken and its probability):</p>"
                 "<ul>" + "".join(rows) + "</ul>")
    return "".join(parts)


def tree_sections(run_dir: Path) -> list[str]:
    from distill.report.html import section

    out = []
    for path in sorted(Path(run_dir).glob("*-tree.json")):
        info = json.loads(path.read_text())
        out.append(section(f"Soft decision tree: {info['role']}", tree_section(info), f"tree-{info['role']}"))
    return out
