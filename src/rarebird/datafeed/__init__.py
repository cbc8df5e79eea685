"""Stage 2, the datafeed: the query compiled (query), events matched and released in time order (feed)."""

from __future__ import annotations
