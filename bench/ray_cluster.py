"""A real Ray cluster on this machine (a head and worker nodes, each its own raylet), for tests and benches.

Ray >= 2.50 turns token authentication on for ``ray start --head``; every process of the cluster and
every driver gets the same random token through ``RAY_AUTH_TOKEN``. Ray 2.60's GCS listens on all
interfaces whatever ``--node-ip-address`` says (measured with ``ss -ltn``), so the token, not the
binding, is what keeps other hosts out.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from bench.web_load import free_port


def ray_command() -> str:
    return str(Path(sys.executable).with_name("ray"))


@contextlib.contextmanager
def local_cluster(nodes: int = 2, cpus_per_node: int = 1, env: dict | None = None) -> Iterator[tuple[str, dict]]:
    """Start a head and ``nodes - 1`` worker nodes; yield (address, environment for drivers); stop them."""
    env = {**os.environ, **(env or {}), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
           "RAY_USAGE_STATS_ENABLED": "0"}
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--node-ip-address=127.0.0.1", f"--num-cpus={cpus_per_node}", "--num-gpus=0", "--disable-usage-stats"]
    try:
        _start([ray_command(), "start", "--head", f"--port={port}", "--include-dashboard=false", *common], env)
        for _ in range(nodes - 1):
            _start([ray_command(), "start", f"--address={address}", *common], env)
        yield address, env
    finally:
        subprocess.run([ray_command(), "stop", "--force"], env=env, capture_output=True, timeout=120)


def _start(cmd: list[str], env: dict) -> None:
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
