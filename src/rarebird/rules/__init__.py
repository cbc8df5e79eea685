"""Stage 6: the ML detection rule -- schedule, anomaly query, exceptions, suppression, alerts.

``executor`` runs the rule once (``RuleExecutor.run(now)``), ``schedule`` computes run times
and Kibana's catch-up ranges, ``exceptions`` and ``suppression`` filter and group what it finds,
``replay`` drives the job and the rule together over historical events.
"""

from __future__ import annotations
