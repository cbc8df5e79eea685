"""Seeded sample telemetry: a simulated fleet as ECS documents (fleet) or raw auditd (auditd)."""

from __future__ import annotations
