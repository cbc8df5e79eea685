"""The order in which Elastic's engine lists a bucket's people, and so its results.

``CIndividualModel::currentBucketPersonIds`` (elastic/ml-cpp) collects the person ids that have
data in the bucket into a ``boost::unordered_set<std::size_t>`` and ``addResults`` adds one result
per id in that set's iteration order. The normaliser merges every two consecutive updates into one
q-digest sample, so this order decides which raw scores the record normaliser learns.

This module reproduces the iteration order of Boost 1.86's closed-addressing ``unordered_set``
(the version ml-cpp builds with), written from the container's documented design and checked
against the real container (``tests/data/boost_unordered_order.json``).
"""

from __future__ import annotations

from collections.abc import Sequence

_BOOST_PRIME_SIZES = (13, 29, 53, 97, 193, 389, 769, 1543, 3079, 6151, 12289, 24593, 49157,
                      98317, 196613, 393241, 786433, 1572869, 3145739, 6291469, 12582917)  # fmt: skip
_GROUP = 64  # buckets per bucket group (bits of a std::size_t bitmask)


class _BoostBuckets:
    """The bucket array of Boost's closed-addressing containers (``grouped_bucket_array``,
    ``boost/unordered/detail/fca.hpp``): a prime number of buckets, a node goes to
    ``hash % size`` (``prime_fmod_size``) at the front of its bucket's list; non-empty
    buckets are found through groups of 64, and a group that gets its first node is linked
    right after the last group (the one holding the end sentinel)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.buckets: dict[int, list[int]] = {}
        #: groups other than the last, in the order iteration visits them (newest first)
        self.groups: list[int] = []
        self.used: set[int] = set()

    def insert(self, key: int) -> None:
        index = key % self.size
        bucket = self.buckets.get(index)
        if bucket is None:
            bucket = self.buckets[index] = []
            group = index // _GROUP
            if group != self.size // _GROUP and group not in self.used:
                self.used.add(group)
                self.groups.insert(0, group)
        bucket.insert(0, key)

    def in_index_order(self) -> list[int]:
        return [k for i in sorted(self.buckets) for k in self.buckets[i]]

    def in_iteration_order(self) -> list[int]:
        by_group: dict[int, list[int]] = {}
        for index in sorted(self.buckets):
            by_group.setdefault(index // _GROUP, []).extend(self.buckets[index])
        order = [*self.groups, self.size // _GROUP]
        return [k for group in order for k in by_group.get(group, [])]


def unordered_order(keys: Sequence[int]) -> list[int]:
    """The iteration order of a ``boost::unordered_set<std::size_t>`` (Boost 1.86; ``hash``
    is the identity) after inserting ``keys`` in this order. It grows when an insert would
    take it past one key per bucket, to the smallest prime size of at least ``size + 2``
    buckets, moving the nodes bucket by bucket in index order (``table::rehash_impl``)."""
    table = _BoostBuckets(0)
    seen: set[int] = set()
    for key in keys:
        if key in seen:
            continue
        if len(seen) + 1 > table.size:
            wanted = len(seen) + 2
            size = next((n for n in _BOOST_PRIME_SIZES if n >= wanted), None)
            if size is None:
                raise ValueError(f"too many people in one bucket: {len(seen) + 1}")
            grown = _BoostBuckets(size)
            for k in table.in_index_order():
                grown.insert(k)
            table = grown
        table.insert(key)
        seen.add(key)
    return table.in_iteration_order()
