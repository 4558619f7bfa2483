"""Helpers the tests share: tiny models and corpus lines (models), the distillation command line (cli), and polling
for what another process does (waiting). Fixtures live in tests/conftest.py."""
