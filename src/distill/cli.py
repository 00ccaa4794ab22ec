"""The `distill` command line. It only parses arguments and wires library calls together."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import traceback
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from distill import __version__
from distill.errors import DistillError
from distill.export.commands import _at_least
from distill.export.commands import add_commands as add_export_commands
from distill.report import commands as report_commands
from distill.search.commands import add_commands as add_search_commands
from distill.terminal import one_line_warnings

EPILOG = ("Every command has its own --help. Exit codes: 0 done, 2 bad input (one line says what and how to fix "
          "it), 1 a bug in distill, 130 interrupted (docs/errors.md). Docs: README.md and docs/ in the repository.")
EXIT_OK, EXIT_BUG, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
BUG_REPORT = "docs/errors.md#reporting-a-bug"


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit code 2, like every other bad input)."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def cmd_run(args: argparse.Namespace) -> int:
    from distill.config import load_config
    from distill.config.load import is_empty_config
    from distill.pipeline.run_folder import new_run_dir

    cfg = load_config(args.config, args.set)
    if is_empty_config(args.config):
        Console(stderr=True).print(f"note: {escape(args.config)} is empty, so every setting is its default: the "
                                   f"full Fashion-MNIST experiment (see examples/ for configs)", highlight=False,
                                   soft_wrap=True)
    record_cli_imports(cfg, args)
    # Said before torch is imported (seconds on a busy machine), so the user sees the config was read.
    Console(stderr=True, quiet=args.quiet or os.environ.get("RANK", "0") != "0").print(
        f"[bold]distill[/bold] run {args.config}: {cfg.name}, mode {cfg.distill.mode}, method {cfg.distill.method}",
        highlight=False)
    from distill import preflight, rundir

    preflight.check_config(cfg, args.config)
    if args.out:  # checked here too, before torchrun starts processes
        rundir.check_out_folder(Path(args.out), args.resume, args.overwrite)
    if args.nproc > 1:
        from distill.distributed import relaunch

        # Name the run folder once, here, so every rank writes to the same one.
        out = args.out or (None if args.resume else str(new_run_dir(cfg)))
        flags = [flag for flag in ("resume", "quiet", "overwrite", "check") if getattr(args, flag)]
        argv = ["run", args.config, *[f"--set={s}" for s in args.set], *(["--out", out] if out else []),
                *[f"--{flag}" for flag in flags], *[f"--import={i}" for i in args.imports]]
        try:
            return relaunch(args.nproc, argv)
        except KeyboardInterrupt:  # the ranks stopped at their last checkpoint; one line, from the launcher
            resume = resume_command(args, Path(out)) if out else "distill run ... --resume (see the run folder)"
            Console(stderr=True, highlight=False).print(f"\ninterrupted; resume with:\n  {resume}", soft_wrap=True)
            return EXIT_INTERRUPTED
    from distill.pipeline.experiment import run_experiment
    from distill.pipeline.run_folder import latest_run_dir

    out = Path(args.out) if args.out else (latest_run_dir(cfg) if args.resume else new_run_dir(cfg))
    try:
        run_experiment(cfg, out, resume=args.resume, quiet=args.quiet, overwrite=args.overwrite,
                       check_only=args.check)
    except KeyboardInterrupt:
        from distill.distributed import RELAUNCHED

        if not os.environ.get(RELAUNCHED):  # under --nproc the launcher says it once, with --nproc
            Console(stderr=True, highlight=False).print(
                f"\ninterrupted; resume with:\n  {resume_command(args, out)}", soft_wrap=True)
        return EXIT_INTERRUPTED
    return 0


def resume_command(args: argparse.Namespace, out: Path) -> str:
    """The command that continues this run where it stopped (same config, overrides and imports)."""
    nproc = getattr(args, "nproc", 1)
    words = ["distill", "run", args.config, *[f"--set={s}" for s in args.set],
             *[f"--import={i}" for i in args.imports], *(["--nproc", str(nproc)] if nproc > 1 else []),
             "--out", str(out), "--resume"]
    return shlex.join(words)


def cmd_export(args: argparse.Namespace) -> int:
    """`distill export`, then the run's report.html rebuilt, so that it shows the ONNX and int8 rows."""
    from distill.export.commands import cmd_export as export
    from distill.report.html import report_after_run

    code = export(args)
    if getattr(args, "updated_run", None) is not None:
        report_after_run(Path(args.updated_run), Console(stderr=True))
    return code


