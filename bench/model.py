"""Images per second of the committed model: `model.predict` against the fast paths, and
batches padded to power-of-two sizes against batches of any size.

    python bench/model.py [--seconds 2] [--model PATH]
    python bench/model.py --batch-32-only     # one figure: BatchPredictor at batch 32

It also measures the CPU time per image (the whole process: TensorFlow's own threads
included) with TensorFlow's default thread pools and with one intra-op and one inter-op
thread, each in a process of its own (the pools are fixed when TensorFlow starts).

Prints a markdown table. Not a test: the numbers depend on the machine and on
whatever else it is running, so compare them only within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Run from a checkout.

from server.model import DEFAULT_MODEL_PATH, BatchPredictor, load_model

BATCH_SIZES = (1, 8, 32, 64)
CPU_BATCH_SIZES = (1, 8, 16, 32)


def images_per_second(run: Callable[[np.ndarray], object], images: np.ndarray, seconds: float) -> float:
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
    takes them): (padded to the next power of two up to 32, run as they come): the measurement behind
    the queue sending batches unpadded."""
    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 33, 64).tolist()
    buckets = (1, 2, 4, 8, 16, 32)
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


def cpu_per_image(predict: BatchPredictor, seconds: float) -> dict[int, tuple[float, float]]:
    """{batch: (CPU ms per image, images/s)} for BatchPredictor."""
    rng, results = np.random.default_rng(0), {}
    for batch_size in CPU_BATCH_SIZES:
        images = rng.random((batch_size, 28, 28, 1), dtype=np.float32)
        images_per_second(predict, images, 0.2)
        cpu, wall = time.process_time(), time.perf_counter()
        rate = images_per_second(predict, images, seconds)
        count = rate * (time.perf_counter() - wall)
        results[batch_size] = (1000 * (time.process_time() - cpu) / count, rate)
    return results


def threads_table(seconds: float) -> str:
    runs = {}
    for threads in (0, 1):
        output = subprocess.run(
            [sys.executable, __file__, "--cpu-per-image", "--tf-threads", str(threads), "--seconds", str(seconds)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        runs[threads] = {int(batch): tuple(values) for batch, values in json.loads(output).items()}
    lines = [
        (
            "| batch | CPU ms / image, default pools | CPU ms / image, 1 + 1 threads | images/s, default | "
            "images/s, 1 + 1 |"
        ),
        "|---:|---:|---:|---:|---:|",
    ]
    for batch_size in CPU_BATCH_SIZES:
        (cpu_default, rate_default), (cpu_one, rate_one) = runs[0][batch_size], runs[1][batch_size]
        lines.append(f"| {batch_size} | {cpu_default:.2f} | {cpu_one:.2f} | {rate_default:,.0f} | {rate_one:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="model to load")
    parser.add_argument("--batch-32-only", action="store_true", help="print BatchPredictor's images/s at batch 32")
    parser.add_argument("--cpu-per-image", action="store_true", help="print CPU ms per image by batch, as JSON")
    parser.add_argument("--tf-threads", type=int, default=0, help="intra- and inter-op threads (0: TF's default)")
    args = parser.parse_args()

    if args.tf_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.tf_threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.tf_threads)
    model = load_model(args.model)
    if args.cpu_per_image:
        print(json.dumps(cpu_per_image(BatchPredictor(model), args.seconds)))
        return
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
    print("\nCPU time per image, whole process, by TensorFlow's thread pools (lower is better)\n")
    print(threads_table(args.seconds))


if __name__ == "__main__":
    main()
