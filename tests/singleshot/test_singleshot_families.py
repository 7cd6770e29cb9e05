"""Single-shot training data drawn from sample families."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import one_line_error, run_cli

from focuskit import ConfigError
from focuskit.optics import get_preset
from focuskit.singleshot import draw_fields, simulate_examples


def test_fields_draw_their_family_and_one_name_keeps_the_old_stream() -> None:
    one = draw_fields(6, np.random.default_rng(3))
    again = draw_fields(6, np.random.default_rng(3), sample=["cells"])
    assert [f.seed for f in one] == [f.seed for f in again]
    mixed = draw_fields(40, np.random.default_rng(3), sample=["cells-sparse", "rods"])
    names = {f.sample for f in mixed}
    assert names == {"cells-sparse", "rods"}


def test_examples_from_families_record_them_and_refuse_fluorescence() -> None:
    ex = simulate_examples(
        2,
        size=128,
        tile=128,
        z_um=[-4.0, 0.0, 4.0],
        sample=["cells-confluent"],
        seed=1,
        incoherent_every=0,
    )
    assert len(ex) == 6 and {f["sample"] for f in ex.fields} == {"cells-confluent"}
    assert np.isfinite(ex.features).all()
    with pytest.raises(ConfigError, match="'nuclei' is a fluorescence family"):
        simulate_examples(1, size=128, tile=128, z_um=[0.0], sample=["nuclei"])


def test_cli_sample_needs_simulate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "data").mkdir()  # (a model folder is never written inside its --data)
    code, _, err = run_cli(
        "singleshot", "train", "-o", tmp_path / "m", "--data", tmp_path / "data", "--sample", "rods"
    )
    one_line_error(code, err, "--sample", "--simulate")
    assert not (tmp_path / "m").exists()


def test_randomized_fields_vary_phase_absorption_and_the_microscope() -> None:
    from focuskit.singleshot import Randomization, draw_fields, restrength

    plain = draw_fields(5, np.random.default_rng(3), sample=["cells-sparse", "rods"])
    rand = draw_fields(
        5, np.random.default_rng(3), sample=["cells-sparse", "rods"], randomization=Randomization()
    )
    # The first field's own draws are the same; the randomized one draws more after them.
    assert (plain[0].seed, plain[0].photons) == (rand[0].seed, rand[0].photons)
    assert all(f.phase_rad is None for f in plain)
    assert all(0.2 <= f.phase_rad <= 6 and 0 <= f.absorption <= 0.1 for f in rand)
    assert all(abs(f.led_deg) <= 1 and abs(f.na_scale - 1) <= 0.02 for f in rand)
    assert len({round(f.phase_rad, 6) for f in rand}) == 5
    # restrength: the peak phase is what was asked; absorption sits where the phase is.
    rng = np.random.default_rng(0)
    phi = 0.3 * rng.random((64, 64))
    t = restrength(np.exp(1j * phi).astype(np.complex64), 2.0, 0.1)
    new = np.angle(t)
    assert np.percentile(np.abs(new - np.median(new)), 99.5) == pytest.approx(2.0, rel=0.02)
    assert (
        np.all(np.abs(t) <= 1) and np.corrcoef(np.abs(new).ravel(), np.abs(t).ravel())[0, 1] < -0.9
    )
    with pytest.raises(ConfigError, match="phase_rad"):
        Randomization(phase_rad=(0.0, 1.0))


def test_a_randomized_field_keeps_the_nominal_features() -> None:
    from focuskit.singleshot import Randomization, region_for, simulate_examples

    ex = simulate_examples(
        1,
        size=128,
        tile=128,
        z_um=[-10.0, 10.0],
        sample="cells-sparse",
        incoherent_every=0,
        randomization=Randomization(),
        seed=4,
    )
    assert ex.features.shape == (2, region_for(get_preset("fcfnn-20x-led").optics, 128).n_features)
    assert 0.2 <= ex.fields[0]["phase_rad"] <= 6
