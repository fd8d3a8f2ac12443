"""Write `tests/data/drawn_digits.npz`: 100 pen drawings of every handwriting variant.

Run from the repository root: `python -m tests.data.make_drawn_digits`. The seed is fixed
(and differs from training's), so the file is the same on every run.
"""

from server import drawnset

SEED = 11
PER_VARIANT = 100

if __name__ == "__main__":
    drawnset.save(drawnset.DRAWN_SET_PATH, drawnset.draw_set(PER_VARIANT, SEED))
    print(f"wrote {drawnset.DRAWN_SET_PATH}")
