"""Hyperparameter search over config fields with Optuna (the optional `search` extra).

Importing this package does not import Optuna; ``run_search`` does.
"""

from __future__ import annotations


def run_search(*args, **kwargs):
    from distill.search.study import run_search as _run

    return _run(*args, **kwargs)


__all__ = ["run_search"]
