"""The compiled recipe checks no index at run time (server/recipe.py, server/resample.py): an
index out of bounds would read or write memory it does not own. Here the tests that feed it
random, hostile and odd-shaped snapshots run again with numba's bounds checking on, where such
an index raises IndexError instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

CHECKED = ["tests/test_resample.py", "tests/test_preprocess_input.py", "tests/test_hostile_images.py"]


@pytest.mark.slow
def test_no_snapshot_makes_the_recipe_index_out_of_bounds(tmp_path: Path) -> None:
    # a cache of its own: code compiled with bounds checks never mixes with the server's
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *CHECKED],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-4000:]
