"""A gradient-boosted tree student (model ``gbdt``): scikit-learn's histogram GBDT, run as torch tensors.

Distilled GBDT: one ``HistGradientBoostingRegressor`` per output is fitted to the teacher's
logits (``target: logits``) or to its probabilities at ``temperature`` (``target: probabilities``)
on the training inputs; trained alone (no teacher) the same trees are a
``HistGradientBoostingClassifier`` on the labels (log-loss), or a regressor on the targets for
``task: regression``, with the same ``max_iter``, ``max_leaf_nodes``, ``learning_rate`` and
``min_samples_leaf``.

Trees are not trained by gradient steps, so ``distill.train.trees.fit_tree_model`` replaces the
training loop for this model (see there). Once fitted, every tree's nodes are copied into flat
tensors and ``forward`` walks all trees at once in torch: the model saves as safetensors, loads
with ``distill evaluate``, and its latency is measured like any other student's. Thresholds and
leaf values are (frozen) parameters, so ``params`` counts them.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import torch
from pydantic import Field
from torch import Tensor, nn

from distill.errors import ConfigError
from distill.models.registry import register_model
from distill.options import NonNegative, Positive, Size

NODE_TENSORS = ("feature", "left", "right", "is_leaf", "missing_left", "tree_output", "baseline", "probabilities_out")


class TreeEnsemble(nn.Module):
    """Sum of regression trees: out[:, tree_output[t]] += leaf value of tree t, plus ``baseline``."""

    def __init__(self, num_outputs: int, max_iter: int, max_leaf_nodes: int, learning_rate: float,
                 min_samples_leaf: int, l2_regularization: float, target: str, temperature: float):
        super().__init__()
        if target not in ("logits", "probabilities"):
            raise ConfigError(f"gbdt target must be 'logits' or 'probabilities', got '{target}'")
        if temperature <= 0:
            raise ConfigError(f"gbdt temperature must be > 0, got {temperature}")
        self.num_outputs = num_outputs
        self.options = {"max_iter": max_iter, "max_leaf_nodes": max_leaf_nodes, "learning_rate": learning_rate,
                        "min_samples_leaf": min_samples_leaf, "l2_regularization": l2_regularization}
        self.target, self.temperature = target, temperature
        self.threshold = nn.Parameter(torch.zeros(0, 1, dtype=torch.float64), requires_grad=False)
        self.value = nn.Parameter(torch.zeros(0, 1, dtype=torch.float64), requires_grad=False)
        empty = {"feature": torch.zeros(0, 1, dtype=torch.long), "left": torch.zeros(0, 1, dtype=torch.long),
                 "right": torch.zeros(0, 1, dtype=torch.long), "is_leaf": torch.ones(0, 1, dtype=torch.bool),
                 "missing_left": torch.zeros(0, 1, dtype=torch.bool),
                 "tree_output": torch.zeros(0, dtype=torch.long), "baseline": torch.zeros(num_outputs,
                                                                                       dtype=torch.float64),
                 # True when fitted to probabilities: forward takes their log
                 "probabilities_out": torch.tensor(False)}
        for name, t in empty.items():
            self.register_buffer(name, t)

    fits_without_gradients = True

    # -- fitting (scikit-learn) ---------------------------------------------------------------
    def fit_targets(self, x: Tensor, targets: Tensor, seed: int = 0) -> None:
        """Per-output regressors on ``targets`` (N, outputs): the teacher's logits or probabilities."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        x_np, y_np = _numpy(x), targets.detach().double().cpu().numpy().reshape(len(x), -1)
        # A constant output (the zero reference logit of a binary margin) needs no trees: its baseline is it.
        fitted = [k for k in range(y_np.shape[1]) if np.ptp(y_np[:, k]) > 0]
        models = {k: HistGradientBoostingRegressor(**self.options, early_stopping=False, random_state=seed)
                  .fit(x_np, y_np[:, k]) for k in fitted}
        baseline = y_np[0].copy()
        for k, m in models.items():
            baseline[k] = float(np.ravel(m._baseline_prediction)[0])
        iters = self._iters(list(models.values())) if models else 0
        self._load_trees([[(m._predictors[i][0], k) for k, m in models.items()] for i in range(iters)], baseline)

    def fit_labels(self, x: Tensor, labels: Tensor, task: str, seed: int = 0) -> None:
        """The same trees trained on labels alone: log-loss classification, or regression on the targets."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        if task == "regression":
            self.fit_targets(x, labels.reshape(len(labels), -1), seed)
            return
        y = labels.cpu().numpy()
        if len(np.unique(y)) != self.num_outputs:
            raise ConfigError(f"gbdt: the training labels hold {len(np.unique(y))} of {self.num_outputs} classes")
        model = HistGradientBoostingClassifier(**self.options, early_stopping=False, random_state=seed).fit(_numpy(x), y)
        per_iter = len(model._predictors[0])
        column = (lambda k: 1) if per_iter == 1 else (lambda k: k)  # binary: one tree, the logit of class 1
        base = np.ravel(model._baseline_prediction)
        baseline = np.zeros(self.num_outputs)
        baseline[[column(k) for k in range(per_iter)]] = base
        self._load_trees([[(p, column(k)) for k, p in enumerate(it)] for it in model._predictors], baseline)
        self.probabilities_out = torch.tensor(False)

    @staticmethod
    def _iters(models) -> int:
        return min(len(m._predictors) for m in models)

    def _load_trees(self, iterations: list[list[tuple]], baseline: np.ndarray) -> None:
        trees = [(pred.nodes, column) for it in iterations for pred, column in it]
        width = max((len(nodes) for nodes, _ in trees), default=1)
        shape = (len(trees), width)
        arrays = {"feature": np.zeros(shape, np.int64), "left": np.zeros(shape, np.int64),
                  "right": np.zeros(shape, np.int64), "is_leaf": np.ones(shape, bool),
                  "missing_left": np.zeros(shape, bool), "threshold": np.zeros(shape), "value": np.zeros(shape)}
        for t, (nodes, _) in enumerate(trees):
            n = len(nodes)
            arrays["feature"][t, :n] = nodes["feature_idx"]
            arrays["left"][t, :n], arrays["right"][t, :n] = nodes["left"], nodes["right"]
            arrays["is_leaf"][t, :n] = nodes["is_leaf"].astype(bool)
            arrays["missing_left"][t, :n] = nodes["missing_go_to_left"].astype(bool)
            arrays["threshold"][t, :n], arrays["value"][t, :n] = nodes["num_threshold"], nodes["value"]
            if nodes["is_categorical"].any():
                raise ConfigError("gbdt: categorical splits are not supported")
        state = {k: torch.from_numpy(v) for k, v in arrays.items()}
        state["tree_output"] = torch.tensor([column for _, column in trees], dtype=torch.long)
        state["baseline"] = torch.from_numpy(np.asarray(baseline, dtype=np.float64))
        state["probabilities_out"] = torch.tensor(self.target == "probabilities")
        self._set_state(state)

    def _set_state(self, state: dict[str, Tensor]) -> None:
        for name, t in state.items():
            if name in ("threshold", "value"):
                setattr(self, name, nn.Parameter(t.clone(), requires_grad=False))
            else:
                setattr(self, name, t.clone())

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # A fitted ensemble's tensors have the fitted sizes: take them as they come.
        found = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        for name in (*NODE_TENSORS, "threshold", "value"):
            if name not in found:
                missing_keys.append(prefix + name)
        unexpected_keys.extend(prefix + k for k in found if k not in (*NODE_TENSORS, "threshold", "value"))
        self._set_state({k: v for k, v in found.items() if k in (*NODE_TENSORS, "threshold", "value")})

    # -- prediction (torch) --------------------------------------------------------------------
    def raw(self, x: Tensor) -> Tensor:
        """The ensemble's sum (N, outputs) in float64."""
        x = x.flatten(1).double()
        n, trees = len(x), self.feature.shape[0]
        out = self.baseline.to(x.device).expand(n, self.num_outputs).clone()
        if trees == 0:
            return out
        width = self.feature.shape[1]
        base = (torch.arange(trees, device=x.device) * width)[None, :]
        node = torch.zeros(n, trees, dtype=torch.long, device=x.device)
        flat = {k: getattr(self, k).reshape(-1) for k in ("feature", "left", "right", "is_leaf", "missing_left",
                                                          "threshold", "value")}
        for _ in range(width):  # at most width - 1 steps from the root to a leaf
            at = base + node
            leaf = flat["is_leaf"][at]
            if bool(leaf.all()):
                break
            xv = x.gather(1, flat["feature"][at])
            go_left = torch.where(torch.isnan(xv), flat["missing_left"][at], xv <= flat["threshold"][at])
            node = torch.where(leaf, node, torch.where(go_left, flat["left"][at], flat["right"][at]))
        values = flat["value"][base + node]
        return out.index_add_(1, self.tree_output.to(x.device), values)

    def forward(self, x: Tensor) -> Tensor:
        out = self.raw(x)
        if bool(self.probabilities_out):  # fitted to probabilities: their log, renormalised, serves as logits
            p = out.clamp_min(1e-6)
            out = torch.log(p / p.sum(1, keepdim=True))
        return out.float()


def _numpy(x: Tensor) -> np.ndarray:
    return x.detach().flatten(1).double().cpu().numpy()


@register_model("gbdt")
def gbdt(input_shape: tuple[int, ...], num_classes: int, max_iter: Size = 100,
         max_leaf_nodes: Annotated[int, Field(ge=2, le=1 << 16)] = 15, learning_rate: Positive = 0.1,
         min_samples_leaf: Size = 20, l2_regularization: NonNegative = 0.0,
         target: Literal["logits", "probabilities"] = "logits", temperature: Positive = 1.0) -> nn.Module:
    """Gradient-boosted trees (scikit-learn, fitted to the teacher's outputs; not trained by gradient steps)."""
    return TreeEnsemble(num_classes, max_iter, max_leaf_nodes, learning_rate, min_samples_leaf, l2_regularization,
                        target, temperature)
