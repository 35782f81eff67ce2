"""SIGKILL a job's driver mid-way, and check that nothing it started outlives it (used by the resume tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def driver_env() -> dict[str, str]:
    """The environment of a driver that starts its own local Ray (not the tests' one)."""
    return {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}


def kill_when(command: list[str], ready: Callable[[], bool], timeout: float = 180) -> None:
    """Run `command`, SIGKILL it once `ready()` holds, and check every process it started is gone."""
    from pipelines import reaper

    driver = subprocess.Popen(command, env=driver_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert driver.poll() is None and time.monotonic() < deadline, "the job ended before it was killed"
            time.sleep(0.05)
    except BaseException:
        # the job never got there: stop it and its Ray, so later tests do not share the CPUs with it
        reaper.kill(list(reaper.descendants(driver.pid)))
        driver.kill()
        driver.wait()
        raise
    started = reaper.descendants(driver.pid)  # raylet, GCS, agents, workers
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 30
    while reaper.still_running(started) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert reaper.still_running(started) == [], "processes of the killed job are still running"


def records_in(folder: Path) -> int:
    return len(list(folder.glob("*.json"))) if folder.exists() else 0


def kill_after_parts(command: list[str], output: Path, parts: int, of: int) -> None:
    """Kill a stage once `parts` of its `of` part records are written under `output/parts`; check it
    stopped short, then run it again to the end."""
    kill_when(command, lambda: records_in(output / "parts") >= parts)
    assert records_in(output / "parts") < of
    subprocess.run(
        command, env=driver_env(), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
