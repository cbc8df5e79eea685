"""A q-digest of non-negative integers, with the exact merge and compression order of
Elastic's ``CQDigest`` (elastic/ml-cpp ``lib/maths/common/CQDigest.cc``).

The q-digest (Shrivastava et al., "Medians and beyond", SenSys 2004) keeps counts on the nodes of
a binary tree over the value range, merging a node into its parent whenever the node, its sibling
and their parent together hold fewer than ``n // k`` samples. The normaliser's scores depend on
which nodes survive, so the compression order (deepest level first, then by range) follows the
engine's. The code is written from that description, in our own terms.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left
from typing import Any

UINT32_MAX = 0xFFFFFFFF


class _Node:
    __slots__ = ("lo", "hi", "count", "subtree", "parent", "children")

    def __init__(self, lo: int, hi: int, count: int, subtree: int) -> None:
        self.lo = lo
        self.hi = hi
        self.count = count
        self.subtree = subtree
        self.parent: _Node | None = None
        self.children: list[_Node] = []

    # geometry ----------------------------------------------------------------------------
    @property
    def span(self) -> int:
        return self.hi - self.lo + 1

    def post_key(self) -> tuple[int, int]:
        """Post-order position among siblings: by upper end, then by span."""
        return (self.hi, self.hi - self.lo + 1)

    def same(self, other: _Node) -> bool:
        return self.lo == other.lo and self.hi == other.hi

    def is_ancestor_of(self, other: _Node) -> bool:
        return (self.lo < other.lo and self.hi >= other.hi) or (
            self.lo <= other.lo and self.hi > other.hi
        )

    def is_parent_of(self, other: _Node) -> bool:
        return self.is_ancestor_of(other) and self.span == 2 * other.span

    def is_leaf(self) -> bool:
        return self.lo == self.hi

    def is_left_child(self) -> bool:
        return (self.lo // self.span) % 2 == 0

    def is_sibling_of(self, other: _Node) -> bool:
        if self.span != other.span:
            return False
        if self.is_left_child():
            return self.hi + 1 == other.lo
        return self.lo == other.hi + 1

    def _lower_bound(self, key: tuple[int, int]) -> int:
        return bisect_left([c.post_key() for c in self.children], key)

    def sibling(self, node: _Node) -> _Node | None:
        span = node.span
        if node.is_left_child():
            lo, hi = node.lo + span, node.hi + span
        else:
            lo, hi = node.lo - span, node.hi - span
        i = self._lower_bound((hi, hi - lo + 1))
        if i < len(self.children) and self.children[i].is_sibling_of(node):
            return self.children[i]
        return None

    # structure ---------------------------------------------------------------------------
    def expand(self, value: int) -> _Node | None:
        if self.hi >= value:
            return None
        result = self if self.count == 0 else _Node(self.lo, self.hi, 0, 0)
        level_span = result.span
        while True:
            result.hi += level_span
            level_span <<= 1
            if result.hi >= value:
                break
        if result is not self:
            self.parent = result
            result.children.append(self)
            result.subtree += self.subtree
        return result

    def insert(self, node: _Node) -> _Node:
        self.subtree += node.subtree
        if self.same(node):
            self.count += node.count
            return self
        nxt = self._lower_bound(node.post_key())
        for child in self.children[nxt:]:
            if child.is_ancestor_of(node) or child.same(node):
                return child.insert(node)
        new = _Node(node.lo, node.hi, node.count, node.subtree)
        new.parent = self
        self.children.insert(nxt, new)
        if not new.is_leaf():
            new.take_children(self)
        return new

    def take_children(self, node: _Node) -> bool:
        if not node.children:
            return False
        if not self.is_ancestor_of(node):
            take = []
            leave = []
            for child in node.children:
                if self.is_ancestor_of(child):
                    take.append(child)
                    child.parent = self
                    self.subtree += child.subtree
                else:
                    leave.append(child)
            self.children = _merge(self.children, take)
            node.children = leave
            return bool(take)
        for child in node.children:
            child.parent = self
        self.children = _merge(self.children, node.children)
        node.children = []
        return True

    def detach(self) -> None:
        parent = self.parent
        assert parent is not None
        parent.children = [c for c in parent.children if c is not self]
        parent.take_children(self)
        self.parent = None

    def compress(self, factor: int) -> _Node | None:
        ancestor = self.parent
        if ancestor is None:
            return None
        sibling = ancestor.sibling(self)
        is_parent = ancestor.is_parent_of(self)
        count = (
            (ancestor.count if is_parent else 0)
            + self.count
            + (sibling.count if sibling is not None else 0)
        )
        if count >= factor:
            return None
        if is_parent:
            ancestor.count = count
            self.detach()
            if sibling is not None:
                sibling.detach()
            return ancestor
        # Recycle this node as the (missing) parent.
        self.count = count
        span = self.span
        if self.is_left_child():
            self.hi += span
        else:
            self.lo -= span
        self.take_children(ancestor)
        if sibling is not None:
            sibling.detach()
        return self

    def age(self, factor: float) -> int:
        self.subtree = 0
        for child in self.children:
            self.subtree += child.age(factor)
        if self.count > 0:
            self.count = int(max(self.count * factor + 0.5, 1.0))
        self.subtree += self.count
        return self.subtree

    # queries -----------------------------------------------------------------------------
    def post_order(self, out: list[_Node]) -> None:
        for child in self.children:
            child.post_order(out)
        out.append(self)

    def quantile(self, left: int, n: int) -> int:
        node = self
        while True:
            for child in node.children:
                c = child.subtree
                if left + c >= n:
                    node = child
                    break
                left += c
            else:
                return node.hi

    def cdf_lower(self, x: int) -> int:
        if self.hi <= x:
            return self.subtree
        return sum(c.cdf_lower(x) for c in self.children)

    def cdf_upper(self, x: int) -> int:
        if self.hi <= x:
            return self.subtree
        if self.lo <= x:
            return self.count + sum(c.cdf_upper(x) for c in self.children)
        return 0

    def superlevel_infimum(self, x: int, result: int) -> int:
        for child in self.children:
            if child.hi < x:
                result = max(result, child.hi)
            else:
                result = child.superlevel_infimum(x, result)
                break
        if self.hi < x and self.count > 0:
            result = max(result, self.hi)
        return result

    def sublevel_supremum(self, x: int, result: int) -> int:
        for child in reversed(self.children):
            if child.hi > x:
                result = min(result, child.hi)
            else:
                result = child.sublevel_supremum(x, result)
                break
        if self.hi > x and self.count > 0:
            result = min(result, self.hi)
        return result

    def pre_order(self, out: list[tuple[int, int, int]]) -> None:
        out.append((self.lo, self.hi, self.count))
        for child in self.children:
            child.pre_order(out)


def _merge(a: list[_Node], b: list[_Node]) -> list[_Node]:
    if not b:
        return a
    if not a:
        return list(b)
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        if b[j].post_key() < a[i].post_key():
            out.append(b[j])
            j += 1
        else:
            out.append(a[i])
            i += 1
    out.extend(a[i:])
    out.extend(b[j:])
    return out


class QDigest:
    """Approximate distribution of non-negative integer values in O(k) space."""

    def __init__(self, k: int, decay_rate: float = 0.0) -> None:
        self.k = k
        self.n = 0
        self.decay_rate = decay_rate
        self._root = _Node(0, 1, 0, 0)

    def add(self, value: int, n: int = 1) -> None:
        self.n += n
        expanded = self._root.expand(value)
        if expanded is not None:
            self._root = expanded
        leaf = self._root.insert(_Node(value, value, n, n))
        if expanded is not None or (self.n // self.k) != ((self.n - n) // self.k):
            self._compress_all()
        elif leaf.count == n:
            self._compress([leaf])

    def propagate_forwards_by_time(self, time: float) -> None:
        if time < 0.0:
            return
        alpha = math.exp(-self.decay_rate * time)
        self.n = self._root.age(alpha)
        self._compress_all()

    def _compress_all(self) -> None:
        for _ in range(3 * self.k + 2):
            nodes: list[_Node] = []
            self._root.post_order(nodes)
            if not self._compress(nodes):
                return

    def _compress(self, nodes: list[_Node]) -> bool:
        factor = self.n // self.k
        heap = [(node.span, node.hi, i, node) for i, node in enumerate(nodes)]
        heapq.heapify(heap)
        seq = len(heap)
        compressed = False
        while heap:
            node = heapq.heappop(heap)[3]
            parent = node.compress(factor)
            if parent is not None:
                compressed = True
                seq += 1
                heapq.heappush(heap, (parent.span, parent.hi, seq, parent))
        return compressed

    # queries -----------------------------------------------------------------------------
    def quantile(self, q: float) -> int:
        if self.n == 0:
            return 0
        n = int(q * self.n + 0.5)
        return self._root.quantile(0, n)

    def cdf(self, x: int) -> tuple[float, float]:
        """Bounds on the fraction of values <= x."""
        if self.n == 0:
            return 0.0, 0.0
        return self._root.cdf_lower(x) / self.n, self._root.cdf_upper(x) / self.n

    def pdf(self, x: int) -> tuple[float, float]:
        """Bounds on the fraction of values equal to x (spread over the resolution there)."""
        if self.n == 0:
            return 0.0, 0.0
        infimum = self._root.superlevel_infimum(x, 0)
        supremum = self._root.sublevel_supremum(x, UINT32_MAX)
        il, iu = self.cdf(infimum)
        sl, su = self.cdf(supremum)
        width = max(float(supremum - infimum), 1.0)
        return max(sl - iu, 0.0) / width, max(su - il, 0.0) / width

    def summary(self) -> list[tuple[int, int]]:
        """(value, cumulative count) pairs, as ``CQDigest::summary``."""
        if self.n == 0:
            return []
        nodes: list[_Node] = []
        self._root.post_order(nodes)
        result: list[tuple[int, int]] = []
        last = nodes[0].hi
        count = nodes[0].count
        for node in nodes[1:]:
            if node.hi != last:
                result.append((last, count))
                last = node.hi
            count += node.count
        if not result or result[-1][1] < count:
            result.append((self._root.hi, count))
        return result

    def nodes(self) -> list[tuple[int, int, int]]:
        """The tree, pre-order, as (min, max, count) (state and tests)."""
        out: list[tuple[int, int, int]] = []
        self._root.pre_order(out)
        return out

    def to_state(self) -> dict[str, Any]:
        return {"k": self.k, "n": self.n, "decay_rate": self.decay_rate, "nodes": self.nodes()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> QDigest:
        digest = cls(int(state["k"]), float(state["decay_rate"]))
        digest.n = int(state["n"])
        nodes = [tuple(int(v) for v in node) for node in state["nodes"]]
        if nodes:
            lo, hi, count = nodes[0]
            digest._root = _Node(lo, hi, count, count)
            for lo, hi, count in nodes[1:]:
                digest._root.insert(_Node(lo, hi, count, count))
        return digest
