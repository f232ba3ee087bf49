"""The version of qconvert, in a leaf module every layer may read (reports and provenance record it)."""

__version__ = "0.1.0"
