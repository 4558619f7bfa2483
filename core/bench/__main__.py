"""python -m core.bench: the speed benchmark's command line (see core.bench.cli)."""
import sys

from core.bench.cli import main

sys.exit(main())
