"""python -m core.bench: the speed benchmark's command line (see core.bench.flags, core.bench.cli and
core.formatting.run_command)."""
from core.bench.flags import command

command()
