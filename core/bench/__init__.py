"""Speed of teacher and students, measured the way the DeepPavlov model card did: python -m core.bench --help

The rooms: plan (settings, validation, estimates), variants (reference and fast paths, their check, timing),
engine (the measurement loop), report (the card comparison and result files), profile (where the time goes),
machine (what hardware this is) and cli (the command line).
"""
from core.bench.engine import *  # noqa: F401,F403
from core.bench.engine import __all__  # noqa: F401
