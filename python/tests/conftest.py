"""Shared fixtures: the repository's paths and the `revode` CLI binary the
Python results are compared with."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"


def _cli_path() -> Path:
    """$REVODE_CLI, else the release binary of the Cargo target directory,
    brought up to date with `cargo build --release -p revode-cli` (a no-op
    when it is current) so that it is never older than the sources."""
    if os.environ.get("REVODE_CLI"):
        return Path(os.environ["REVODE_CLI"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = target / "release" / "revode"
    cargo = shutil.which("cargo")
    if cargo is not None:
        subprocess.run([cargo, "build", "--release", "-q", "-p", "revode-cli"], cwd=REPO, check=True)
    elif not binary.exists():
        pytest.fail(f"{binary} is missing and cargo is not on PATH; set REVODE_CLI")
    return binary


@pytest.fixture(scope="session")
def cli() -> Path:
    return _cli_path()


class CliRun:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def json(self) -> Dict[str, Any]:
        assert self.code == 0, self.stderr
        return json.loads(self.stdout)

    def message(self) -> str:
        """The one-line error without its `error: ` prefix."""
        assert self.code != 0, self.stdout
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), self.stderr
        return lines[0][len("error: "):]


@pytest.fixture(scope="session")
def run_cli(cli: Path):
    def run(args: List[str]) -> CliRun:
        env = dict(os.environ, RUST_LOG="off")
        proc = subprocess.run(
            [str(cli), *map(str, args)], capture_output=True, text=True, env=env, timeout=300
        )
        return CliRun(proc)

    return run


@pytest.fixture
def seed_path() -> Path:
    return FIXTURES / "hh_seed.json"


def short_problem(**replace: Any) -> Dict[str, Any]:
    """A valid short HH problem (5 ms) with keys replaced or added: the CLI
    tests' `short_problem_with`."""
    p: Dict[str, Any] = {
        "model": {"name": "hh"},
        "tspan": [0.0, 5.0],
        "solver": {"method": "euler", "dt": 0.01},
        "loss": {"kind": "final"},
    }
    p.update(replace)
    return p
