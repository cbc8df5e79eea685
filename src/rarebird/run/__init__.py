"""The stages composed: ``engine`` (THE composition: datafeed -> job -> rule -> commit, in
replay), ``live`` (the same engine fed as data arrives, for ``serve``), ``early_warning``,
``snapshots``, ``state`` (the live engine's position) and ``replay`` (reading inputs into the
engine, for ``job run`` and ``detect``)."""

from __future__ import annotations
