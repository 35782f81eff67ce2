"""What more than one Ray stage needs, written once: start or join Ray, size actor pools, list inputs,
turn work units into a Ray dataset, claim an output for a job, and progress with an ETA (the options a
stage's config becomes: `pipelines.options`).

Ray is imported inside the functions that need it, so importing this module (as `elq --help` does) is cheap.

    >>> init_ray()                                   # joins $RAY_ADDRESS (a `ray job`), else a local Ray
    >>> plan = plan_actors(num_actors=2)             # 2 actors, CPUs left over for read/write tasks
    >>> prepare_output(url, job={"model": fp}, overwrite=False)   # True: a re-run of the same job
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from elcore import fs
from elcore.errors import ConfigError

from . import reaper

log = logging.getLogger(__name__)

JOB_FILE = "_job.json"
# Read, parse and write tasks ask for a quarter CPU.
IO_TASK_CPUS = 0.25
# CPUs kept free of actors. Ray Data's own tasks (the re-partition after reading) ask for a whole CPU: when the
# actor pool holds more than all CPUs but one, they are never scheduled and the job waits forever, no error.
RESERVED_CPUS = 1.0


# -- Ray ---------------------------------------------------------------------------------------------------


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join a running cluster or start a local Ray.

    Args:
        address: a cluster address, or "auto" for the `ray start` cluster on this machine. None: $RAY_ADDRESS
            when set (as it is inside `ray job submit`), else a new local Ray with `num_cpus` (default: all, at
            least 2).
    """
    import ray
    from ray.data import DataContext

    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address)
        else:
            # at least 2 CPU slots: one for actors, one for Ray Data's own tasks (see RESERVED_CPUS)
            # address="local": a new instance, even when a `ray start` cluster runs on this machine (plain
            # ray.init() would join it and refuse num_cpus)
            ray.init(
                address="local", num_cpus=num_cpus or max(2, os.cpu_count() or 1), include_dashboard=False
            )
            reaper.watch()  # Ray's agents would outlive a killed driver
    DataContext.get_current().enable_progress_bars = False  # `track` prints one bar with an ETA instead


@dataclass(frozen=True)
class ActorPlan:
    """How many actors a stage runs and what each asks Ray for (arguments of `map_batches`)."""

    num_actors: int
    num_cpus: float
    num_gpus: float
    torch_threads: int

    def remote_args(self) -> dict[str, float]:
        return {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}

    def pool(self, units: int):
        """`compute=` for `map_batches`: a fixed pool, never more actors than work units."""
        from ray.data import ActorPoolStrategy

        return ActorPoolStrategy(size=max(1, min(self.num_actors, units)))


@dataclass
class ActorResources:
    """What a stage's model actors ask Ray for; a field of each stage config that runs a model.

    Args:
        num_actors: model actors (default: one per GPU or CPU).
        cpus_per_actor: CPUs each actor asks Ray for (default: as many as fit).
        use_gpu: one GPU per actor.
        torch_threads: torch threads per actor (default: CPUs/actors).
    """

    num_actors: int | None = None
    cpus_per_actor: float | None = None
    use_gpu: bool = False
    torch_threads: int | None = None

    def plan(self) -> ActorPlan:
        return plan_actors(self.num_actors, self.cpus_per_actor, self.use_gpu, self.torch_threads)


