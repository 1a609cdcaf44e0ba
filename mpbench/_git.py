"""The git commit of the mpbench checkout, found once for MLflow tags and Optuna attributes."""

from __future__ import annotations

import subprocess
from pathlib import Path

# the checkout that holds this package (editable installs); a wheel install has no .git here
_CHECKOUT = Path(__file__).resolve().parents[1]


def git_commit(*, short: bool = False) -> str | None:
    """HEAD of the checkout mpbench runs from, or None outside one (or without git)."""
    if not (_CHECKOUT / ".git").exists():
        return None
    args = ["git", "-C", str(_CHECKOUT), "rev-parse", *(["--short"] if short else []), "HEAD"]
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
