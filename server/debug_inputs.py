"""`--save-inputs DIR`: keep the 28×28 images the model was given, for troubleshooting."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image


class InputRecorder:
    """Writes model inputs as PNGs, at most one per `min_interval_s` and `max_files` in all,
    so a busy classroom cannot fill the disk. Thread-safe: preprocessing threads call it."""

    def __init__(self, directory: Path, max_files: int = 1000, min_interval_s: float = 0.2) -> None:
        self.directory = Path(directory)
        self.max_files = max_files
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._written = 0
        self._last_at = float("-inf")

    def record(self, preview: np.ndarray, digit: int | None) -> Path | None:
        with self._lock:
            now = time.monotonic()
            if self._written >= self.max_files or now - self._last_at < self.min_interval_s:
                return None
            self._written += 1
            self._last_at = now
            number = self._written
        self.directory.mkdir(parents=True, exist_ok=True)
        label = "empty" if digit is None else str(digit)
        path = self.directory / f"{time.strftime('%Y%m%d-%H%M%S')}-{number:05d}-pred{label}.png"
        Image.fromarray(preview).save(path)
        return path
