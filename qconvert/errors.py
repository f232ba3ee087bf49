"""The small error hierarchy of qconvert.

Every error a user can cause derives from :class:`QConvertError`; the CLI turns
each into one line on stderr and exit code 2. Anything else is a bug.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ConversionError",
    "DataError",
    "ExportError",
    "Interrupted",
    "ModelLoadError",
    "OutputError",
    "QConvertError",
    "RuleError",
    "SettingsError",
    "StudyError",
    "VerificationError",
    "did_you_mean",
]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the choice closest to ``word``, else ``""``: the same word in another case
    (``6BIT`` → ``6bit``), or a file name whose stem is a choice (``6bit.yaml``), or the only choice that starts
    with it (``mixed`` → ``mixed_jet_tagger``), else difflib's closest by ratio >= 0.6, ignoring case (all of
    them when several are equally close: ``fc`` → ``'fc1', 'fc2', 'fc3'``).

    For error messages: ``f"unknown key{did_you_mean(key, allowed)}"``.
    """
    import difflib

    choices = list(dict.fromkeys(choices))
    by_lower = {c.lower(): c for c in reversed(choices)}  # the first of choices equal but for case
    lower = word.lower()
    stem = lower.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    starting = [c for c in choices if c.lower().startswith(lower)] if len(lower) >= 3 else []
    found = by_lower.get(lower) or by_lower.get(stem) or (starting[0] if len(starting) == 1 else None)
    if found is None:  # difflib's closest; several equally close are all named, not one of them at random
        ratio = {c: difflib.SequenceMatcher(None, lower, c).ratio() for c in by_lower}
        best = max(ratio.values(), default=0.0)
        tied = list(dict.fromkeys(by_lower[c.lower()] for c in choices if ratio[c.lower()] == best)) if best >= 0.6 else []
        if len(tied) > 1:
            return f"; did you mean one of {', '.join(map(repr, tied[:5]))}?"
        found = tied[0] if tied else None
    return f"; did you mean {found!r}?" if found is not None and found != word else ""


class QConvertError(Exception):
    """Base class of the errors qconvert reports to the user."""


class RuleError(QConvertError):
    """A rule file is malformed, invalid, or does not fit the model.

    ``source``, ``line`` and ``key`` locate the problem when known; ``str()``
    renders them as ``file:line: key: message``.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.key = key
        super().__init__(self._render())

    def _render(self) -> str:
        where = self.source or "<rules>"
        if self.line is not None:
            where += f":{self.line}"
        prefix = f"{where}: "
        if self.key:
            prefix += f"{self.key}: "
        return prefix + self.message


class ModelLoadError(QConvertError):
    """A model file is missing, unreadable, or not a Keras model."""


class ConversionError(QConvertError):
    """The rewriter cannot produce the model the rules ask for."""


class OutputError(QConvertError):
    """An output cannot be written where it was asked for."""


class DataError(QConvertError):
    """Input data is unreadable or does not fit the model."""


class ExportError(QConvertError):
    """hls4ml export cannot proceed: bad backend, part or output folder, a layer the bridge cannot
    convert, or a synthesis tool that is not installed."""


class SettingsError(QConvertError):
    """Options that do not fit together (``--epochs`` without ``--data``, two different seeds, ...): raised
    when a :class:`~qconvert.pipeline.Job` is built, so the Python API and the CLI refuse the same things."""


class StudyError(QConvertError):
    """A search cannot run as asked: its study storage cannot be opened, the output folder holds another
    search, the study was made with other settings, or its first trials all failed."""


class VerificationError(ExportError):
    """The exported design cannot be checked against Keras: its emulation crashed (a C++ assertion or signal in
    hls4ml's generated code), its Verilator build failed, or the inputs given to check it on do not fit the model.
    The project is written; what it computes is unknown."""


class Interrupted(QConvertError):
    """Ctrl-C (SIGINT) stopped training (the message names the checkpoint and how to continue) or the RTL stage
    (the layer da4ml was solving). The CLI prints it on one line and exits 130, the shell's code for an interrupt."""
