"""Automation: `nox` runs lint and the fast tests; `nox -s full` runs every test (what CI runs);
the GPU session is opt-in."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "none"  # torch is large: reuse the interpreter's packages


@nox.session
def tests(session: nox.Session) -> None:
    """The fast tests: everything but those marked slow (extra pytest arguments pass through)."""
    session.run("python", "-m", "pytest", "-m", "not slow", *session.posargs)


@nox.session(default=False)
def full(session: nox.Session) -> None:
    """Every test, slow ones included: the README's and CI's `python -m pytest`."""
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
