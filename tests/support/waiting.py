"""Polling for what another process does: a run finishing, a checkpoint appearing."""
import time


def wait_for(condition, timeout=180, every=0.1):
    """condition's first truthy value, checked every `every` seconds; fails the test after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met in {timeout} s")
