"""Elasticsearch ``wildcard`` patterns as regular expressions (the datafeed query and rule
exceptions use the same translator)."""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=1024)
def wildcard_regex(pattern: str, *, case_insensitive: bool = False) -> re.Pattern[str]:
    """Elasticsearch wildcard syntax (``*``, ``?``, ``\\`` escapes) as an anchored regex.

    >>> bool(wildcard_regex("net*").fullmatch("netstat")), bool(wildcard_regex("s?").fullmatch("ss"))
    (True, True)
    >>> bool(wildcard_regex(r"a\\*").fullmatch("ab"))
    False
    """
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if case_insensitive else 0))
