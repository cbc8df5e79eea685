"""The quiet profile's settings (:mod:`rarebird.rules.profile`): its thresholds, as
``--profile-setting NAME=VALUE`` and ``serve``'s ``[alerts.quiet]`` table give them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class ProfileSettings:
    """The quiet profile's thresholds (what each decides: :mod:`rarebird.rules.profile`);
    ``--profile-setting NAME=VALUE`` on the command line, ``[alerts.quiet]`` in ``serve``'s
    configuration."""

    warm_up_days: int = 14
    absence_days: int = 30
    burst_tools: int = 3
    burst_minutes: int = 10
    regular_days: int = 2
    regular_window_days: int = 28
    host_warm_up_days: int = 1
    new_host_tools: int = 2


#: the smallest value each setting takes (a warm-up may be none; a burst is 2 tools at least)
SETTING_MINIMUM = {"warm_up_days": 0, "host_warm_up_days": 0, "burst_tools": 2, "new_host_tools": 2}


def settings_from(values: Mapping[str, object]) -> ProfileSettings:
    """:class:`ProfileSettings` with ``values`` (name -> whole number, or its text) over the
    defaults; ValueError in words for an unknown name, a value that is not a whole number or is
    too small, and regular days that do not fit their window.

    >>> settings_from({"warm_up_days": "7", "burst-tools": 4}).burst_tools
    4
    """
    known = {f.name for f in fields(ProfileSettings)}
    changes: dict[str, int] = {}
    for given, value in values.items():
        name = given.strip().replace("-", "_")
        if name not in known:
            raise ValueError(f"unknown quiet-profile setting {given!r} "
                             f"(known: {', '.join(sorted(known))})")  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"{name}: expected a whole number, got {value!r}")
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"{name}: expected a whole number, got {value!r}") from None
        if number < SETTING_MINIMUM.get(name, 1):
            raise ValueError(f"{name}: must be at least {SETTING_MINIMUM.get(name, 1)}")
        changes[name] = number
    settings = replace(ProfileSettings(), **changes)
    if settings.regular_days > settings.regular_window_days:
        raise ValueError(f"regular_days ({settings.regular_days}) cannot exceed "
                         f"regular_window_days ({settings.regular_window_days})")  # fmt: skip
    return settings
