"""How long the `distill` command takes to start: `--help`, `methods`, `models`, and `run` until its first line.

Each command runs in a fresh process several times; the table shows the median wall time and,
from ``python -X importtime``, the modules with the largest cumulative import time. ``--src
LABEL=DIR`` (repeatable) measures other checkouts' ``src/`` the same way, alternating with this
one run by run, so that machine load hits all of them alike (the "before" numbers).

    .venv/bin/python benchmarks/startup.py                                   # this checkout
    git archive 20c6c31 | tar -x -C /tmp/old
    .venv/bin/python benchmarks/startup.py --src before=/tmp/old/src         # before and after, side by side
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
COMMANDS = {"--help": ["--help"], "methods": ["methods"], "models": ["models"]}


def environment(src: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "HF_HUB_OFFLINE": "1", "COLUMNS": "100"}


def time_command(src: Path, args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "distill", *args], env=environment(src), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def time_first_line(src: Path, config: Path) -> float:
    """Seconds from starting `distill run` until it prints its first line (then the run is stopped)."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "distill", "run", str(config), "--out", f"{tmp}/run"],
                                env=environment(src), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            line = proc.stdout.readline()
            elapsed = time.perf_counter() - start
            if not line:
                raise RuntimeError("distill run printed nothing")
        finally:
            proc.kill()
            proc.wait()
    return elapsed


def slowest_imports(src: Path, args: list[str], top: int = 8) -> list[tuple[str, float]]:
    """The top-level modules with the largest cumulative import time (ms), from -X importtime."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "distill", *args], env=environment(src),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    cumulative: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        parts = [p.strip() for p in line[len("import time:"):].split("|")]
        try:
            us = float(parts[1])
        except ValueError:
            continue  # the header line
        name = parts[2]
        if not name.startswith(" ") and "." not in name:
            cumulative[name] = max(cumulative.get(name, 0.0), us / 1000)
    return sorted(cumulative.items(), key=lambda kv: -kv[1])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", action="append", default=[], metavar="LABEL=DIR",
                        help="another src/ folder to measure alongside this checkout's (repeatable)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    trees = {label: Path(path) for label, path in (item.split("=", 1) for item in args.src)}
    trees["after" if trees else "this checkout"] = ROOT / "src"
    config = ROOT / "examples" / "quick.yaml"
    names = [*COMMANDS, "run (first line)"]
    times: dict[str, dict[str, list[float]]] = {label: {n: [] for n in names} for label in trees}
    for _ in range(args.repeats):
        for name in names:
            for label, src in trees.items():  # alternate the trees run by run
                seconds = (time_first_line(src, config) if name == "run (first line)"
                           else time_command(src, COMMANDS[name]))
                times[label][name].append(seconds)
    imports = {label: slowest_imports(src, ["--help"]) for label, src in trees.items()}

    labels = list(trees)
    print(f"median wall seconds of {args.repeats} runs each (min-max), one thread, `python -m distill ...`")
    print(f"{'command':<18} " + " ".join(f"{label:>22}" for label in labels))
    for name in names:
        cells = [f"{statistics.median(times[lb][name]):.2f} ({min(times[lb][name]):.2f}-{max(times[lb][name]):.2f})"
                 for lb in labels]
        print(f"{name:<18} " + " ".join(f"{c:>22}" for c in cells))
    for label in labels:
        print(f"\nslowest imports of `distill --help`, {label} (cumulative ms):")
        for module, ms in imports[label]:
            print(f"  {module:<24} {ms:>8.0f}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "startup.json"
    results = {"repeats": args.repeats, "python": sys.version.split()[0], "load_average": os.getloadavg(),
               "trees": {label: {"src": str(src),
                                 "median_s": {n: round(statistics.median(v), 3) for n, v in times[label].items()},
                                 "all_s": {n: [round(t, 3) for t in v] for n, v in times[label].items()},
                                 "slowest_imports_ms": {m: round(ms) for m, ms in imports[label]}}
                         for label, src in trees.items()}}
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
