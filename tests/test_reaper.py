"""pipelines.reaper: what a driver started dies with it, whether the driver is killed or exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pipelines import reaper

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="the reaper reads /proc (Linux)")

# A driver that starts the reaper, then a child that starts a grandchild (both sleeping, named as Ray
# names its processes), and a third child of its own that is not Ray's; it reports their pids. The
# grandchild is in its own session, as Ray's agents are not the driver's children.
DRIVER = """
import subprocess, sys, time
from pipelines import reaper
reaper.watch()
child = subprocess.Popen(["bash", "-c", "exec -a ray::child python3 -c 'import subprocess, time; "
    "p = subprocess.Popen([\\"bash\\", \\"-c\\", \\"exec -a ray::agent sleep 120\\"], start_new_session=True); "
    "print(p.pid, flush=True); time.sleep(120)'"], stdout=subprocess.PIPE, text=True)
other = subprocess.Popen(["sleep", "120"], start_new_session=True)
print(child.pid, child.stdout.readline().strip(), other.pid, flush=True)
time.sleep(float(sys.argv[1]))
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _start(seconds: float) -> tuple[subprocess.Popen, list[int], int]:
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(seconds)], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    *pids, other = [int(p) for p in driver.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(p) for p in [*pids, other])
    time.sleep(1.5)  # one reaper poll sees them
    return driver, pids, other


def _wait_dead(pids: list[int], seconds: float = 15.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    return [p for p in pids if _alive(p)]


def test_descendants_lists_children_and_grandchildren():
    driver, pids, other = _start(60)
    try:
        assert set(pids) <= set(reaper.descendants(driver.pid))
    finally:
        driver.kill()
        driver.wait()
    assert _wait_dead(pids) == []
    os.kill(other, signal.SIGKILL)


def test_a_killed_driver_takes_its_ray_processes_with_it_and_nothing_else():
    driver, pids, other = _start(60)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    assert _wait_dead(pids) == []
    assert _alive(other)  # a child of the driver that is not Ray's
    os.kill(other, signal.SIGKILL)


def test_a_driver_that_exits_leaves_nothing_running():
    driver, pids, other = _start(2.5)  # its reaper has seen both by then
    driver.wait()
    assert _wait_dead(pids) == []
    os.kill(other, signal.SIGKILL)
