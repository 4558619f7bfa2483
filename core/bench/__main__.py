"""python -m core.bench: the speed benchmark's command line (see core.bench.flags, core.bench.cli and
core.formatting.run_command)."""
from core.formatting import run_command

run_command("core.bench.flags:build_parser", "core.bench.cli:run")
