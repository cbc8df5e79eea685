"""Raw Linux audit logs, the ``auditd`` format: records grouped into exec events.

- :mod:`.records`: the record syntax (header, fields, ENRICHED names, hex);
- :mod:`.events`: one event's records mapped to a ProcessEvent (Elastic's normaliser);
- :mod:`.scan`: the grouping rule and the full parse that checks every line;
- :mod:`.fast`: the prefiltered fast path (only events whose ``exe`` can match are parsed);
- :mod:`.parallel`: one large file read by several processes, one byte range each;
- :mod:`.source`: :class:`AuditdSource`, its factory, sniffer and chunk framer.
"""

from __future__ import annotations

from rarebird.sources.auditd.source import AuditdSource, frame_audit, open_auditd, sniff_auditd

__all__ = ["AuditdSource", "frame_audit", "open_auditd", "sniff_auditd"]
