"""The model as the server runs it: the LiteRT file `python -m server export` writes, on
LiteRT's XNNPACK kernels, with no TensorFlow in the serving process.

TensorFlow spends milliseconds a call on its own bookkeeping whatever the batch; an XNNPACK
call costs the same per image at batch 1 as at 32, and int8 kernels a third of float32's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

DEFAULT_SERVED_MODEL_PATH: Path = Path(__file__).resolve().parent / "assets" / "model.tflite"
IMAGE_SHAPE = (28, 28, 1)


class LiteRTPredictor:
    """Probabilities for a float32 (n, 28, 28, 1) batch of any size: the file's logits, and
    their softmax in float32 (server/export.py says why).

    An interpreter's tensors are sized for one batch size, and resizing them re-plans the
    kernels, so each batch size gets its own interpreter the first time it is seen. Not
    thread-safe: one thread (the batching queue's worker) calls it.
    """

    def __init__(self, path: Path = DEFAULT_SERVED_MODEL_PATH, threads: int = 1) -> None:
        self._model = Path(path).read_bytes()
        self._threads = threads
        self._interpreters: dict[int, _Interpreter] = {}

    def __call__(self, images: np.ndarray) -> np.ndarray:
        size = len(images)
        interpreter = self._interpreters.get(size)
        if interpreter is None:
            interpreter = self._interpreters[size] = _Interpreter(self._model, size, self._threads)
        logits = interpreter(np.ascontiguousarray(images, dtype=np.float32))
        exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
        return exponentials / exponentials.sum(axis=1, keepdims=True)


class _Interpreter:
    def __init__(self, model: bytes, batch_size: int, threads: int) -> None:
        self._interpreter = Interpreter(model_content=model, num_threads=threads)
        (image,) = self._interpreter.get_input_details()
        (logits,) = self._interpreter.get_output_details()
        self._input, self._output = image["index"], logits["index"]
        self._interpreter.resize_tensor_input(self._input, [batch_size, *IMAGE_SHAPE])
        self._interpreter.allocate_tensors()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self._interpreter.set_tensor(self._input, images)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output)
