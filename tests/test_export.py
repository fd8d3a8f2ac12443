"""`python -m server export`: the served model from a trained one, and its report."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from server import export
from server.cli import main
from server.predictor import LiteRTPredictor
from tests.test_train import small_drawn_sets


def test_export_writes_a_served_model_and_a_report(tmp_path: Path) -> None:
    output, report = tmp_path / "served.tflite", tmp_path / "export.md"
    drawn, page = small_drawn_sets(tmp_path)
    exit_code = main([
        "export", "--output", str(output), "--report", str(report), "--calibration-digits", "40",
        "--drawn-set", str(drawn), "--page-set", str(page),
    ])  # fmt: skip
    assert exit_code == 0
    probabilities = LiteRTPredictor(output)(np.zeros((3, 28, 28, 1), np.float32))
    assert probabilities.shape == (3, 10)
    text = report.read_text()
    for expected in ("| hold-out digits (PNG) |", "| drawn set |", "| page set |", "40 digits drawn", "int8"):
        assert expected in text


def test_every_export_option_has_a_flag_with_help_and_an_environment_variable(monkeypatch) -> None:
    monkeypatch.setenv("DIGITSTREAM_CALIBRATION_DIGITS", "7")
    parser = argparse.ArgumentParser()
    export.add_export_arguments(parser)
    options = export.ExportOptions(**vars(parser.parse_args([])))
    assert options.calibration_digits == 7
    help_text = " ".join(parser.format_help().split())
    for field in dataclasses.fields(export.ExportOptions):
        assert f"--{field.name.replace('_', '-')} " in help_text and f"[DIGITSTREAM_{field.name.upper()}]" in help_text
