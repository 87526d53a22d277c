"""``python -m lstmkit`` runs the ``lstmkit`` command line."""

from lstmkit.cli import main

raise SystemExit(main())
