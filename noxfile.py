"""Automation: `nox -s tests`, `nox -s lint`; GPU and slow sessions are opt-in."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "none"  # torch is large: reuse the interpreter's packages


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (extra pytest arguments pass through)."""
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.run("ruff", "check", "mpbench", "tests", "noxfile.py")
    session.run("ruff", "format", "--check", "mpbench", "tests", "noxfile.py")


@nox.session(default=False)
def gpu(session: nox.Session) -> None:
    """GPU checks: the tests marked gpu plus the layer and step benchmarks on CUDA."""
    session.run("python", "-m", "pytest", "-m", "gpu", *session.posargs)
    session.run("mpbench", "bench", "layer", "--device", "cuda")
    session.run("mpbench", "bench", "layer", "--device", "cuda", "--compile")
