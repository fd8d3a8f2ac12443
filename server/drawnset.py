"""The drawn-digit test sets: pen drawings of every handwriting variant, and page recordings.

`tests/data/drawn_digits.npz` keeps drawings as strokes (a few bytes a point), so the set
is small and every check renders them to the page's snapshot (as PNG) and sends that through
the server's real preprocessing. `tests/data/page_digits.npz` keeps the frames the page itself
sent over its WebSocket (grey frames, docs/protocol.md) while Chromium drew some of the same
drawings.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from server import handwriting, pagesnapshot
from server.handwriting import Drawing, Split, Variant
from server.preprocess import preprocess_bytes

DATA_DIR = Path(__file__).resolve().parents[1] / "tests" / "data"
DRAWN_SET_PATH = DATA_DIR / "drawn_digits.npz"
PAGE_SET_PATH = DATA_DIR / "page_digits.npz"
# Points are stored in 1/4096ths of the pad (finer than any screen's pixels), each as a
# step from the one before: small numbers that compress well.
_POINT_SCALE = 4096


@dataclass(frozen=True)
class DrawnDigit:
    strokes: Drawing
    pen_width: float
    variant: Variant


def draw_set(per_variant: int, seed: int, split: Split = Split.ALL) -> list[DrawnDigit]:
    """`per_variant` drawings of every variant in `split`, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    digits = []
    for variant in handwriting.variants(split):
        for _ in range(per_variant):
            strokes, pen_width = handwriting.write(variant, rng)
            digits.append(DrawnDigit(strokes, pen_width, variant))
    return digits


def _variant_named(label: str) -> Variant:
    return next(v for v in handwriting.VARIANTS if v.label == label)


def save(path: Path, digits: list[DrawnDigit]) -> None:
    labels = sorted({d.variant.label for d in digits})
    strokes = [s for d in digits for s in d.strokes]
    np.savez_compressed(
        path,
        steps=np.vstack([np.diff(np.rint(s * _POINT_SCALE), axis=0, prepend=0) for s in strokes]).astype(np.int16),
        stroke_lengths=np.array([len(s) for s in strokes], dtype=np.uint16),
        stroke_counts=np.array([len(d.strokes) for d in digits], dtype=np.uint8),
        pen_widths=np.array([d.pen_width for d in digits], dtype=np.float32),
        variant_names=np.array(labels),
        variants=np.array([labels.index(d.variant.label) for d in digits], dtype=np.uint8),
    )


def load(path: Path = DRAWN_SET_PATH) -> list[DrawnDigit]:
    with np.load(path) as data:
        steps = np.split(data["steps"].astype(np.float64), np.cumsum(data["stroke_lengths"])[:-1])
        strokes = [np.cumsum(s, axis=0) / _POINT_SCALE for s in steps]
        per_digit = np.split(np.arange(len(strokes)), np.cumsum(data["stroke_counts"])[:-1])
        variants = [_variant_named(str(name)) for name in data["variant_names"]]
        return [
            DrawnDigit([strokes[i] for i in rows], float(width), variants[index])
            for rows, width, index in zip(per_digit, data["pen_widths"], data["variants"], strict=True)
        ]


def save_frames(path: Path, frames: list[bytes], variants: list[Variant]) -> None:
    """Frames as the page sent them, one per drawing, with the variant drawn."""
    labels = sorted({v.label for v in variants})
    np.savez_compressed(
        path,
        frame_bytes=np.frombuffer(b"".join(frames), dtype=np.uint8),
        frame_lengths=np.array([len(f) for f in frames], dtype=np.uint32),
        variant_names=np.array(labels),
        variants=np.array([labels.index(v.label) for v in variants], dtype=np.uint8),
    )


def load_frames(path: Path = PAGE_SET_PATH) -> tuple[list[bytes], list[Variant]]:
    with np.load(path) as data:
        ends = np.cumsum(data["frame_lengths"])
        blob = data["frame_bytes"].tobytes()
        frames = [blob[end - length : end] for end, length in zip(ends, data["frame_lengths"], strict=True)]
        variants = [_variant_named(str(name)) for name in data["variant_names"]]
        return frames, [variants[i] for i in data["variants"]]


