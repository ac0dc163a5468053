"""Argument types for the `icalign` commands: a bad value is a one-line usage error."""

from __future__ import annotations

import argparse
import math

__all__ = ["non_empty_text", "non_negative_float", "non_negative_int", "positive_int", "unit_float"]


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        msg = f"expected a whole number, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        msg = f"expected a number, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not math.isfinite(value):
        msg = f"expected a finite number, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    value = _whole_number(text)
    if value < 1:
        msg = f"must be at least 1, got {value}"
        raise argparse.ArgumentTypeError(msg)
    return value


def non_negative_int(text: str) -> int:
    """A whole number of 0 or more."""
    value = _whole_number(text)
    if value < 0:
        msg = f"must be 0 or more, got {value}"
        raise argparse.ArgumentTypeError(msg)
    return value


def non_negative_float(text: str) -> float:
    """A finite number of 0 or more."""
    value = _number(text)
    if value < 0:
        msg = f"must be 0 or more, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def unit_float(text: str) -> float:
    """A number from 0 to 1 (a cosine threshold, a probability)."""
    value = _number(text)
    if not 0 <= value <= 1:
        msg = f"must be between 0 and 1, got {text}"
        raise argparse.ArgumentTypeError(msg)
    return value


def non_empty_text(text: str) -> str:
    """Text with something in it besides whitespace."""
    if not text.strip():
        msg = "is empty"
        raise argparse.ArgumentTypeError(msg)
    return text
