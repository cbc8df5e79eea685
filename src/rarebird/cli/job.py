"""``rarebird job ...`` and ``rarebird results``: run the anomaly job, look at its results."""

from __future__ import annotations

from rarebird.cli._common import main


@main.group()
def job() -> None:
    """Run the anomaly detection job over events."""
