"""The `distill report` subcommand."""

from __future__ import annotations

import argparse

from rich.console import Console


def cmd_report(args: argparse.Namespace) -> int:
    from distill.report.compare import write_comparison
    from distill.report.html import write_report

    if len(args.run_dirs) == 1:
        path = write_report(args.run_dirs[0], args.out)
    else:
        path = write_comparison(args.run_dirs, args.out or "comparison.html")
    Console().print(f"report: {path}")
    return 0


def add_commands(sub) -> None:
    re = sub.add_parser("report", help="write report.html for a run, or a comparison page for several",
                        description="Regenerate RUN_DIR/report.html (one folder: a run or a search folder), "
                                    "or write one page comparing several runs side by side.")
    re.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folder(s) written by distill run/search")
    re.add_argument("--out", help="output file (default RUN_DIR/report.html, or comparison.html for several)")
    re.set_defaults(func=cmd_report)
