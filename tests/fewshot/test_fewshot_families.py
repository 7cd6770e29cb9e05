"""Blur-score training content drawn from sample families."""

from __future__ import annotations

import numpy as np
import pytest

from focuskit import ConfigError
from focuskit.fewshot import BlurDataConfig, simulate_blur_patches
from focuskit.fewshot._data import content_names, family_intensity


def test_families_become_non_negative_intensity_objects() -> None:
    for name in ("nuclei", "cells-sparse", "stained-tissue"):
        obj = family_intensity(name, 96, 0.3, seed=2)
        assert obj.shape == (96, 96) and float(obj.min()) >= 0 and float(obj.std()) > 0
    # a pure phase object is used as stain density (its |t|² would be flat)
    phase = family_intensity("cells-confluent", 96, 0.3, seed=2)
    assert float(phase.max() - phase.min()) > 0.05


def test_patches_from_families_record_the_content() -> None:
    config = BlurDataConfig(
        n_fields=2, waves_per_field=2, field_size=256, contents=("nuclei", "rods"), seed=1
    )
    patches = simulate_blur_patches(config)
    names = {content_names()[i] for i in np.unique(patches.content)}
    assert names == {"nuclei", "rods"}
    with pytest.raises(ConfigError, match="unknown contents"):
        BlurDataConfig(contents=("nucleii",))
