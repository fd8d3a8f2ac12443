"""server/jit.py: the compiled recipe where numba has nowhere to write its cache."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import REPO

PREPROCESS_ONE = """
from server.classifier import WARM_UP_SNAPSHOTS
from server.preprocess import preprocess_bytes
print(preprocess_bytes(WARM_UP_SNAPSHOTS[0]).empty)
"""


@pytest.mark.slow  # compiles the whole recipe, with nothing cached
def test_the_recipe_compiles_where_numba_finds_no_cache_directory() -> None:
    # numba's locator for notebooks places nothing here: no directory is found, as on a read-only install
    env = {**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "IPythonCacheLocator"}
    run = subprocess.run([sys.executable, "-c", PREPROCESS_ONE], cwd=REPO, env=env, capture_output=True, text=True)
    assert (run.returncode, run.stdout.strip()) == (0, "False"), run.stderr[-2000:]
    assert "nowhere to cache the compiled preprocessing" in run.stderr
