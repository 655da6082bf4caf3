"""How hdr shows a number, the same in every command's text: an accuracy or any other share
(error rate, precision, recall) as a percentage with two decimals, 98.75%; in a table whose
header says %, the same figure without the sign; a loss with four decimals; a hyperparameter
with four significant digits. Files (JSON, CSV) keep full precision."""

from __future__ import annotations

NONE = "-"


def percent(share) -> str:
    """0.98754 -> '98.75%'."""
    return NONE if share is None else f"{100 * share:.2f}%"


def pct(share) -> str:
    """0.98754 -> '98.75', for a table column whose header says %."""
    return NONE if share is None else f"{100 * share:.2f}"


def points(delta) -> str:
    """A difference of two shares in percentage points: 0.0012 -> '+0.12'."""
    return NONE if delta is None else f"{100 * delta:+.2f}"


def loss(value) -> str:
    return NONE if value is None else f"{value:.4f}"


def param(value) -> str:
    """A hyperparameter as a person reads it: 0.017826497151386938 -> '0.01783'."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    return f"{value:.4g}"


def metric(name: str, value) -> str:
    """A figure named by its history column or metric key: a share as a percentage, else a loss."""
    return loss(value) if "loss" in name else percent(value)
