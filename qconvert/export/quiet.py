"""hls4ml prints progress on stdout and warns through :mod:`warnings`; qconvert reports through its own report."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator

__all__ = ["quiet"]


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Within it, stdout is discarded and warnings are ignored (what hls4ml and da4ml print while they work)."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
