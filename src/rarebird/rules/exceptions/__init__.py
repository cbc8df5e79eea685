"""Rule exceptions with Elastic's exception-list semantics, plus rarebird's schedule windows and
parent-process / script allow-lists.

**Elastic's model** (``@kbn/securitysolution-io-ts-list-types``; filter building in Kibana's
``build_exceptions_filter.ts``): an exception *list* holds *items*; an item holds *entries*.
An item matches a document when ALL its entries match (AND); the rule drops a document when ANY
item of its lists matches (OR), i.e. the items become a ``must_not`` of the anomaly query.
Entry types and what rarebird evaluates for each, on the anomaly record document (the same one
Elastic's query runs on, ``AnomalyRecord.to_doc()``):

============ ========================================================================
``match``      ``match_phrase``: some value of the field equals ``value``
``match_any``  some value equals one of ``value[]``
``exists``     the field has at least one non-null value
``wildcard``   Elasticsearch ``wildcard`` query: ``*`` any run, ``?`` one character,
               ``\\`` escapes; case-sensitive; on any value of the field
``list``       some value is in a value list (``keyword``/``ip``: exact; ``ip_range``:
               CIDR or ``a-b``; ``text``: every token of a list value in the field)
``nested``     one object under ``field`` satisfies all the sub-entries together
============ ========================================================================

``operator: excluded`` negates an entry (``bool.must_not``), so ``excluded`` also holds when the
field is missing, exactly as in Elasticsearch. Fields may be dotted keys or nested objects, and
arrays hold when any element matches (:mod:`rarebird.documents`). Items past ``expire_time``
are not applied (Kibana 8.7+). ``os_types`` adds ``host.os.type`` (or
``host.os.name.caseless``) equal to one of them, as Kibana's ``transformOsType`` does; anomaly
records carry no such field, so such items never match ML alerts -- in Elastic as here.

**Differences, on purpose**: every item (value lists included) is applied before the
``max_signals`` cut, as current Kibana does for value lists up to its "small list" size; a value
list that does not exist makes its entry not match and a warning (Kibana fails the whole run).

**rarebird's additions**, kept in the item's free-form ``meta.rarebird`` so an item still
round-trips through Kibana's NDJSON (Kibana ignores ``meta``; the extra conditions then do not
apply there):

- ``windows``: schedule windows (maintenance): weekdays and a wall-clock time range in a named
  time zone; the item holds only when the anomaly's bucket start falls in one of them. A range
  whose end is not after its start crosses midnight (``Fri 22:00-06:00`` ends Saturday 06:00).
  Times are wall-clock times: on a spring-forward day a window over the skipped hour is shorter,
  on a fall-back day a window over the repeated hour is longer.
- ``allow``: parent-process and script allow-lists (``fnmatch`` patterns). The item holds only
  when the job kept the events behind the anomaly and *every* one of them was started by an
  allowed parent (``process.parent.name`` / ``process.parent.executable``) or by an allowed
  script (an element of ``process.parent.args``, or the parent's name/executable; a pattern
  without ``/`` also matches an argument's base name).

The package, by concern: ``entries`` (entry types, matching, Elastic's entry format),
``values`` and ``value_lists`` (comparison, value lists), ``windows`` and ``allow`` (rarebird's
additions), ``items`` (items and lists), ``exception_set`` (what one rule applies), ``wording``
(the exception builder's words), ``ndjson`` (Kibana's import / export format).
"""

from __future__ import annotations

from rarebird.rules.exceptions.allow import AllowList
from rarebird.rules.exceptions.entries import (
    ENTRY_TYPES,
    NESTED_ENTRY_TYPES,
    OPERATORS,
    Entry,
    EventsProvider,
    ExistsEntry,
    ListEntry,
    MatchAnyEntry,
    MatchContext,
    MatchEntry,
    NestedEntry,
    WildcardEntry,
    entry_from_elastic,
)
from rarebird.rules.exceptions.exception_set import ExceptionSet
from rarebird.rules.exceptions.items import LIST_KINDS, ExceptionItem, ExceptionList
from rarebird.rules.exceptions.ndjson import (
    ExceptionsFile,
    exceptions_to_ndjson,
    parse_exceptions_ndjson,
)
from rarebird.rules.exceptions.value_lists import LIST_TYPES, ValueList, read_value_list_file
from rarebird.rules.exceptions.values import as_text
from rarebird.rules.exceptions.windows import ScheduleWindow
from rarebird.rules.exceptions.wording import ENTRY_OPERATOR_WORDS, parse_entries, parse_entry_text

__all__ = [
    "AllowList",
    "ENTRY_OPERATOR_WORDS",
    "ENTRY_TYPES",
    "Entry",
    "EventsProvider",
    "ExceptionItem",
    "ExceptionList",
    "ExceptionSet",
    "ExceptionsFile",
    "ExistsEntry",
    "LIST_KINDS",
    "LIST_TYPES",
    "ListEntry",
    "MatchAnyEntry",
    "MatchContext",
    "MatchEntry",
    "NESTED_ENTRY_TYPES",
    "NestedEntry",
    "OPERATORS",
    "ScheduleWindow",
    "ValueList",
    "WildcardEntry",
    "as_text",
    "entry_from_elastic",
    "exceptions_to_ndjson",
    "parse_entries",
    "parse_entry_text",
    "parse_exceptions_ndjson",
    "read_value_list_file",
]
