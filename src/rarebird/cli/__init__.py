"""The ``rarebird`` command: a thin edge over the library. The core never imports this package.

Each area registers its commands on ``main`` from its own module (``job``, ``rules`` ...);
:class:`~rarebird.cli._common.LazyGroup` imports a module only when one of its commands runs.
"""

from __future__ import annotations

from rarebird.cli._common import main

__all__ = ["main"]
