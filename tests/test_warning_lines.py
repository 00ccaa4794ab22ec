"""Every warning the CLI prints is one clean line, as errors are (issue 22): no line of Python source."""

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# warned while the CLI imports it (--import), as data loading would during a run
WARNS = '''
import warnings
from pathlib import Path
from distill.data.text import report_blank_rows
report_blank_rows(Path("train.txt"), [2, 3], "skip")
warnings.warn("a library's own warning,\\n  over two lines", UserWarning)
'''


def test_a_blank_rows_warning_and_a_library_warning_print_one_line_each(tmp_path):
    (tmp_path / "warns.py").write_text(WARNS)
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONWARNINGS": "default"}
    done = subprocess.run([sys.executable, "-m", "distill", "methods", "--import", "./warns.py"], cwd=tmp_path,
                          capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines == [
        "warning: train.txt: skipped 2 rows with a label and no sentence (line 2, 3); "
        "set data.text.blank_rows: error to refuse such files",
        "warning: a library's own warning, over two lines (UserWarning, warns.py:6)",
    ], done.stderr
    assert "report_blank_rows(" not in done.stderr