def record_cli_imports(cfg, args: argparse.Namespace) -> None:
    """``--import`` modules go into the run's config.yaml too, so resume, evaluate and report find them."""
    from distill.plugins import resolve_import

    extra = [resolve_import(i) for i in args.imports]
    cfg.imports = [*cfg.imports, *[i for i in extra if i not in cfg.imports]]


def add_import_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import a Python module or ./file.py first, registering own models, methods or "
                             "datasets (repeatable; same as the config's top-level imports: list)")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from distill.evaluate.checkpoint_eval import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, data_root=args.data, split=args.split,
                                 batch_size=args.batch_size, latency=not args.no_latency,
                                 config=args.config, dataset=args.dataset, against_teacher=args.against_teacher)
    console = Console()
    console.print_json(data=result)
    return 0


def show_entry(console, kind: str, entries: dict, name: str) -> dict:
    """Print a catalogue entry's name, summary, paper and description; an unknown name is one line."""
    from distill.registry import UnknownNameError, nearest
    from distill.terminal import doc_markup

    if name not in entries:
        raise UnknownNameError(f"unknown {kind} '{name}'{nearest(name, list(entries))}; "
                               f"known: {', '.join(sorted(entries))}")
    entry = entries[name]
    console.print(f"[bold]{name}[/bold]: {doc_markup(entry['summary'])}")
    if entry["paper"]:
        console.print(f"paper: {escape(entry['paper'])}")
    if entry["doc"]:
        console.print(doc_markup(entry["doc"]))
    return entry


def cmd_methods(args: argparse.Namespace) -> int:
    from distill.catalogue import catalogue  # no torch import: the listing is read from catalogue.json
    from distill.terminal import doc_markup, output_console

    methods = catalogue()["methods"]
    console = output_console()
    if args.name:
        entry = show_entry(console, "method", methods, args.name)
        if entry.get("label_weight") is not None:
            console.print(f"label weight (the default of distill.label_weight): {entry['label_weight']}")
        console.print("options:")
        for key, default in entry["options"].items():
            console.print(f"  {key} = {escape(default)}")
        return 0
    for name in sorted(methods):
        console.print(f"[bold]{name:<16}[/bold] {doc_markup(methods[name]['summary'])}")
    return 0


