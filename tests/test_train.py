"""Training: a one-epoch smoke run from the small fixture, the batches, the flags."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest

from server import drawnset, pagesnapshot, train
from server.cli import main
from server.model import InceptionBlock
from server.predictor import LiteRTPredictor

SMALL_NPZ = Path(__file__).parent / "data" / "train_small.npz"


def small_drawn_sets(folder: Path) -> tuple[Path, Path]:
    """One drawing of every variant, and the snapshots of the first three as a page set."""
    digits = drawnset.draw_set(1, seed=0)
    drawnset.save(folder / "drawn.npz", digits)
    frames = [pagesnapshot.snapshot_png(d.strokes, d.pen_width) for d in digits[:3]]
    drawnset.save_frames(folder / "page.npz", frames, [d.variant for d in digits[:3]])
    return folder / "drawn.npz", folder / "page.npz"


def test_one_epoch_smoke_run_writes_a_loadable_model_and_a_report(tmp_path: Path) -> None:
    output, report, png = tmp_path / "model.keras", tmp_path / "report.md", tmp_path / "c.png"
    drawn, page = small_drawn_sets(tmp_path)
    exit_code = main([
        "train", "--data-source", "npz", "--mnist-npz", str(SMALL_NPZ), "--drawn-digits", "40",
        "--drawn-set", str(drawn), "--page-set", str(page), "--epochs", "1",
        "--batch-size", "100", "--output", str(output), "--report", str(report),
        "--confusion-png", str(png), "--verbose", "0",
    ])  # fmt: skip
    assert exit_code == 0
    model = keras.models.load_model(output)
    assert any(isinstance(layer, InceptionBlock) for layer in model.layers)
    text = report.read_text()
    for expected in ("Hold-out accuracy", "Per-digit accuracy", "MFLOPs", "Parameters", "c.png",
                     "Drawn set:", "page set:", "| 1 | flag | trained |", "| 1 | flag and base | held out |",
                     "340, of which 40 drawn"):  # fmt: skip
        assert expected in text
    assert png.read_bytes().startswith(b"\x89PNG")
    served = LiteRTPredictor(output.with_suffix(".tflite"))
    assert served(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)
    assert "served model" in (tmp_path / "export.md").read_text()


def test_unavailable_data_is_a_clear_failure_not_a_traceback(tmp_path, monkeypatch, capsys) -> None:
    exit_code = main(["train", "--data-source", "npz", "--mnist-npz", str(tmp_path / "none.npz")])
    assert exit_code == 1
    assert "no MNIST source worked" in capsys.readouterr().out


def test_batches_differ_between_epochs_but_repeat_across_runs() -> None:
    with np.load(SMALL_NPZ) as small:
        x, y = small["x_train"][:32], small["y_train"][:32]
    first, again = (train.AugmentedDigits(x, y, batch_size=8, seed=5) for _ in range(2))
    np.testing.assert_array_equal(first[0][0], again[0][0])
    epoch_one = first[0][0]
    first.on_epoch_end()
    assert not np.array_equal(first[0][0], epoch_one)


@pytest.mark.slow  # Builds and traces the training step twice: minutes on 2 busy cores.
def test_training_is_deterministic_given_the_seed() -> None:
    options = train.TrainOptions(epochs=1, batch_size=32, verbose=0)
    with np.load(SMALL_NPZ) as small:
        x, y = small["x_train"][:64], small["y_train"][:64]
    no_validation = (x[:0], y[:0])
    first, again = (train.train_model(x, y, no_validation, options) for _ in range(2))
    for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_every_option_has_a_flag_with_help_and_an_environment_variable(monkeypatch) -> None:
    monkeypatch.setenv("DIGITSTREAM_EPOCHS", "3")
    monkeypatch.setenv("DIGITSTREAM_DRAWN_DIGITS", "7")
    parser = argparse.ArgumentParser()
    train.add_train_arguments(parser)
    options = train.TrainOptions(**vars(parser.parse_args([])))
    assert options.epochs == 3 and options.drawn_digits == 7 and options.data_source == "auto"
    help_text = " ".join(parser.format_help().split())
    for field in dataclasses.fields(train.TrainOptions):
        assert f"--{field.name.replace('_', '-')} " in help_text and f"[DIGITSTREAM_{field.name.upper()}]" in help_text
    with pytest.raises(SystemExit):
        parser.parse_args(["--data-source", "floppy"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--verbose", "3"])