def plan_actors(
    num_actors: int | None = None,
    cpus_per_actor: float | None = None,
    use_gpu: bool = False,
    torch_threads: int | None = None,
) -> ActorPlan:
    """Size an actor pool for the cluster Ray is connected to.

    With GPUs: one actor per GPU unless told otherwise, `num_gpus=1` each. On CPUs: as many 1-CPU actors as fit
    beside `RESERVED_CPUS`; when the requested actors do not fit, each asks for a fraction instead (Ray's CPU
    count is a scheduling token, the threads an actor runs are `torch_threads`). `torch_threads` defaults to
    the cluster's CPUs shared out over the actors, at most one node's CPUs.

    Raises:
        ConfigError: GPUs asked for on a cluster without any, or a count below 1.
    """
    import ray

    resources = ray.cluster_resources()
    total_cpus = float(resources.get("CPU", 1.0))
    node_cpus = max(
        [float(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")] or [total_cpus]
    )
    if num_actors is not None and num_actors < 1:
        raise ConfigError(f"num_actors must be >= 1, got {num_actors}")
    if use_gpu:
        gpus = int(resources.get("GPU", 0))
        if gpus < 1:
            raise ConfigError(
                "use_gpu is set but the Ray cluster has no GPU; drop --use-gpu or add GPU workers"
            )
        actors = num_actors or gpus
        cpus = cpus_per_actor or 1.0
        threads = torch_threads or max(1, int(cpus))
        return ActorPlan(actors, cpus, 1.0, threads)
    if total_cpus <= RESERVED_CPUS:
        raise ConfigError(
            f"the Ray cluster has {total_cpus:g} CPU; the pipelines need more than {RESERVED_CPUS:g} "
            "(start Ray with num_cpus=2 or more: CPUs are scheduling slots, not cores)"
        )
    usable = total_cpus - RESERVED_CPUS
    cpus = cpus_per_actor or 1.0
    actors = num_actors or max(1, int(usable // cpus))
    if actors * cpus > usable:
        cpus = round(usable / actors, 3)
        log.info(
            "%d actors do not fit %.1f CPUs at %.2f each: each asks for %.3f",
            actors,
            total_cpus,
            cpus_per_actor or 1.0,
            cpus,
        )
    threads = torch_threads or max(1, min(int(node_cpus), round(total_cpus / actors)))
    return ActorPlan(actors, cpus, 0.0, threads)


def dataset_of(units: Sequence[dict[str, Any]]):
    """A Ray dataset with one block per work unit, so the units spread over every actor of a pool."""
    import ray

    return ray.data.from_items(list(units), override_num_blocks=max(1, len(units)))


def spread(dataset):
    """Re-partition to one row per block: a file read as one block then feeds all actors, not one."""
    return dataset.repartition(target_num_rows_per_block=1)


# -- inputs and resumable outputs ---------------------------------------------------------------------------


def list_files(url: str, suffixes: Sequence[str]) -> list[tuple[str, int]]:
    """`(url, size in bytes)` of `url` itself if it is a file, else of the files under it ending in one of
    `suffixes`, sorted by path. URLs keep their protocol (`s3://...`); local ones are plain paths.

    Raises:
        ConfigError: nothing at `url`, or a folder without matching files.
    """
    filesystem, path = fs.filesystem(url)
    if not filesystem.exists(path):
        raise ConfigError(f"input not found: {url}")
    if not filesystem.isdir(path):
        return [(url, int(filesystem.size(path)))]
    local = "file" in (
        filesystem.protocol if isinstance(filesystem.protocol, tuple) else (filesystem.protocol,)
    )
    found = filesystem.find(path, detail=True)
    files = sorted(
        (p, int(info.get("size") or 0)) for p, info in found.items() if p.endswith(tuple(suffixes))
    )
    if not files:
        raise ConfigError(f"{url}: a folder with no {', '.join(suffixes)} files")
    return [(p if local else filesystem.unstrip_protocol(p), size) for p, size in files]


def part_name(*numbers: int) -> str:
    """`part-00003-00012`: named by the input shard it covers, so a re-run overwrites instead of adding."""
    return "part-" + "-".join(f"{n:05d}" for n in numbers)


def prepare_output(url: str, job: dict[str, Any], overwrite: bool) -> bool:
    """Claim `url` for this job; True when it already holds this job's output (a re-run resumes it).

    The job description (fingerprints of model, catalogue, inputs and settings) is kept in `_job.json`. Output
    left by a different job is an error unless `overwrite`, which deletes it first (as it deletes this job's
    output: `overwrite` always starts afresh).

    Raises:
        ConfigError: `url` holds another job's output and `overwrite` is false.
    """
    job_url = fs.join(url, JOB_FILE)
    normalised = json.loads(json.dumps(job, sort_keys=True, default=str))
    previous = fs.read_json(job_url) if fs.exists(job_url) else None
    if previous is not None and previous != normalised and not overwrite:
        changed = sorted(k for k in set(previous) | set(normalised) if previous.get(k) != normalised.get(k))
        raise ConfigError(
            f"{url} holds output of a different job (changed: {', '.join(changed)}); "
            "pass --overwrite to replace it, or choose another output"
        )
    if overwrite and fs.remove(url):
        log.warning("--overwrite: deleted %s", url)
        previous = None
    fs.makedirs(url)
    if previous is None:
        fs.write_json_atomic(job_url, normalised)
    return previous is not None


def model_fingerprint(model_dir: str) -> dict[str, Any]:
    """What a saved model's outputs depend on, from its `elq_config.json` (no weights loaded)."""
    config_url = fs.join(model_dir, "elq_config.json")
    if not fs.exists(config_url):
        raise ConfigError(f"{model_dir}: no elq_config.json; pass a model or linker directory")
    config = fs.read_json(config_url)
    return {
        "entity_fingerprint": config.get("entity_fingerprint", ""),
        "dim": int(config.get("hidden_size", 0)),
        "config": fs.fingerprint(
            json.dumps({k: v for k, v in config.items() if k != "versions"}, sort_keys=True)
        ),
    }


# -- progress ------------------------------------------------------------------------------------------------


def finished(refs: list) -> Iterator[Any]:
    """The results of Ray tasks `refs` in the order they finish."""
    import ray

    remaining = list(refs)
    while remaining:
        done, remaining = ray.wait(remaining, num_returns=1)
        yield ray.get(done[0])


def track(
    rows: Iterable[dict[str, Any]],
    desc: str,
    total: float,
    weight: str | None = None,
    count: str | None = None,
    skipped: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield `rows` (one per finished work unit) while showing progress, rate and ETA on stderr.

    Args:
        rows: one row per finished unit.
        total: the total work: units, or 1.0 when `weight` gives each unit's share of the input.
        weight: column holding a unit's share of `total` (default: each unit counts 1).
        count: column whose values add up to the items shown beside the bar (documents, entities).
        skipped: column that is true for units a re-run skipped; they count as done but not in the rate.

    On a terminal this is a tqdm bar; in job logs a line every 30 s and at the end.
    """
    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()
    bar = tqdm(
        total=round(100 * total, 2) if weight else total,
        desc=desc,
        unit="%" if weight else "part",
        disable=not interactive,
        file=sys.stderr,
    )
    started = last = time.perf_counter()
    worked = passed = 0.0
    items = 0
    for row in rows:
        share = float(row[weight]) if weight else 1.0
        if skipped and row.get(skipped):
            passed += share
        else:
            worked += share
        items += int(row.get(count) or 0) if count else 0
        bar.update(round(100 * share, 4) if weight else 1)
        if count:
            bar.set_postfix({count: items}, refresh=False)
        now = time.perf_counter()
        if not interactive and now - last > 30:
            _report(
                desc,
                worked + passed,
                total,
                items,
                count,
                (now - started) / max(worked, 1e-9) * max(0.0, total - worked - passed),
            )
            last = now
        yield row
    if not interactive:
        _report(desc, worked + passed, total, items, count, 0.0)
    bar.close()


def _report(desc: str, done: float, total: float, items: int, count: str | None, eta: float) -> None:
    shown = f"{100 * done / max(total, 1e-9):.1f}%"
    print(
        f"{desc}: {shown}" + (f", {items} {count}" if count else "") + f", eta {eta:.0f}s",
        file=sys.stderr,
        flush=True,
    )
