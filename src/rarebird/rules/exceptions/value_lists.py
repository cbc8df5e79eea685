"""Value lists (Elastic's ``/api/lists``): named sets of values that ``list`` entries refer to."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from rarebird.errors import DefinitionError
from rarebird.rules.exceptions.values import as_text, scalar_equals, tokens

LIST_TYPES = (
    "keyword", "ip", "ip_range", "text", "binary", "boolean", "byte", "date", "date_nanos",
    "date_range", "double", "double_range", "float", "float_range", "geo_point", "geo_shape",
    "half_float", "integer", "integer_range", "long", "long_range", "short", "shape",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ValueList:
    """An Elastic value list (``/api/lists``): a named set of values of one type."""

    id: str
    type: str
    values: frozenset[str]
    name: str = ""
    description: str = ""

    def contains(self, value: Any) -> bool:
        text = as_text(value)
        if text is None:
            return False
        if self.type == "ip":
            ip = _parse_ip(text)
            return ip is not None and any(_parse_ip(v) == ip for v in self.values)
        if self.type == "ip_range":
            ip = _parse_ip(text)
            return ip is not None and any(_in_ip_range(ip, v) for v in self.values)
        if self.type == "text":
            have = tokens(text)
            return any(tokens(v) and tokens(v) <= have for v in self.values)
        if self.type in ("long", "integer", "short", "byte", "double", "float", "half_float"):
            return any(scalar_equals(value, v) for v in self.values) or text in self.values
        return text in self.values


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _in_ip_range(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, spec: str) -> bool:
    spec = spec.strip()
    if "-" in spec:
        lo_text, hi_text = spec.split("-", 1)
        lo, hi = _parse_ip(lo_text), _parse_ip(hi_text)
        if lo is None or hi is None or lo.version != ip.version or hi.version != ip.version:
            return False
        return int(lo) <= int(ip) <= int(hi)
    try:
        return ip in ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return False


def read_value_list_file(path: str) -> list[str]:
    """Values from a value-list file as Kibana imports them: one per line, blank lines skipped."""
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise DefinitionError(path, None, f"cannot read: {exc.strerror or exc}") from None
    return [line.strip() for line in lines if line.strip()]
