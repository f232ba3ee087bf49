"""The shipped presets, and reading a rule file (or a preset by name) from disk."""

from __future__ import annotations

from pathlib import Path

from ..errors import RuleError, did_you_mean

__all__ = ["preset_names", "presets_dir", "read_rules_text", "resolve_rules_path"]

_PACKAGE = Path(__file__).resolve().parent.parent  # qconvert/


def presets_dir() -> Path:
    """The shipped presets: ``rules/`` of a source checkout, else the installed ``qconvert/presets``."""
    checkout = _PACKAGE.parent / "rules"
    return checkout if (checkout / "6bit.yaml").is_file() else _PACKAGE / "presets"


def preset_names() -> list[str]:
    """The names of the shipped presets (``6bit``, ...), sorted."""
    return sorted(p.stem for p in presets_dir().glob("*.yaml"))


def resolve_rules_path(path: str | Path) -> Path:
    """``path`` itself when it exists; a bare preset name (``6bit``) when no such file does."""
    given = Path(path)
    if not given.exists() and given.suffix == "" and given.name == str(path):
        preset = presets_dir() / f"{given.name}.yaml"
        if preset.is_file():
            return preset
    return given


def read_rules_text(path: str | Path) -> tuple[Path, str]:
    """The resolved path (a preset name → its file) and the UTF-8 text of a rule or space file.

    Raises :class:`RuleError` when it cannot be read (missing, a folder, not UTF-8).
    """
    path = resolve_rules_path(path)
    try:
        return path, path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise RuleError("is a directory, not a rule file", source=str(path)) from None
    except FileNotFoundError:
        hint = did_you_mean(str(path), preset_names())
        raise RuleError(f"no such rule file{hint} (shipped presets: {', '.join(preset_names())})", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"cannot read: {exc}", source=str(path)) from None
