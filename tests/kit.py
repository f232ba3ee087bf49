"""The shared test kit: run the CLI in process, assert a clean error, kill a run and resume it, small data;
rule-file text and quantizer specs for the rule-file tests; a Keras layer's outputs for the RTL tests.

Imported by test modules as ``from kit import ...`` (pytest puts tests/ on sys.path); the fixtures that use it
live in conftest.py. Importing it imports no Keras (the rule-file tests stay pure).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from click.testing import CliRunner

from qconvert.cli import cli
from qconvert.quantizers import QuantizerSpec, parse_quantizer

if TYPE_CHECKING:
    import numpy as np

__all__ = ["act", "assert_clean_error", "doc", "jets_npz", "keras_logits", "kill_after_first_checkpoint", "qb",
           "run_cli"]


def run_cli(*args: Any, **kwargs: Any) -> Any:
    """``qconvert ARGS...`` in this process (click's CliRunner); arguments are str()-ed. Returns the Result."""
    return CliRunner().invoke(cli, [str(a) for a in args], **kwargs)


def assert_clean_error(result: Any, *fragments: str, code: int = 2) -> str:
    """The run failed as users are promised: exit ``code``, one ``qconvert: error:`` line naming every
    fragment, no traceback. Returns that line."""
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("qconvert: error:")]
    assert len(lines) == 1, result.output
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def jets_npz(path: Path, rows: int = 4000) -> Path:
    """A synthetic jet-shaped training set (16 features, 5 classes) for the kill-and-resume tests."""
    import numpy as np

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, rows)
    x = (rng.normal(size=(5, 16))[labels] + rng.normal(0, 1.5, size=(rows, 16))).astype("float32")
    np.savez(path, X_train=x, y_train=np.eye(5, dtype="float32")[labels])
    return path


def kill_after_first_checkpoint(args: list[str], state: Path) -> dict:
    """Run the CLI ``args`` in a child process, SIGKILL it once ``state`` (CKPT/state.json) exists; return that state."""
    proc = subprocess.Popen(args, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return json.loads(state.read_text())


def qb(bits: int, integer: int, **kw) -> QuantizerSpec:
    """quantized_bits(bits, integer, **kw), built by the parser."""
    extra = "".join(f", {k}={v!r}" for k, v in kw.items())
    return parse_quantizer(f"quantized_bits({bits}, {integer}{extra})")


def act(text: str) -> QuantizerSpec:
    """An activation quantizer, built by the parser."""
    return parse_quantizer(text, "activation")


def doc(text: str) -> str:
    """A rule file written indented inside a test; line 1 is its first non-blank line."""
    return textwrap.dedent(text).lstrip("\n")


def keras_logits(model, layer: str, x: np.ndarray) -> np.ndarray:
    """The outputs of ``model``'s layer ``layer`` on ``x`` (fed as float32), one row per input."""
    import keras
    import numpy as np

    probe = keras.Model(model.inputs, model.get_layer(layer).output)
    return np.asarray(probe.predict(x.astype("float32"), verbose=0)).reshape(len(x), -1)
