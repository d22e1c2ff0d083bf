"""``python -m talking_heads.cli``: the ``talking-heads`` command."""

from talking_heads.cli import main

raise SystemExit(main())
