"""The ``rarebird`` command: a thin edge over the library. The core never imports this package.

Each area registers its commands from its own module (``job``, ``rules`` ...), all on ``main``.
"""

from __future__ import annotations

# Command modules register themselves on ``main`` when imported.
from rarebird.cli import generate as _generate  # noqa: F401  (registration by import)
from rarebird.cli import job as _job  # noqa: F401  (registration by import)
from rarebird.cli import rules as _rules  # noqa: F401  (registration by import)
from rarebird.cli import triage as _triage  # noqa: F401  (registration by import)
from rarebird.cli._common import main

__all__ = ["main"]
