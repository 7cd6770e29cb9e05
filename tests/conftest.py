"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

import pytest


def _find_real_data() -> Path | None:
    """shared/data/real beside the checkout (CI), via $FOCUSKIT_REAL_DATA, or None."""
    from focuskit import FocuskitError
    from focuskit.scopes import real_data_dir

    try:
        return real_data_dir()
    except FocuskitError:
        return None


REAL_DATA = _find_real_data()

needs_real_data = pytest.mark.skipif(
    REAL_DATA is None,
    reason="shared/data/real not found (put shared/ beside the checkout or set FOCUSKIT_REAL_DATA)",
)


def run_cli(*args: object) -> tuple[int, str, str]:
    """Run ``focuskit ARGS…`` in-process: (exit code, stdout, stderr)."""
    from typer.testing import CliRunner

    from focuskit.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def one_line_error(code: int, err: str, *needles: str) -> None:
    """Bad input: exit code 2 and one ``error:`` line naming the problem (no traceback)."""
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    text = " ".join(lines)
    assert text.startswith("error:"), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in text, (needle, err)
