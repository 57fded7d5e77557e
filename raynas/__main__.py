"""``python -m raynas`` runs the CLI."""

from __future__ import annotations

import sys

from raynas.cli.main import main

sys.exit(main())
