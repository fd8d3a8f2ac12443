"""Images per second of the committed model: `model.predict` against the fast paths, and
batches padded to the server's buckets against batches of any size.

    python bench/model.py [--seconds 2] [--model PATH]
    python bench/model.py --batch-32-only     # one figure: BatchPredictor at batch 32

Prints a markdown table. Not a test: the numbers depend on the machine and on
whatever else it is running, so compare them only within one run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Run from a checkout.

from server.batching import bucket_sizes
from server.model import DEFAULT_MODEL_PATH, BatchPredictor, load_model

BATCH_SIZES = (1, 8, 32, 64)


def images_per_second(
    run: Callable[[np.ndarray], object], images: np.ndarray, seconds: float
) -> float:
    """Call `run` on `images` for about `seconds`, after two warm-up calls."""
    for _ in range(2):
        run(images)
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds or calls < 5:
        run(images)
        calls += 1
    return calls * len(images) / elapsed


def padded_against_unpadded(predict: BatchPredictor, seconds: float) -> tuple[float, float]:
    """Real images/s over one stream of batch sizes 1–32 (uniform, as a queue under varying load
    takes them): (padded to the next bucket 1, 2, 4, …, 32 as the server does, run as they come)."""
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 33, 64).tolist()
    buckets = bucket_sizes(32)
    inputs = {size: rng.random((size, 28, 28, 1), dtype=np.float32) for size in range(1, 33)}
    for size in range(1, 33):  # every shape traced and warm before timing
        predict(inputs[size])

    def rate(pad: bool) -> float:
        images, started = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds or images < 1000:
            for size in sizes:
                predict(inputs[next(b for b in buckets if b >= size)] if pad else inputs[size])
                images += size
        return images / elapsed

    return rate(True), rate(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="model to load")
    parser.add_argument("--batch-32-only", action="store_true", help="print BatchPredictor's images/s at batch 32")
    args = parser.parse_args()

    model = load_model(args.model)
    if args.batch_32_only:
        images = np.random.default_rng(0).random((32, 28, 28, 1), dtype=np.float32)
        print(f"{images_per_second(BatchPredictor(model), images, args.seconds):.1f}")
        return
    contenders = {
        "`model.predict`": lambda images: model.predict(images, verbose=0),
        "`predict_on_batch`": model.predict_on_batch,
        "`BatchPredictor` (tf.function)": BatchPredictor(model),
    }
    rng = np.random.default_rng(0)
    print(f"{args.model.name} on {os.cpu_count()} CPU cores, images/s (higher is better)\n")
    print("| batch | " + " | ".join(contenders) + " | fast path vs predict |")
    print("|---:" * (len(contenders) + 2) + "|")
    for batch_size in BATCH_SIZES:
        images = rng.random((batch_size, 28, 28, 1), dtype=np.float32)
        rates = [images_per_second(run, images, args.seconds) for run in contenders.values()]
        cells = " | ".join(f"{rate:,.0f}" for rate in rates)
        print(f"| {batch_size} | {cells} | {rates[-1] / rates[0]:.1f}× |")
    padded, unpadded = padded_against_unpadded(contenders["`BatchPredictor` (tf.function)"], args.seconds)
    print("\nBatch sizes 1–32 as they come, `BatchPredictor`, real images/s (higher is better)\n")
    print("| padded to buckets 1, 2, 4, …, 32 | unpadded (any size) | unpadded / padded |")
    print("|---:|---:|---:|")
    print(f"| {padded:,.0f} | {unpadded:,.0f} | {unpadded / padded:.2f}× |")


if __name__ == "__main__":
    main()
