"""The rule that picks Hyperscan or a format's own search (``multipattern.faster``)."""

from __future__ import annotations

import time

from rarebird.sources.multipattern import faster


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_a_clearly_cheaper_search_is_faster() -> None:
    assert faster(lambda: _burn(0.02), lambda: _burn(0.002))
    assert not faster(lambda: _burn(0.002), lambda: _burn(0.02))


def test_time_spent_off_the_cpu_does_not_count() -> None:
    # A search descheduled while other processes use the cores (a --workers run) waits on the
    # wall clock without working; the choice must follow the work. 50 ms of waiting and no
    # work is not slower than 5 ms of work (on the wall clock it is ten times slower).
    assert not faster(lambda: time.sleep(0.05), lambda: _burn(0.005))