def cmd_modes(args: argparse.Namespace) -> int:
    from distill.catalogue import catalogue  # no torch import: the listing is read from catalogue.json
    from distill.terminal import doc_markup, output_console

    modes = catalogue()["modes"]
    console = output_console()
    if not args.name:
        for name in sorted(modes):
            console.print(f"[bold]{name:<12}[/bold] {doc_markup(modes[name]['summary'])}")
        console.print("distill modes NAME: the mode's paper and the config keys it reads (set distill.mode: NAME)")
        return 0
    entry = show_entry(console, "mode", modes, args.name)
    console.print(f"config keys it reads (with distill.mode: {args.name}):")
    for key, meaning in entry["reads"].items():
        console.print(f"  [bold]{escape(key)}[/bold]: {doc_markup(meaning)}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from distill.catalogue import catalogue
    from distill.registry import UnknownNameError, nearest
    from distill.terminal import doc_markup, output_console

    index = catalogue()
    models, families = index["models"], index.get("families", {})
    if args.name and args.name.split(":")[0] in families and args.name not in models:
        from distill.catalogue import show_family

        return show_family(args.name, families[args.name.split(":")[0]], output_console())
    if args.name and args.name not in models:
        raise UnknownNameError(f"unknown model '{args.name}'{nearest(args.name, list(models))}; "
                               f"known: {', '.join(sorted(models))}")
    console = output_console()
    if args.name:
        entry = models[args.name]
        console.print(f"[bold]{args.name}[/bold]: {doc_markup(entry['summary'])}")
        details = entry["details"]
        console.print(f"options (model: {{name: {args.name}, OPTION: VALUE, ...}}):" if details else "no options")
        for option in details:
            kind = f"{escape(option['kind'])}, " if option["kind"] else ""
            console.print(f"  [bold]{option['name']}[/bold] ({kind}default {escape(option['default'])})"
                          + (f": {doc_markup(option['meaning'])}" if option["meaning"] else ""))
        return 0
    for name in sorted(models):
        console.print(f"[bold]{name:<18}[/bold] {doc_markup(models[name]['summary'])}")
    console.print("distill models NAME: the model's options and what each one means")
    from distill.catalogue import show_families

    show_families(families, console)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="distill", description="Knowledge distillation: teacher -> small, fast student, with the numbers.",
        epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"distill {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also DISTILL_DEBUG=1); may come anywhere")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="train or load the teacher, train the baseline, distill, evaluate",
                         description="Run a whole experiment from a YAML config and write a run folder.")
    run.add_argument("config", help="experiment YAML (see examples/)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config field, e.g. --set distill.options.temperature=2 (repeatable)")
    run.add_argument("--out", help="run folder (default runs/<name>-<time>)")
    run.add_argument("--resume", action="store_true",
                     help="continue an interrupted run: the one in --out, else the latest runs/<name>-*")
    run.add_argument("--overwrite", action="store_true",
                     help="replace the run already in --out (a used folder is refused otherwise)")
    run.add_argument("--check", action="store_true",
                     help="check the config, the data and that the models and method fit, then stop; writes nothing")
    run.add_argument("--quiet", action="store_true", help="no progress output, only the result table")
    run.add_argument("--nproc", type=_at_least(1), default=1, metavar="N",
                     help="train with N processes (DistributedDataParallel, gloo on CPU, nccl on GPU) via "
                          "torch.distributed.run; same as `torchrun --nproc-per-node N -m distill run ...`")
    run.set_defaults(func=cmd_run)

    ev = sub.add_parser(
        "evaluate", help="evaluate a checkpoint on its data",
        description="Evaluate a model checkpoint (<model>-best.safetensors from a run folder) and print its metrics "
                    "as JSON: accuracy and the rest for classification, MAE, MSE and R^2 for regression, "
                    "perplexity, cross-entropy and next-token accuracy on the reference tokens for a causal LM "
                    "(task: causal_lm; --against-teacher adds KL to the run's teacher and top-1 agreement). "
                    "The data: --config or --dataset when given; else, for a checkpoint inside a run folder "
                    "(RUN/checkpoints/), the run's own data and split rebuilt from RUN/config.yaml (text: the "
                    "run's sentences and tokenizer; causal_lm: its data.lm files and the teacher's tokenizer); "
                    "else the full Fashion-MNIST for a 1x28x28 image model.")
    ev.add_argument("checkpoint", help="a .safetensors checkpoint written by distill")
    source = ev.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="YAML",
                        help="experiment YAML (or a run folder) whose data section, and teacher.model.path for "
                             "the text tokenizer, describe the data; for checkpoints outside their run folder")
    source.add_argument("--dataset", metavar="NAME",
                        help="fashion_mnist, sst2 or trec, with its default split; text is tokenised with the "
                             "checkpoint's recorded tokenizer (its teacher's model directory)")
    ev.add_argument("--data", metavar="DIR",
                    help="the data's directory: Fashion-MNIST IDX files, a text dataset's sentence files, or the "
                         "folder holding a causal_lm run's data.lm files under the same names (replaces data.root "
                         "/ data.text.root; default: the config's, or the usual place)")
    ev.add_argument("--split", choices=["test", "val"], default="test", help="which split (default test)")
    ev.add_argument("--batch-size", type=_at_least(1), default=1000,
                    help="evaluation batch size (default 1000; a causal LM: at most 64 rows)")
    ev.add_argument("--no-latency", action="store_true",
                    help="skip latency measurement (classification, regression; a causal LM has none)")
    ev.add_argument("--against-teacher", action="store_true",
                    help="causal_lm: also build the run's teacher (teacher.model, pretrained; loading a 135M "
                         "model takes about 30 s) and add kl_to_teacher and top1_agreement")
    ev.set_defaults(func=cmd_evaluate)

    me = sub.add_parser("methods", help="list distillation methods, or show one's options and paper",
                        description="List the registered distillation methods with a one-line summary each, or, "
                                    "with NAME, show that method's description, paper and options with their "
                                    "defaults (set them under distill.options in the YAML). --import adds your own.")
    me.add_argument("name", nargs="?", help="a method name")
    me.set_defaults(func=cmd_methods)

    md = sub.add_parser("modes", help="list training modes (offline, online, takd, ...), or show one's config keys",
                        description="List the training modes (distill.mode) with a one-line summary each, or, with "
                                    "NAME, that mode's paper, description and the config keys it reads.")
    md.add_argument("name", nargs="?", help="a mode name")
    md.set_defaults(func=cmd_modes)

    mo = sub.add_parser("models", help="list the model zoo and each model's options",
                        description="List the registered models (the zoo, plus any from --import or plugins), or, "
                                    "with NAME, what the model is and each of its options: default, type and "
                                    "meaning (set them as model: {name: NAME, OPTION: VALUE} in the YAML).")
    mo.add_argument("name", nargs="?", help="a model name; torchvision, timm or hf for that library's models; "
                                            "'timm:*convnext*' for the names that match")
    mo.set_defaults(func=cmd_models)

    report_commands.add_commands(sub)
    add_search_commands(sub)
    add_export_commands(sub)
    sub.choices["export"].set_defaults(func=cmd_export)
    for command in sub.choices.values():
        add_import_option(command)
    return parser


