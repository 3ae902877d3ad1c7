"""Small helpers the benchmark scripts share: memory readings, package versions, child runs."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


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


def write_results(name: str, record: dict, quick: bool) -> Path:
    """Write ``benchmarks/results/<name>.json`` (``<name>_quick.json`` in quick mode, so that a
    quick check never replaces a full run's figures) whole or not at all; print where."""
    path = RESULTS / (f"{name}_quick.json" if quick else f"{name}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(record, indent=1) + "\n")
    partial.replace(path)
    print(f"wrote {path.relative_to(RESULTS.parents[1])}")
    return path
