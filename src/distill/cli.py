"""The `distill` command line. It only parses arguments and wires library calls together."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from distill import __version__
from distill.errors import DistillError
from distill.export.commands import add_commands as add_export_commands
from distill.report import commands as report_commands
from distill.search.commands import add_commands as add_search_commands

EPILOG = "Every command has its own --help. Docs: README.md and docs/ in the repository."


def cmd_run(args: argparse.Namespace) -> int:
    from distill.config import load_config
    from distill.pipeline.run_folder import new_run_dir

    cfg = load_config(args.config, args.set)
    # Said before torch is imported (seconds on a busy machine), so the user sees the config was read.
    Console(stderr=True, quiet=args.quiet or os.environ.get("RANK", "0") != "0").print(
        f"[bold]distill[/bold] run {args.config}: {cfg.name}, mode {cfg.distill.mode}, method {cfg.distill.method}",
        highlight=False)
    if args.nproc > 1:
        from distill.distributed import relaunch

        # Name the run folder once, here, so every rank writes to the same one.
        out = args.out or (None if args.resume else str(new_run_dir(cfg)))
        argv = ["run", args.config, *[f"--set={s}" for s in args.set], *(["--out", out] if out else []),
                *(["--resume"] if args.resume else []), *(["--quiet"] if args.quiet else [])]
        return relaunch(args.nproc, argv)
    from distill.pipeline.experiment import run_experiment

    run_experiment(cfg, Path(args.out) if args.out else None, resume=args.resume, quiet=args.quiet)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from distill.evaluate.checkpoint_eval import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, data_root=args.data, split=args.split,
                                 batch_size=args.batch_size, latency=not args.no_latency,
                                 config=args.config, dataset=args.dataset)
    console = Console()
    console.print_json(data=result)
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from distill.catalogue import catalogue  # no torch import: the listing is read from catalogue.json
    from distill.registry import UnknownNameError, nearest

    methods = catalogue()["methods"]
    console = Console()
    if args.name:
        if args.name not in methods:
            raise UnknownNameError(f"unknown method '{args.name}'{nearest(args.name, list(methods))}; "
                                   f"known: {', '.join(sorted(methods))}")
        entry = methods[args.name]
        console.print(f"[bold]{args.name}[/bold]: {entry['summary']}")
        if entry["paper"]:
            console.print(f"paper: {entry['paper']}")
        if entry["doc"]:
            console.print(entry["doc"])
        if entry.get("label_weight") is not None:
            console.print(f"label weight (the default of distill.label_weight): {entry['label_weight']}")
        console.print("options:")
        for key, default in entry["options"].items():
            console.print(f"  {key} = {default}")
        return 0
    for name in sorted(methods):
        console.print(f"[bold]{name:<16}[/bold] {methods[name]['summary']}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from distill.catalogue import catalogue
    from distill.registry import UnknownNameError, nearest

    models = catalogue()["models"]
    if args.name and args.name not in models:
        raise UnknownNameError(f"unknown model '{args.name}'{nearest(args.name, list(models))}; "
                               f"known: {', '.join(sorted(models))}")
    console = Console()
    for name in [args.name] if args.name else sorted(models):
        options = ", ".join(f"{k}={v}" for k, v in models[name]["options"].items())
        console.print(f"[bold]{name:<10}[/bold] {options}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="distill", description="Knowledge distillation: teacher -> small, fast student, with the numbers.",
        epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"distill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="train or load the teacher, train the baseline, distill, evaluate",
                         description="Run a whole experiment from a YAML config and write a run folder.")
    run.add_argument("config", help="experiment YAML (see examples/)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config field, e.g. --set distill.options.temperature=2 (repeatable)")
    run.add_argument("--out", help="run folder (default runs/<name>-<time>)")
    run.add_argument("--resume", action="store_true",
                     help="continue an interrupted run: the one in --out, else the latest runs/<name>-*")
    run.add_argument("--quiet", action="store_true", help="no progress output, only the result table")
    run.add_argument("--nproc", type=int, default=1, metavar="N",
                     help="train with N processes (DistributedDataParallel, gloo on CPU, nccl on GPU) via "
                          "torch.distributed.run; same as `torchrun --nproc-per-node N -m distill run ...`")
    run.set_defaults(func=cmd_run)

    ev = sub.add_parser(
        "evaluate", help="evaluate a checkpoint on its data",
        description="Evaluate a model checkpoint (<model>-best.safetensors from a run folder) and print its metrics "
                    "as JSON: accuracy and the rest for classification, MAE, MSE and R^2 for regression. "
                    "The data: --config or --dataset when given; else, for a checkpoint inside a run folder "
                    "(RUN/checkpoints/), the run's own data and split rebuilt from RUN/config.yaml (text: the "
                    "run's sentences and tokenizer); else the full Fashion-MNIST for a 1x28x28 image model.")
    ev.add_argument("checkpoint", help="a .safetensors checkpoint written by distill")
    source = ev.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="YAML",
                        help="experiment YAML (or a run folder) whose data section, and teacher.model.path for "
                             "the text tokenizer, describe the data; for checkpoints outside their run folder")
    source.add_argument("--dataset", metavar="NAME",
                        help="fashion_mnist, sst2 or trec, with its default split; text is tokenised with the "
                             "checkpoint's recorded tokenizer (its teacher's model directory)")
    ev.add_argument("--data", metavar="DIR",
                    help="the data's directory: Fashion-MNIST IDX files, or a text dataset's sentence files "
                         "(replaces data.root / data.text.root; default: the config's, or the usual place)")
    ev.add_argument("--split", choices=["test", "val"], default="test", help="which split (default test)")
    ev.add_argument("--batch-size", type=int, default=1000, help="evaluation batch size (default 1000)")
    ev.add_argument("--no-latency", action="store_true", help="skip latency measurement")
    ev.set_defaults(func=cmd_evaluate)

    me = sub.add_parser("methods", help="list distillation methods, or show one's options and paper")
    me.add_argument("name", nargs="?", help="a method name")
    me.set_defaults(func=cmd_methods)

    mo = sub.add_parser("models", help="list the model zoo and each model's options")
    mo.add_argument("name", nargs="?", help="a model name")
    mo.set_defaults(func=cmd_models)

    report_commands.add_commands(sub)
    add_search_commands(sub)
    add_export_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except DistillError as exc:
        Console(stderr=True).print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted; continue later with --resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
