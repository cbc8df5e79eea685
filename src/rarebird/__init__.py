"""rarebird: Elastic's rare-user network-discovery detection, self-hosted and explainable."""

from __future__ import annotations

__version__ = "0.1.0"
