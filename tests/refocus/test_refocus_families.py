"""Refocusing training fields drawn from sample families."""

from __future__ import annotations

import pytest

from focuskit import ConfigError
from focuskit.refocus import simulate_refocus_tiles


def test_fluorescence_families_train_refocusing_and_phase_ones_are_refused() -> None:
    tiles = simulate_refocus_tiles(
        "deepr-40x-fluor",
        2,
        samples=["point-emitters", "filaments"],
        size=64,
        tile=64,
        z_range_um=0.4,
        seed=3,
    )
    assert [r["sample"] for r in tiles.info["fields"]] == ["point-emitters", "filaments"]
    assert all(p.min() >= 0 for p in tiles.planes)
    with pytest.raises(ConfigError, match="'cells-sparse' is a transmittance family"):
        simulate_refocus_tiles("deepr-40x-fluor", 1, samples=["cells-sparse"], size=64, tile=64)
    with pytest.raises(ConfigError, match="list of sample names"):
        simulate_refocus_tiles("deepr-40x-fluor", 1, samples="beads")  # type: ignore[arg-type]