def model_inputs(frames: list[bytes]) -> np.ndarray:
    """Snapshots (PNG or grey frames) through the server's preprocessing: float32 (n, 28, 28, 1).

    A snapshot the server would call empty stays black, and so counts as a mistake.
    """
    images = np.zeros((len(frames), 28, 28, 1), dtype=np.float32)
    for i, frame in enumerate(frames):
        prepared = preprocess_bytes(frame)
        if not prepared.empty:
            images[i, ..., 0] = prepared.image
    return images


def png_snapshots(images: np.ndarray) -> list[bytes]:
    """uint8 (n, height, width) images as the PNGs a client would send."""
    snapshots = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        snapshots.append(buffer.getvalue())
    return snapshots


def snapshots(digits: list[DrawnDigit]) -> list[bytes]:
    """The PNG the page would send for each drawing where a browser lacks CompressionStream."""
    return [pagesnapshot.snapshot_png(d.strokes, d.pen_width) for d in digits]


# --- scores ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    correct: int
    total: int
    misread: dict[int, int]  # wrong digit → how often

    @property
    def accuracy(self) -> float:
        return self.correct / max(self.total, 1)

    def __str__(self) -> str:
        # Two decimals: one digit missed in 2,400 must not print as 100.0%.
        return f"{self.accuracy:.2%} ({self.correct} / {self.total})"


def score(truth: np.ndarray, predicted: np.ndarray) -> Score:
    wrong = predicted[predicted != truth]
    return Score(int((predicted == truth).sum()), len(truth), {int(d): int((wrong == d).sum()) for d in set(wrong)})


def scores_by_variant(variants: list[Variant], predicted: np.ndarray) -> dict[Variant, Score]:
    labels = np.array([v.digit for v in variants])
    rows = {v: np.array([w == v for w in variants]) for v in dict.fromkeys(variants)}
    return {v: score(labels[mask], predicted[mask]) for v, mask in rows.items()}


def _fraction(score: Score | None) -> str:
    return "–" if score is None else f"{score.correct} / {score.total}"


def report(
    predict: Callable[[np.ndarray], np.ndarray], drawn_path: Path = DRAWN_SET_PATH, page_path: Path = PAGE_SET_PATH
) -> list[str]:
    """The markdown section on both drawn sets; `predict` maps model inputs to probabilities."""
    digits = load(drawn_path)
    variants = [d.variant for d in digits]
    labels = np.array([v.digit for v in variants])
    predicted = predict(model_inputs(snapshots(digits))).argmax(axis=1)
    frames, page_variants = load_frames(page_path)
    page_predicted = predict(model_inputs(frames)).argmax(axis=1)
    page_scores = scores_by_variant(page_variants, page_predicted)
    held_out = np.array([v.held_out for v in variants])
    per_digit = [score(labels[labels == d], predicted[labels == d]) for d in range(10)]
    rows = [
        f"| {v.digit} | {v.name} | {'held out' if v.held_out else 'trained'} | {s} | "
        + ", ".join(f"{digit} ×{count}" for digit, count in sorted(s.misread.items()))
        + f" | {_fraction(page_scores.get(v))} |"
        for v, s in scores_by_variant(variants, predicted).items()
    ]
    return [
        "## Drawn digits",
        "",
        (
            f"Drawn set: the {len(digits):,} pen drawings of `{drawn_path.name}`, every handwriting "
            "variant of `server.handwriting`, each rendered as the page's PNG snapshot and sent through "
            "`server.preprocess`. Held-out variants are never drawn by the training generator. Page set: "
            f"the {len(frames)} snapshots the page itself sent over its WebSocket while Chromium drew some of the "
            f"same drawings with mouse events (`{page_path.name}`)."
        ),
        "",
        (
            f"**Drawn set: {score(labels, predicted)}** · held-out variants: "
            f"{score(labels[held_out], predicted[held_out])} · page set: "
            f"{score(np.array([v.digit for v in page_variants]), page_predicted)}"
        ),
        "",
        "| digit | " + " | ".join(map(str, range(10))) + " |",
        "|---" * 11 + "|",
        "| drawn set | " + " | ".join(f"{s.accuracy:.1%}" for s in per_digit) + " |",
        "",
        "| digit | variant | generator | drawn set | misread as | page set |",
        "|---|---|---|---:|---|---:|",
        *rows,
        "",
    ]
