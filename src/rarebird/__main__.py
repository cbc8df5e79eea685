"""``python -m rarebird``: the same as the ``rarebird`` command."""

from __future__ import annotations

from rarebird.cli import main

if __name__ == "__main__":
    main()
