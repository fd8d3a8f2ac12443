"""The preprocessing recipe's compiler: numba's `njit`, keeping what it compiles on disk.

Where numba finds no directory it may write its cache in (an install only root may write to,
a container's read-only root), `cache=True` fails at import and the server would not start.
There it compiles at each start instead, which only makes starting slower; `NUMBA_CACHE_DIR`
points the cache at any writable directory.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from numba import njit

logger = logging.getLogger(__name__)

Function = TypeVar("Function", bound=Callable[..., Any])


def compiled(**options: Any) -> Callable[[Function], Function]:
    def compile_lazily(function: Function) -> Function:
        try:
            return njit(cache=True, **options)(function)
        except RuntimeError:  # numba found nowhere to write its cache
            _say_uncached()
            return njit(**options)(function)

    return compile_lazily


@functools.cache
def _say_uncached() -> None:
    logger.warning(
        "numba has nowhere to cache the compiled preprocessing (set NUMBA_CACHE_DIR to a writable "
        "directory): every start compiles it, up to a minute"
    )
