"""`--save-inputs DIR`: keep the 28×28 images the model was given, for troubleshooting.

When predictions look wrong, the first question is what the model actually saw. The
recorder writes those images as PNGs, named so they sort by time and show the digit
predicted, at most one per `min_interval_s` and at most `max_files` in all, so a busy
server can neither flood the disk nor slow down.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import numpy as np

from server.preprocess import preview_png

logger = logging.getLogger(__name__)


class InputRecorder:
    """Writes model inputs as PNGs, rate-limited and capped in count; thread-safe."""

    def __init__(self, directory: Path, max_files: int = 1000, min_interval_s: float = 0.2) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_files = max_files
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._written = 0
        self._last = -float("inf")

    def record(self, preview: np.ndarray, digit: int | None) -> Path | None:
        """Save one model input; returns its path, or None when skipped by the limits."""
        with self._lock:
            now = time.monotonic()
            if self._written >= self.max_files or now - self._last < self.min_interval_s:
                return None
            self._written += 1
            self._last = now
            number = self._written
        label = "empty" if digit is None else f"pred{digit}"
        path = self.directory / f"{time.strftime('%Y%m%d-%H%M%S')}-{number:06d}-{label}.png"
        # Encoding and writing happen outside the lock: slow disks delay only this call.
        try:
            path.write_bytes(preview_png(preview))
        except OSError as error:
            # A troubleshooting aid must never break predictions (a full disk, say).
            logger.warning("could not save model input %s: %s", path, error)
            return None
        return path
