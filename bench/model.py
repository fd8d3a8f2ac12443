"""Images per second and CPU time per image of the model alone: the served LiteRT export
(int8, one thread, as the server runs it) against the same model as float32 LiteRT, the
Keras model through a tf.function (TensorFlow's default thread pools) and `model.predict`;
and batches padded to power-of-two sizes against batches of any size.

    python -m bench.model [--seconds 2]
    python -m bench.model --batch-32     # JSON: images/s at batch 32, served and tf.function

Prints markdown tables. Not a test: the numbers depend on the machine and on whatever else
it is running, so compare them only within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

from server.export import logits_of
from server.model import BatchPredictor, load_model
from server.predictor import DEFAULT_SERVED_MODEL_PATH, LiteRTPredictor

BATCH_SIZES = (1, 8, 32)
Run = Callable[[np.ndarray], object]


def images_per_second(run: Run, images: np.ndarray, seconds: float) -> tuple[float, float]:
    """(images/s, CPU ms per image of the whole process) calling `run` on `images` for about
    `seconds`, after two warm-up calls."""
    for _ in range(2):
        run(images)
    calls, started, cpu = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - started) < seconds or calls < 5:
        run(images)
        calls += 1
    count = calls * len(images)
    return count / elapsed, 1000 * (time.process_time() - cpu) / count


def padded_against_unpadded(predict: Run, seconds: float) -> tuple[float, float]:
    """Real images/s over one stream of batch sizes 1–32 (uniform, as a queue under varying load
    takes them), padded to the next power of two up to 32, and as they come: the measurement
    behind the queue sending batches unpadded."""
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 33, 64).tolist()
    buckets = (1, 2, 4, 8, 16, 32)
    inputs = {size: rng.random((size, 28, 28, 1), dtype=np.float32) for size in range(1, 33)}
    for size in range(1, 33):  # every size warm before timing
        predict(inputs[size])

    def rate(pad: bool) -> float:
        images, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds or images < 1000:
            for size in sizes:
                predict(inputs[next(b for b in buckets if b >= size)] if pad else inputs[size])
                images += size
        return images / elapsed

    return rate(True), rate(False)


def float32_export(model: keras.Model, folder: Path) -> LiteRTPredictor:
    """The same model as a float32 LiteRT file, to show what int8 buys on the same runtime."""
    import tensorflow as tf

    path = folder / "float32.tflite"
    # The converter prints its SavedModel's signature; stdout is the benchmark's table.
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(logits_of(model)).convert())
    return LiteRTPredictor(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--batch-32", action="store_true", help="print images/s at batch 32 as JSON")
    args = parser.parse_args()
    model = load_model()
    served = LiteRTPredictor(DEFAULT_SERVED_MODEL_PATH)
    batch_32 = np.random.default_rng(0).random((32, 28, 28, 1), dtype=np.float32)
    if args.batch_32:
        rates: dict[str, Run] = {"served": served, "tf_function": BatchPredictor(model)}
        print(json.dumps({name: images_per_second(run, batch_32, args.seconds)[0] for name, run in rates.items()}))
        return
    with tempfile.TemporaryDirectory() as folder:
        contenders: dict[str, Run] = {
            "served: LiteRT int8, 1 thread": served,
            "LiteRT float32, 1 thread": float32_export(model, Path(folder)),
            "Keras, tf.function": BatchPredictor(model),
            "Keras, `model.predict`": lambda images: model.predict(images, verbose=0),
        }
        rng = np.random.default_rng(0)
        print(f"On {os.cpu_count()} CPU cores: images/s (CPU ms per image, whole process)\n")
        print("| batch | " + " | ".join(contenders) + " |")
        print("|---:" * (len(contenders) + 1) + "|")
        for batch_size in BATCH_SIZES:
            images = rng.random((batch_size, 28, 28, 1), dtype=np.float32)
            cells = [images_per_second(run, images, args.seconds) for run in contenders.values()]
            print(f"| {batch_size} | " + " | ".join(f"{rate:,.0f} ({cpu:.3f})" for rate, cpu in cells) + " |")
    padded, unpadded = padded_against_unpadded(served, args.seconds)
    print("\nBatch sizes 1–32 as they come, the served model, real images/s (higher is better)\n")
    print("| padded to buckets 1, 2, 4, …, 32 | unpadded (any size) | unpadded / padded |")
    print("|---:|---:|---:|")
    print(f"| {padded:,.0f} | {unpadded:,.0f} | {unpadded / padded:.2f}× |")


if __name__ == "__main__":
    main()
