"""What every benchmark records beside its numbers: the machine, the package versions, the settings.

>>> result = {"machine": machine_info(), "versions": versions(), "settings": {...}, "results": [...]}
>>> write_result("index", result)     # prints it and writes benchmarks/results/index.json
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("elq", "torch", "transformers", "ray", "faiss-cpu", "pyarrow", "numpy")


def machine_info() -> dict[str, Any]:
    """CPU model and count, memory, OS, Python, and the load average when the run started (the machine may
    be shared: a high load means the timings are pessimistic)."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def longest_matches(
    text: str,
    word_pattern: str,
    max_words: int,
    match: Callable[[str, int, int, int], tuple[int, Any] | None],
) -> list[tuple[int, int, Any]]:
    """Dictionary matching, left to right: at each word, the longest run of up to `max_words` words
    (`word_pattern`) for which `match(text, start, end, words)` gives `(end, value)` (it may move the
    end); the text continues after the match, else after the word. Returns `(start, end, value)`."""
    words = [(m.start(), m.end()) for m in re.finditer(word_pattern, text)]
    found, i = [], 0
    while i < len(words):
        for n in range(min(max_words, len(words) - i), 0, -1):
            start = words[i][0]
            hit = match(text, start, words[i + n - 1][1], n)
            if hit is not None:
                found.append((start, *hit))
                i += n
                break
        else:
            i += 1
    return found


def peak_rss_mib() -> float:
    """Peak resident memory of this process (children excluded), MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class PeakMemory:
    """Samples the resident memory of this process and all its descendants (a local Ray's raylet, workers and
    actors) in a thread; `peak_mib` is the highest total seen, `peak_process_mib` the largest single process.

        >>> with PeakMemory() as memory:
        ...     run(...)
        >>> memory.peak_mib
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.interval, self.peak_mib, self.peak_process_mib = interval, 0.0, 0.0
        self._stop = None

    def __enter__(self) -> PeakMemory:
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            sizes = [_rss(pid) for pid in _descendants(os.getpid())]
            sizes = [x for x in sizes if x]
            if sizes:
                self.peak_mib = max(self.peak_mib, round(sum(sizes) / 2**20, 1))
                self.peak_process_mib = max(self.peak_process_mib, round(max(sizes) / 2**20, 1))
            self._stop.wait(self.interval)


def _descendants(root: int) -> list[int]:
    """`root` and every process under it, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def write_result(
    name: str, settings: dict[str, Any], results: Any, machine: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Print the result as JSON and write it to `benchmarks/results/<name>.json`.

    Pass `machine` as taken when the run started: its load average is the one that matters.
    """
    result = {
        "benchmark": name,
        "machine": machine or machine_info(),
        "versions": versions(),
        "settings": settings,
        "results": results,
    }
    text = json.dumps(result, indent=2, default=str)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(text + "\n")
    return result
