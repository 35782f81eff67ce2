"""Fate-sharing for a local Ray: when the driver dies, however it dies, what it started dies too.

A SIGKILLed driver takes its raylet and GCS with it, but Ray's dashboard and runtime-env agents
live on: they notice the raylet is gone, then block publishing that to the dead GCS. `watch()`
starts this module as a detached process that keeps a list of the driver's Ray descendants (pid
and start time, from /proc; a process is Ray's when its command line names Ray: `raylet`,
`gcs_server`, `ray::...` workers and agents) and, once the driver's pipe closes or the driver is
gone, SIGKILLs those still running. Other children of the driver are never touched. Linux only;
elsewhere `watch` does nothing.

    >>> ray.init(...)        # a local Ray started by this process
    >>> reaper.watch()
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

GRACE_SECONDS = 2.0  # after a normal exit, Ray's own shutdown gets this long first
POLL_SECONDS = 1.0
_PIPES: list[int] = []  # write ends held open for the driver's lifetime; the OS closes them at its end


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, start time in clock ticks) of every live process (zombies, dead but not yet
    reaped by their parent, are left out)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
        if fields[0] == "Z":
            continue
        found[int(entry)] = (int(fields[1]), int(fields[19]))
    return found


def _is_ray(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read().replace(b"\0", b" ")
    except OSError:
        return False
    return b"ray::" in command or b"/ray/" in command


def descendants(pid: int, processes: dict[int, tuple[int, int]] | None = None) -> dict[int, int]:
    """The processes below `pid` (children, their children, ...): pid -> start time (from one scan
    of /proc, or of `processes`)."""
    processes = _processes() if processes is None else processes
    children: dict[int, list[int]] = {}
    for child, (parent, _) in processes.items():
        children.setdefault(parent, []).append(child)
    found, frontier = {}, [pid]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in found:
                found[child] = processes[child][1]
                frontier.append(child)
    return found


def still_running(known: dict[int, int]) -> list[int]:
    """The pids of `known` (pid -> start time) still running: not a new process that reused the pid."""
    alive = _processes()
    return [pid for pid, started in known.items() if pid in alive and alive[pid][1] == started]


def kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def watch() -> subprocess.Popen | None:
    """Start the reaper for this process: after this process ends, it kills the Ray processes it
    started that are still running, then stops."""
    if not os.path.isdir("/proc"):
        return None
    read_end, write_end = os.pipe()
    started = _processes()[os.getpid()][1]
    reaper = subprocess.Popen(  # the file itself: it needs the standard library only, not an install
        [sys.executable, os.path.abspath(__file__), str(os.getpid()), str(started)],
        stdin=read_end,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not in the driver's process group: a Ctrl-C does not stop it first
    )
    os.close(read_end)
    _PIPES.append(write_end)  # not inheritable (PEP 446): EOF at the reaper means this process is gone
    return reaper


def _close_pipes_in_child() -> None:
    """A forked child must not hold the pipe open: the reaper would wait for it, not the driver."""
    while _PIPES:
        os.close(_PIPES.pop())


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_pipes_in_child)


def main(driver: int, driver_started: int) -> None:
    me, known = os.getpid(), {}
    while True:
        processes = _processes()
        if processes.get(driver, (0, None))[1] != driver_started:  # gone, or its pid reused
            break
        for pid, started in descendants(driver, processes).items():
            if pid != me and _is_ray(pid):
                known[pid] = started
        readable, _, _ = select.select([sys.stdin], [], [], POLL_SECONDS)
        if readable and not os.read(sys.stdin.fileno(), 1):
            break
    time.sleep(GRACE_SECONDS)
    kill(still_running(known))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
