"""`ray start --head` -> `ray job submit --working-dir . -- python -m pipelines.build_index ...` -> check -> stop.

The head runs with `--block` in its own process group on free ports and its own temp dir, and is stopped by
signalling that process (which takes its raylet, GCS and dashboard down with it): `ray stop` would stop every
Ray on the machine, including other people's. The job API needs the dashboard, i.e. `ray[default]`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.ray]

REPO = Path(__file__).resolve().parent.parent
PORT_OPTIONS = (
    "--port",
    "--dashboard-port",
    "--ray-client-server-port",
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--metrics-export-port",
    "--runtime-env-agent-port",
)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def head():
    """A local single-node Ray cluster with the dashboard (job server); yields its job API address."""
    pytest.importorskip("aiohttp", reason="`ray job submit` needs the dashboard: pip install 'ray[default]'")
    ports = dict(zip(PORT_OPTIONS, free_ports(len(PORT_OPTIONS)), strict=True))
    temp_dir = tempfile.mkdtemp(prefix="rayjob-", dir="/tmp")  # short: Ray's socket paths have a length limit
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    args = [
        sys.executable,
        "-m",
        "ray.scripts.scripts",
        "start",
        "--head",
        "--block",
        "--num-cpus=2",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--temp-dir={temp_dir}",
        "--min-worker-port=0",
        "--max-worker-port=0",
    ]
    args += [f"{option}={port}" for option, port in ports.items()]
    log = open(os.path.join(temp_dir, "head.log"), "w")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{ports['--dashboard-port']}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{address}/api/version", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.time() > deadline:
                log.flush()
                pytest.fail("ray head did not start:\n" + Path(temp_dir, "head.log").read_text()[-3000:])
            time.sleep(1)
        yield {"address": address, "env": env}
    finally:
        process.send_signal(signal.SIGTERM)  # `ray start --block` shuts its node down on SIGTERM
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.mark.timeout(300)
def test_job_submit_builds_an_index(head, tmp_path):
    from elcore.embeddings import EmbeddingsManifest, write_embeddings_part, write_manifest
    from elcore.index import exact_search, load_index

    vectors = np.random.default_rng(0).standard_normal((200, 16)).astype(np.float32)
    emb, out = str(tmp_path / "emb"), str(tmp_path / "index")
    parts = [
        write_embeddings_part(
            emb,
            f"part-{i:05d}",
            np.arange(lo, lo + 100),
            [f"E{r}" for r in range(lo, lo + 100)],
            [None] * 100,
            vectors[lo : lo + 100],
            "float32",
        )
        for i, lo in enumerate((0, 100))
    ]
    write_manifest(emb, EmbeddingsManifest("m", "c", 16, "float32", 200, parts))
    command = [
        sys.executable,
        "-m",
        "ray.scripts.scripts",
        "job",
        "submit",
        "--address",
        head["address"],
        "--working-dir",
        str(REPO),
        "--",
        "python",
        "-m",
        "pipelines.build_index",
        "--embeddings",
        emb,
        "--output",
        out,
        "--num-shards",
        "2",
        "--cpus-per-task",
        "0.5",
    ]
    result = subprocess.run(command, env=head["env"], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    summary = json.loads("\n".join(lines[lines.index("{") : lines.index("}") + 1]))  # the job prints it
    assert summary["shards"] == 2 and summary["ntotal"] == 200
    queries = vectors[:5] + 0.01
    np.testing.assert_array_equal(
        load_index(out).search(queries, 3).ids, exact_search(vectors, queries, 3).ids
    )
