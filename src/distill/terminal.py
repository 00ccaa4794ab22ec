"""Console output that reads well in a terminal and in a file.

In a terminal: rich tables and styles, but no automatic highlighting (rich's highlighter colours
any number or bracket, e.g. random digits in a method's description). Piped or redirected: the
full width of a line (no wrapping at 80 columns that splits headers and sentences) and tables in
plain Markdown (`| a | b |`), which read, grep and paste well.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

FILE_WIDTH = 1000  # a line in a file is as long as its content; tables are not stretched (expand=False)


def output_console(stderr: bool = False, quiet: bool = False) -> Console:
    console = Console(stderr=stderr, highlight=False, quiet=quiet)
    if not console.is_terminal:
        console.width = FILE_WIDTH
    return console


def fit_table(table: Table, console: Console) -> Table:
    """The table as it should look on ``console``: box-drawn in a terminal, Markdown elsewhere."""
    if not console.is_terminal:
        table.box = box.MARKDOWN
        table.show_edge = True
    return table


def doc_markup(text: str) -> str:
    """A docstring as rich markup: brackets kept literally, ``code`` in bold (plain text in a file)."""
    return re.sub(r"``(.+?)``", r"[bold]\1[/bold]", escape(text))


def format_warning(message, category, filename, lineno, line=None) -> str:
    """One line per warning, as errors are: ``warning: MESSAGE``, no line of Python source after it.

    distill's own warnings speak for themselves; another package's name their kind and where they
    were raised, which its authors would need to hear about them.
    """
    text = " ".join(str(message).split())
    if not getattr(category, "__module__", "").startswith("distill"):
        text += f" ({category.__name__}, {Path(filename).name}:{lineno})"
    return f"warning: {text}\n"


def one_line_warnings() -> None:
    """Print every warning as :func:`format_warning` does (the CLI installs it before any command)."""
    warnings.formatwarning = format_warning


def info(message: str) -> None:
    """One line for the user from code that has no console of its own (a model factory replacing a head).

    Printed on the first process only (``RANK`` 0 under torchrun), to stdout like the run's own lines.
    """
    import os

    if os.environ.get("RANK", "0") == "0":
        print(message, flush=True)
