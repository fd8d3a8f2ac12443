"""Images per second of the committed model: `model.predict` against the fast paths.

    python bench/model.py [--seconds 2] [--model PATH]

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

from server.model import DEFAULT_MODEL_PATH, BatchPredictor, load_model  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_PATH, help="model to load")
    args = parser.parse_args()

    model = load_model(args.model)
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


if __name__ == "__main__":
    main()
