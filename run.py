#!/usr/bin/env python3
"""Create the project's environment if needed, then run the demo or the tests.

    python3 run.py demo     # simulate a force, audit it and write the report
    python3 run.py test     # lint and run the whole test suite
    python3 run.py crimeaudit ARGS...   # any crimeaudit command in the environment

Needs only Python >= 3.11 and pip. The environment lives in .venv and is reinstalled when
pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("CRIMEAUDIT_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be run by an older python3
        sys.exit("crimeaudit needs Python 3.11 or newer")
    stamp = VENV / ".crimeaudit-installed"
    # CRIMEAUDIT_EXTRAS=spark also installs PySpark (CI does, to test the Spark engine).
    extras = ",".join(["dev", *filter(None, os.environ.get("CRIMEAUDIT_EXTRAS", "").split(","))])
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()
                          + extras.encode()).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        return
    if not (BIN / "python").exists():
        print(f"Creating the environment in {VENV} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing crimeaudit and its dependencies (first run takes a minute or two) ...",
          flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-e", f"{ROOT}[{extras}]"], check=True)
    stamp.write_text(want)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    ensure_env()
    verb, rest = argv[0], argv[1:]
    if verb == "demo":
        cmd = [str(BIN / "crimeaudit"), "demo", *rest]
    elif verb == "test":
        paths = [d for d in ("src", "tests", "benchmarks", "run.py") if (ROOT / d).exists()]
        lint = subprocess.run([str(BIN / "ruff"), "check", *paths], cwd=ROOT)
        if lint.returncode:
            return lint.returncode
        cmd = [str(BIN / "python"), "-m", "pytest", *rest]
    elif verb == "crimeaudit":
        cmd = [str(BIN / "crimeaudit"), *rest]
    else:
        print(f"unknown command {verb!r}: use demo, test or crimeaudit", file=sys.stderr)
        return 2
    return subprocess.run(cmd, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
