"""`python -m otel_aitrack.cli`: the `otel-aitrack` command."""

from . import main

raise SystemExit(main())
