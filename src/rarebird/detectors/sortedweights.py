"""A sorted multiset of positive floats with prefix sums, for the rare model's category masses.

The rare detector needs, for a value x, the largest weight below x and the smallest at or above
it, each with the total mass of all weights up to it; and order statistics (the median). Weights
live in short sorted blocks (``array('d')``, 8 bytes a value, at most ``2·BLOCK`` each); a
Fenwick tree over the blocks' sums and sizes answers prefix masses and ranks in O(log n).
Insert and remove touch one block (binary search and a short memmove) and O(log n) tree nodes,
so each update costs O(log n) with small constants, and no user is ever re-sorted.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right, insort

BLOCK = 64
#: Rebuild the tree from exact block sums after this many incremental updates.
_REBUILD_EVERY = 4096


class SortedWeights:
    def __init__(self) -> None:
        self._blocks: list[array[float]] = []
        self._maxes: list[float] = []
        self._sums: list[float] = []
        self._len = 0
        self._tree_sum: list[float] = [0.0]
        self._tree_len: list[int] = [0]
        self._updates = 0

    def __len__(self) -> int:
        return self._len

    # --- the Fenwick tree over blocks -----------------------------------------------------
    def _rebuild(self) -> None:
        n = len(self._blocks)
        tree_sum = [0.0] * (n + 1)
        tree_len = [0] * (n + 1)
        for i in range(n):
            j = i + 1
            tree_sum[j] += self._sums[i]
            tree_len[j] += len(self._blocks[i])
            parent = j + (j & -j)
            if parent <= n:
                tree_sum[parent] += tree_sum[j]
                tree_len[parent] += tree_len[j]
        self._tree_sum = tree_sum
        self._tree_len = tree_len
        self._updates = 0

    def _tree_add(self, i: int, d_sum: float, d_len: int) -> None:
        self._updates += 1
        if self._updates >= _REBUILD_EVERY:
            self._rebuild()
            return
        j = i + 1
        n = len(self._blocks)
        tree_sum = self._tree_sum
        tree_len = self._tree_len
        while j <= n:
            tree_sum[j] += d_sum
            tree_len[j] += d_len
            j += j & -j

    def _prefix(self, i: int) -> float:
        """Sum of blocks [0, i)."""
        total = 0.0
        tree = self._tree_sum
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total

    @property
    def total(self) -> float:
        return self._prefix(len(self._blocks))

    # --- updates -------------------------------------------------------------------------
    def add(self, value: float) -> None:
        if not self._blocks:
            self._blocks.append(array("d", [value]))
            self._maxes.append(value)
            self._sums.append(value)
            self._len = 1
            self._rebuild()
            return
        i = bisect_left(self._maxes, value)
        if i == len(self._blocks):
            i -= 1
        block = self._blocks[i]
        insort(block, value)
        self._maxes[i] = block[-1]
        old = self._sums[i]
        self._sums[i] = new = sum(block)
        self._len += 1
        if len(block) > 2 * BLOCK:
            half = len(block) // 2
            left, right = block[:half], block[half:]
            self._blocks[i : i + 1] = [left, right]
            self._maxes[i : i + 1] = [left[-1], right[-1]]
            self._sums[i : i + 1] = [sum(left), sum(right)]
            self._rebuild()
        else:
            self._tree_add(i, new - old, 1)

    def remove(self, value: float) -> None:
        i = bisect_left(self._maxes, value)
        if i == len(self._blocks):
            raise KeyError(value)
        block = self._blocks[i]
        j = bisect_left(block, value)
        if j == len(block) or block[j] != value:
            raise KeyError(value)
        del block[j]
        self._len -= 1
        if not block:
            del self._blocks[i], self._maxes[i], self._sums[i]
            self._rebuild()
            return
        self._maxes[i] = block[-1]
        old = self._sums[i]
        self._sums[i] = new = sum(block)
        if len(block) < BLOCK // 4 and len(self._blocks) > 1:
            k = i + 1 if i + 1 < len(self._blocks) else i - 1
            lo, hi = min(i, k), max(i, k)
            merged = self._blocks[lo] + self._blocks[hi]
            self._blocks[lo : hi + 1] = [merged]
            self._maxes[lo : hi + 1] = [merged[-1]]
            self._sums[lo : hi + 1] = [sum(merged)]
            self._rebuild()
        else:
            self._tree_add(i, new - old, -1)

    # --- queries -------------------------------------------------------------------------
    def min(self) -> float:
        return self._blocks[0][0]

    def kth(self, k: int) -> float:
        """The k-th smallest value (0-based)."""
        if not 0 <= k < self._len:
            raise IndexError(k)
        # descend the tree to the block holding position k
        pos = 0
        n = len(self._blocks)
        step = 1 << n.bit_length()
        tree_len = self._tree_len
        while step:
            nxt = pos + step
            if nxt <= n and tree_len[nxt] <= k:
                pos = nxt
                k -= tree_len[nxt]
            step >>= 1
        return self._blocks[pos][k]

    def median(self) -> float:
        n = self._len
        if n % 2:
            return self.kth(n // 2)
        return (self.kth(n // 2 - 1) + self.kth(n // 2)) / 2.0

    def mass_through(self, value: float) -> float:
        """Sum of all weights <= value."""
        i = bisect_right(self._maxes, value)
        before = self._prefix(i)
        if i < len(self._blocks):
            block = self._blocks[i]
            before += sum(block[: bisect_right(block, value)])
        return before

    def neighbours(self, x: float) -> tuple[float, float, float, float, bool]:
        """For x: (w_prev, mass through w_prev, w_r, mass through w_r, found).

        ``w_r`` is the smallest weight >= x (or the largest weight when none is, with
        ``found`` False); ``w_prev`` the weight just below it (0, 0 when there is none).
        Masses include every weight equal to the one named.
        """
        i = bisect_left(self._maxes, x)
        found = i < len(self._blocks)
        if not found:
            i = len(self._blocks) - 1
            block = self._blocks[i]
            j = len(block) - 1
        else:
            block = self._blocks[i]
            j = bisect_left(block, x)
        w_r = block[j]
        base = self._prefix(i)
        below = sum(block[:j])
        # mass through w_r: every weight <= w_r (equal weights may run into later blocks)
        k = bisect_right(block, w_r, j)
        mass_r = base + below + sum(block[j:k])
        if k == len(block):
            t = i + 1
            while t < len(self._blocks) and self._blocks[t][0] == w_r:
                nxt = self._blocks[t]
                kk = bisect_right(nxt, w_r)
                mass_r += sum(nxt[:kk])
                if kk < len(nxt):
                    break
                t += 1
        if j > 0:
            w_prev = block[j - 1]
            mass_prev = base + below
        elif i > 0:
            w_prev = self._blocks[i - 1][-1]
            mass_prev = base
        else:
            w_prev, mass_prev = 0.0, 0.0
        return w_prev, mass_prev, w_r, mass_r, found

    def to_list(self) -> list[float]:
        return [v for block in self._blocks for v in block]

    @classmethod
    def from_values(cls, values: list[float]) -> SortedWeights:
        sw = cls()
        ordered = sorted(values)
        for start in range(0, len(ordered), BLOCK):
            block = array("d", ordered[start : start + BLOCK])
            sw._blocks.append(block)
            sw._maxes.append(block[-1])
            sw._sums.append(sum(block))
        sw._len = len(ordered)
        sw._rebuild()
        return sw
