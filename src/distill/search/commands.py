"""The `distill search` subcommand."""

from __future__ import annotations

import argparse

from rich.console import Console

from distill.errors import ConfigError
from distill.export.commands import _at_least


def cmd_search(args: argparse.Namespace) -> int:
    from distill.config import load_config

    try:
        import optuna  # noqa: F401
    except ImportError:
        raise ConfigError("distill search needs Optuna: pip install 'distill[search]'") from None
    from distill.search.study import default_folder, run_search

    cfg = load_config(args.config, args.set)
    from distill.preflight import check_config

    check_config(cfg, args.config)
    folder = args.out or default_folder(cfg)
    try:
        meta = run_search(cfg, folder, trials=args.trials, sampler=args.sampler, storage=args.storage,
                          quiet=args.quiet, study_name=args.study_name)
    except KeyboardInterrupt:
        Console(stderr=True).print(f"interrupted; run the same command again to resume the search in {folder}")
        return 130
    best = meta.get("best")
    if best:
        from distill.search.results import short_value

        params = ", ".join(f"{k}={short_value(v)}" for k, v in best["params"].items())
        Console(highlight=False, soft_wrap=True).print(
            f"best trial {best['number']}: {meta['metric']} {best['value']:.4f}  {params}\n"
            f"config: {folder}/best.yaml")
    return 0


def add_commands(sub) -> None:
    se = sub.add_parser("search", help="hyperparameter search over config fields (Optuna)",
                        description="Search the config's search.space with Optuna; each trial is a distill run "
                                    "scored on the validation split. Re-running the command resumes the search.")
    se.add_argument("config", help="experiment YAML with a search: block (see examples/search.yaml)")
    se.add_argument("--trials", type=_at_least(1), help="finished trials to reach (default search.trials, 20, or the grid)")
    se.add_argument("--sampler", choices=["grid", "random", "tpe"], help="default search.sampler (tpe)")
    se.add_argument("--storage", metavar="URL",
                    help="Optuna storage URL (any SQLAlchemy URL, e.g. postgresql://user@host/db; default sqlite in "
                         "the folder); several `distill search` processes on one URL and study share the trials")
    se.add_argument("--out", help="search folder (default runs/search-<name>)")
    se.add_argument("--study-name", metavar="NAME",
                    help="the Optuna study's name in the storage (default: the config's name); workers that give "
                         "the same --storage and --study-name share one study")
    se.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config field, e.g. --set student.train.epochs=3 (repeatable)")
    se.add_argument("--quiet", action="store_true", help="no progress output")
    se.set_defaults(func=cmd_search)
