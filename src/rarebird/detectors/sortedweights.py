"""A sorted multiset of positive floats with prefix sums, for the rare model's category masses.

The rare detector needs, for a value x, the largest weight below x and the smallest at or above
it, each with the total mass of all weights up to it; and order statistics (the median). Weights
live in sorted blocks of at most ``2·BLOCK`` values (``array('d')``, 8 bytes each) with a
per-block sum; insert and remove touch one block (binary search, a short memmove) and the block
sums, so the cost per update is O(log n + BLOCK + n/BLOCK) with C-speed constants: flat in
practice up to millions of users, and no re-sort of every user each bucket.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right, insort

BLOCK = 512


class SortedWeights:
    def __init__(self) -> None:
        self._blocks: list[array[float]] = []
        self._maxes: list[float] = []
        self._sums: list[float] = []
        self._len = 0

    def __len__(self) -> int:
        return self._len

    @property
    def total(self) -> float:
        return math.fsum(self._sums)

    def add(self, value: float) -> None:
        if not self._blocks:
            self._blocks.append(array("d", [value]))
            self._maxes.append(value)
            self._sums.append(value)
            self._len = 1
            return
        i = bisect_left(self._maxes, value)
        if i == len(self._blocks):
            i -= 1
        block = self._blocks[i]
        insort(block, value)
        self._maxes[i] = block[-1]
        self._sums[i] = math.fsum(block)
        self._len += 1
        if len(block) > 2 * BLOCK:
            half = len(block) // 2
            left, right = block[:half], block[half:]
            self._blocks[i : i + 1] = [left, right]
            self._maxes[i : i + 1] = [left[-1], right[-1]]
            self._sums[i : i + 1] = [math.fsum(left), math.fsum(right)]

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
            return
        self._maxes[i] = block[-1]
        self._sums[i] = math.fsum(block)
        if len(block) < BLOCK // 4 and len(self._blocks) > 1:
            j = i + 1 if i + 1 < len(self._blocks) else i - 1
            lo, hi = min(i, j), max(i, j)
            merged = self._blocks[lo] + self._blocks[hi]
            self._blocks[lo : hi + 1] = [merged]
            self._maxes[lo : hi + 1] = [merged[-1]]
            self._sums[lo : hi + 1] = [math.fsum(merged)]

    def min(self) -> float:
        return self._blocks[0][0]

    def kth(self, k: int) -> float:
        """The k-th smallest value (0-based)."""
        for block in self._blocks:
            if k < len(block):
                return block[k]
            k -= len(block)
        raise IndexError(k)

    def median(self) -> float:
        n = self._len
        if n % 2:
            return self.kth(n // 2)
        return (self.kth(n // 2 - 1) + self.kth(n // 2)) / 2.0

    def mass_through(self, value: float) -> float:
        """Sum of all weights <= value."""
        i = bisect_right(self._maxes, value)
        before = math.fsum(self._sums[:i])
        if i < len(self._blocks):
            block = self._blocks[i]
            j = bisect_right(block, value)
            before += math.fsum(block[:j])
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
        base = math.fsum(self._sums[:i])
        # mass through w_r: every weight <= w_r
        k = bisect_right(block, w_r)
        mass_r = base + math.fsum(block[:k])
        if k == len(block):
            # equal weights may continue into following blocks
            t = i + 1
            while t < len(self._blocks) and self._blocks[t][0] == w_r:
                nxt = self._blocks[t]
                kk = bisect_right(nxt, w_r)
                mass_r += math.fsum(nxt[:kk])
                if kk < len(nxt):
                    break
                t += 1
        # the previous distinct weight
        if j > 0:
            w_prev = block[j - 1]
            mass_prev = base + math.fsum(block[:j])
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
            sw._sums.append(math.fsum(block))
        sw._len = len(ordered)
        return sw
