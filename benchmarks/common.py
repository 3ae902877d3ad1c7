"""Small helpers the benchmark scripts share: memory readings, package versions, child runs."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version


def status_mb(key: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM, ...), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def run_child(script: str, *args: str) -> dict:
    """Run ``python script args`` in a fresh process (its own peak memory); the JSON object on
    the last line of its standard output. Its standard error (progress) passes through."""
    out = subprocess.run([sys.executable, script, *args], check=True, stdout=subprocess.PIPE,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
