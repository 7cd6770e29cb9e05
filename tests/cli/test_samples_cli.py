"""`focuskit samples` and `simulate --sample FAMILY --sample-param`."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import one_line_error, run_cli

from focuskit import read_stack


def test_samples_json_lists_every_family_with_parameters_and_statistics() -> None:
    code, out, _ = run_cli("samples", "--json")
    assert code == 0
    rows = json.loads(out)
    names = {r["name"] for r in rows}
    assert {"point-emitters", "cells-confluent", "stained-tissue"} <= names
    for r in rows:
        assert set(r) >= {"name", "modality", "description", "parameters", "split", "statistics"}
        assert set(r["modality"]) <= {"fluorescence", "phase", "absorption"}
        assert r["split"] in ("train", "unseen")
    pe = next(r for r in rows if r["name"] == "point-emitters")
    assert pe["parameters"]["diameter_um"]["range"] == [0.05, 2.0]
    assert "coverage" in pe["statistics"]
    code, out, _ = run_cli("samples", "--json", "--modality", "phase")
    assert all("phase" in r["modality"] for r in json.loads(out))


def test_samples_table_and_montage(tmp_path: Path) -> None:
    png = tmp_path / "zoo.png"
    code, out, _ = run_cli("samples", "--modality", "absorption", "--montage", png, "--size", 32)
    assert code == 0 and "stained-tissue" in out and png.stat().st_size > 0
    code, _, err = run_cli("samples", "--montage", png)
    one_line_error(code, err, "already exists")


def test_simulate_a_family_with_fixed_parameters(tmp_path: Path) -> None:
    out = tmp_path / "pe.ome.tif"
    code, _, err = run_cli(
        "simulate",
        "--preset",
        "deepr-40x-fluor",
        "--sample",
        "point-emitters",
        "--sample-param",
        "diameter_um=0.2",
        "--sample-param",
        "saturate=false",
        "--size",
        32,
        "--z-range",
        -1,
        1,
        "--z-step",
        1,
        "-o",
        out,
    )
    assert code == 0, err
    stack = read_stack(out)
    sample = stack.metadata["sample"]
    assert sample["family"] == "point-emitters" and sample["diameter_um"] == 0.2
    assert sample["saturate"] is False


def test_simulate_bad_sample_parameter_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "x.ome.tif"
    code, _, err = run_cli(
        "simulate",
        "--preset",
        "deepr-40x-fluor",
        "--sample",
        "nuclei",
        "--sample-param",
        "coverage=3",
        "--size",
        32,
        "-o",
        out,
    )
    one_line_error(code, err, "nuclei", "coverage", "[0.05, 0.7]")
    code, _, err = run_cli(
        "simulate", "--sample", "nuclei", "--sample-param", "coverage", "-o", out
    )
    one_line_error(code, err, "NAME=VALUE")
    assert not out.exists()


def test_autofocus_on_a_simulated_scope_of_a_family() -> None:
    code, out, err = run_cli(
        "autofocus",
        "--scope",
        "sim:deepr-20x-fluor",
        "--method",
        "scan",
        "--sample",
        "nuclei",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["images"] > 0
    code, _, err = run_cli(
        "autofocus",
        "--scope",
        "sim:deepr-20x-fluor",
        "--method",
        "scan",
        "--sample",
        "cells-sparse",
    )
    one_line_error(code, err, "fluorescence family")
