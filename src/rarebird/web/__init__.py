"""The triage pages (``rarebird ui``): an ASGI app over the store. The core never imports
this package; see :mod:`rarebird.web.app`."""

from __future__ import annotations
