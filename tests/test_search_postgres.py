"""Two `distill search` workers on one PostgreSQL study at the same time, against a real server.

The server is the Debian package's (apt-get install postgresql; `make test` installs it), started
on a temporary folder and a free port on 127.0.0.1 only, as the postgres user when run as root.
Skipped, with the reason, when PostgreSQL or the psycopg2 driver is missing.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .tiny_run import ROOT, TINY

optuna = pytest.importorskip("optuna", reason="the search extra (optuna) is not installed")
pytest.importorskip("psycopg", reason="the PostgreSQL driver is not installed: pip install 'distill[search]'")

TRIALS = 4


def pg_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found if isinstance(found, str) else (found[-1] if found else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql; make test installs it)")
    as_postgres: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="distill-pg-"))
    if os.getuid() == 0:  # the server refuses to run as root
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser: cannot start PostgreSQL as the postgres user")
        as_postgres = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()
    run = lambda *cmd: subprocess.run([*as_postgres, *cmd], check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run(initdb, "-D", str(data), "-A", "trust", "-U", "distill", "--no-sync")
        run(pg_ctl, "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60", "start",
            "-o", f"-p {port} -h 127.0.0.1 -k {folder} -c fsync=off")
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {(exc.stderr or exc.stdout).strip().splitlines()[-1:]}")
    try:
        yield f"postgresql://distill@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_postgres, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def worker(folder: Path, url: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "distill", "search", str(ROOT / "examples" / "search.yaml"), "--storage", url,
            "--study-name", "shared", "--trials", str(TRIALS), "--sampler", "random", "--out", str(folder),
            "--set", "search.pruner=false"]
    for override in TINY:
        args += ["--set", override]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


@pytest.mark.slow
def test_two_workers_share_one_postgresql_study(postgres_url, tmp_path):
    folders = [tmp_path / "a", tmp_path / "b"]
    procs = [worker(f, postgres_url) for f in folders]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, out in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out
        assert "Traceback" not in out

    study = optuna.load_study(study_name="shared", storage=postgres_url)
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == TRIALS and "RUNNING" not in states and "WAITING" not in states
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    # every trial ran once, in one worker's folder, and none was lost
    ran = [sorted(int(p.name[-4:]) for p in (f / "trials").glob("trial-*") if (p / "summary.json").is_file())
           for f in folders]
    assert sorted(ran[0] + ran[1]) == sorted(t.number for t in complete)
    assert ran[0] and ran[1], f"one worker did every trial: {ran}"  # they really ran side by side
    workers = {t.user_attrs["worker"] for t in complete}
    assert len(workers) == 2
    # both see the same best trial, the study's
    metas = [json.loads((f / "search.json").read_text()) for f in folders]
    assert metas[0]["best"]["number"] == metas[1]["best"]["number"] == study.best_trial.number
    assert metas[0]["best"]["value"] == study.best_value
    for meta, out in zip(metas, outputs, strict=True):
        assert meta["study_name"] == "shared"
        assert f"best trial {study.best_trial.number}:" in out


def test_missing_driver_is_one_line(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_driver(name, *args, **kwargs):
        if name.startswith("psycopg"):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_driver)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    from distill.cli import main

    args = ["search", str(ROOT / "examples" / "search.yaml"), "--storage", "postgresql://u@127.0.0.1:1/db",
            "--trials", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "database driver 'psycopg" in err and "is not installed" in err and "distill[search]" in err
    assert "Traceback" not in err
