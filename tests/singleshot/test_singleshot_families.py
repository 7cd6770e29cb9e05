"""Single-shot training data drawn from sample families."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import one_line_error, run_cli

from focuskit import ConfigError
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
