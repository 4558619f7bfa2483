"""Skipping a test whose runtime (ONNX Runtime, OpenVINO) cannot run here, with the reason."""
import pytest

from core.bench.runtimes import why_not


def needs(mode: str) -> None:
    """Skip the calling test, naming why, when benchmark mode `mode` cannot run on this machine."""
    why = why_not(mode)
    if why:
        pytest.skip(f"{mode} cannot run here: {why}")
