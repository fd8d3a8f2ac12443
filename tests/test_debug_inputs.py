"""The `--save-inputs` recorder: what the model saw, as PNGs, rate-limited and capped."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from server.debug_inputs import InputRecorder


def preview(value: int = 200) -> np.ndarray:
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 12:16] = value
    return image


def test_a_recorded_input_is_the_28x28_png_of_the_preview(tmp_path: Path) -> None:
    path = InputRecorder(tmp_path / "inputs").record(preview(), 1)
    assert path is not None and path.parent == tmp_path / "inputs"
    assert path.name.endswith("-pred1.png")
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(path.read_bytes()))), preview())


def test_names_sort_in_recording_order_and_show_the_digit(tmp_path: Path) -> None:
    recorder = InputRecorder(tmp_path, min_interval_s=0)
    paths: list[Path] = []
    for digit in (7, None, 3):
        path = recorder.record(preview(), digit)
        assert path is not None  # min_interval_s=0 keeps every one
        paths.append(path)
    assert sorted(paths) == paths
    assert [p.name.rsplit("-", 1)[1] for p in paths] == ["pred7.png", "empty.png", "pred3.png"]


def test_inputs_closer_than_the_interval_are_skipped(tmp_path: Path) -> None:
    recorder = InputRecorder(tmp_path, min_interval_s=60)
    assert recorder.record(preview(), 1) is not None
    assert recorder.record(preview(), 2) is None
    assert len(list(tmp_path.iterdir())) == 1


def test_no_more_than_max_files_are_written(tmp_path: Path) -> None:
    recorder = InputRecorder(tmp_path, max_files=3, min_interval_s=0)
    results = [recorder.record(preview(), 5) for _ in range(10)]
    assert sum(r is not None for r in results) == 3
    assert len(list(tmp_path.iterdir())) == 3


def test_concurrent_recording_respects_the_cap(tmp_path: Path) -> None:
    recorder = InputRecorder(tmp_path, max_files=50, min_interval_s=0)
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: recorder.record(preview(i % 256), i % 10), range(400)))
    written = [r for r in results if r is not None]
    assert len(written) == 50 and len(set(written)) == 50
    assert len(list(tmp_path.iterdir())) == 50


def test_a_failing_disk_does_not_break_predictions(tmp_path: Path) -> None:
    recorder = InputRecorder(tmp_path, min_interval_s=0)
    (tmp_path / "blocker").mkdir()
    recorder.directory = tmp_path / "blocker" / "missing"  # writes now fail
    assert recorder.record(preview(), 4) is None
