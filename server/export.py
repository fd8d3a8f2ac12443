"""`python -m server export`: the trained Keras model as the file the server runs, and a report
of what that costs in accuracy.

The served model is a LiteRT file with int8 weights and activations (float32 in and out),
which XNNPACK runs in a third of float32's CPU time. It stops at the logits: the server takes
the softmax in float32 (server/predictor.py), where an int8 softmax would give probabilities in
steps of 1/256 that do not add up to 1. Quantising needs each layer's range of activations,
measured here on digits drawn by the training generator and preprocessed as the server would
(never on the test sets). The report scores the Keras model and the exported one on the same
test sets, through the server's preprocessing, so any loss shows.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import keras
import numpy as np

from server import data, drawnset, handwriting
from server.config import add_options, from_args, option, positive_int
from server.model import DEFAULT_MODEL_PATH, BatchPredictor, load_model
from server.predictor import DEFAULT_SERVED_MODEL_PATH, LiteRTPredictor

DOCS_DIR = Path(__file__).resolve().parents[1] / "docs"
Predict = Callable[[np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """The flags of `export`, each with its DIGITSTREAM_* variable (see server/config.py)."""

    model: Path = option(DEFAULT_MODEL_PATH, "the trained Keras model", metavar="FILE")
    output: Path = option(DEFAULT_SERVED_MODEL_PATH, "where to write the served LiteRT model", metavar="FILE")
    report: Path = option(DOCS_DIR / "export.md", "where to write the markdown report", metavar="FILE")
    calibration_digits: int = option(1000, "drawn digits whose activations set the int8 ranges", parse=positive_int)
    calibration_seed: int = option(20261203, "seed of the calibration drawings")
    holdout: Path = option(data.HOLDOUT_PATH, "the hold-out digits the report is computed on", metavar="FILE")
    drawn_set: Path = option(drawnset.DRAWN_SET_PATH, "pen drawings the report is computed on", metavar="FILE")
    page_set: Path = option(drawnset.PAGE_SET_PATH, "snapshots the page sent, for the report", metavar="FILE")


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, ExportOptions)


def run_export(parsed: argparse.Namespace) -> int:
    export(from_args(ExportOptions, parsed))
    return 0


def export(options: ExportOptions) -> None:
    """Write the served model and its report."""
    model = load_model(options.model)
    calibration = calibration_images(options.calibration_digits, options.calibration_seed)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_bytes(quantised(logits_of(model), calibration))
    write_report(options, BatchPredictor(model), LiteRTPredictor(options.output))
    print(f"Saved {options.output} and {options.report}.")


def calibration_images(count: int, seed: int) -> np.ndarray:
    digits, _ = handwriting.synthesize(count, seed, handwriting.Split.TRAIN)
    return digits[..., None].astype(np.float32) / 255


def logits_of(model: keras.Model) -> keras.Model:
    """The trained model without its final softmax."""
    classifier = model.get_layer("digit")
    logits = keras.layers.Dense(classifier.units, name="logits")
    outputs = logits(classifier.input)
    logits.set_weights(classifier.get_weights())
    return keras.Model(model.input, outputs)


def quantised(model: keras.Model, calibration: np.ndarray) -> bytes:
    """The model as LiteRT flatbuffer bytes: int8 inside, float32 in and out."""
    import tensorflow as tf

    def batches() -> Iterator[list[np.ndarray]]:
        for start in range(0, len(calibration), 50):
            yield [calibration[start : start + 50]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = batches
    with warnings.catch_warnings():
        # The input stays float32, so there are no input statistics to give; TF warns anyway.
        warnings.filterwarnings("ignore", "Statistics for quantized inputs were expected")
        return converter.convert()


def write_report(options: ExportOptions, trained: Predict, served: Predict) -> None:
    holdout_x, holdout_y = data.load_holdout(options.holdout)
    holdout = drawnset.model_inputs(drawnset.png_snapshots(holdout_x))
    digits = drawnset.load(options.drawn_set)
    drawn = drawnset.model_inputs(drawnset.snapshots(digits))
    drawn_y = np.array([d.variant.digit for d in digits])
    frames, page_variants = drawnset.load_frames(options.page_set)
    page = drawnset.model_inputs(frames)
    page_y = np.array([v.digit for v in page_variants])
    sets = [("hold-out digits (PNG)", holdout, holdout_y), ("drawn set", drawn, drawn_y), ("page set", page, page_y)]
    rows = []
    for name, images, labels in sets:
        trained_digits, served_digits = batched(trained, images).argmax(axis=1), batched(served, images).argmax(axis=1)
        rows.append(
            f"| {name} | {drawnset.score(labels, trained_digits)} | {drawnset.score(labels, served_digits)} | "
            f"{(trained_digits == served_digits).mean():.2%} |"
        )
    lines = [
        "# Export report",
        "",
        (
            f"Written by `python -m server export` on {time.strftime('%Y-%m-%d')}: `{options.model.name}` "
            f"({options.model.stat().st_size / 1e6:.2f} MB) as `{options.output.name}` "
            f"({options.output.stat().st_size / 1e6:.2f} MB), int8 weights and activations, float32 in and out. "
            f"Ranges from {options.calibration_digits:,} digits drawn by `server.handwriting` "
            f"(seed {options.calibration_seed}), none of them in a test set."
        ),
        "",
        "Accuracy through the server's preprocessing:",
        "",
        "| set | Keras model | served model | same answer |",
        "|---|---:|---:|---:|",
        *rows,
        "",
    ]
    options.report.parent.mkdir(parents=True, exist_ok=True)
    options.report.write_text("\n".join(lines))


def batched(predict: Predict, images: np.ndarray, size: int = 32) -> np.ndarray:
    return np.concatenate([predict(images[start : start + size]) for start in range(0, len(images), size)])