def _where(exc: BaseException) -> str:
    """file:line of the innermost frame of distill's own code in the traceback."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f"{os.sep}distill{os.sep}" in f.filename]
    if not frames:
        return "outside distill"
    frame = frames[-1]
    return f"{Path(frame.filename).name}:{frame.lineno}"


def _say(message: str) -> None:
    Console(stderr=True).print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """The entry point. Exit codes: 0 done, 2 bad input (one line), 1 a bug in distill, 130 interrupted."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("DISTILL_DEBUG", "").lower() in ("1", "true", "yes")
    argv = [a for a in argv if a != "--debug"]
    one_line_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        if args.imports:
            from distill.plugins import import_user_code

            import_user_code(args.imports)
        return args.func(args)
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted; continue later with --resume")
        return EXIT_INTERRUPTED
    except DistillError as exc:
        if debug:
            traceback.print_exc()
        _say(" ".join(str(exc).split()) or type(exc).__name__)
        return EXIT_BAD_INPUT
    except OSError as exc:  # the file system said no: a path, a permission, a full disk
        if debug:
            traceback.print_exc()
        where = f": {exc.filename}" if exc.filename else ""
        _say(f"{exc.strerror or exc}{where}")
        return EXIT_BAD_INPUT
    except Exception as exc:
        if debug:
            traceback.print_exc()
            return EXIT_BUG
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        _say(f"internal error {type(exc).__name__}({first}) at {_where(exc)}: this is a bug in distill, not in "
             f"your input; please report it with the command and its --debug output ({BUG_REPORT})")
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
