"""The process qconvert runs in: Keras imported quietly, worker processes set up the same way.

Written once here and used by the CLI, ``batch`` workers, ``search`` workers and the demo. Nothing in this
module imports Keras at import time: ``qconvert --help`` stays fast.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from types import ModuleType

__all__ = ["import_qkeras", "quiet_backends", "worker_environment"]

#: Frameworks qkeras-v3 imports whenever they are installed (``qkeras/ops_portable.py``, to recognise their
#: tensors) that the Keras backend in use never hands it. Not for PyTorch: there TensorFlow, which QKeras
#: imports too, is not yet loaded and may want JAX itself.
_UNUSED_FRAMEWORKS = {"tensorflow": ("torch", "jax"), "jax": ("torch",)}


def import_qkeras() -> ModuleType:
    """Import QKeras (Keras first) without the frameworks of other Keras backends; return the module.

    qkeras-v3 imports torch and jax, when installed, only to tell their tensors apart; under TensorFlow
    that is most of its import (measured here with torch 2.13 installed: ``import qkeras`` 3.05 s → 0.22 s),
    paid by every process. Those frameworks are hidden during that one import, and only if nothing has
    imported them yet: a later ``import torch`` works as usual.
    """
    if "qkeras" in sys.modules:
        return sys.modules["qkeras"]
    import keras

    hidden = [m for m in _UNUSED_FRAMEWORKS.get(keras.backend.backend(), ()) if m not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError
    try:
        import qkeras
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
    return qkeras


def quiet_backends() -> None:
    """Import Keras and QKeras with TensorFlow's C++ start-up chatter kept off the terminal.

    TensorFlow writes INFO lines to file descriptor 2 before its logging is set up, whatever
    ``TF_CPP_MIN_LOG_LEVEL`` says; they are captured and shown only if the import fails. The backend
    defaults to TensorFlow (``KERAS_BACKEND`` chooses another). Idempotent: a second call does nothing.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "keras" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import_qkeras()
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    # TensorFlow's Python-side warnings (tf.function retracing when several models are evaluated in one run)
    # say nothing a qconvert user can act on; errors still show.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def worker_environment(threads: int | None = None) -> None:
    """Set up a worker process (``batch -j``, ``search -j``): TensorFlow's thread pools sized to ``threads``
    cores (None: TensorFlow's default), then Keras imported quietly. Call first thing in the worker."""
    if threads is not None:
        os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    quiet_backends()
