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
    REAL_DATA is None, reason="shared/data/real not found (put shared/ beside the checkout or set FOCUSKIT_REAL_DATA)"
)
