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


def write_noise_survey(path: Path, n: int, batch: int, objects_per_file: int = 1_000_000) -> None:
    """A survey of n objects of pure sky noise (152-px g, r, z) with plausible catalog columns:
    what the I/O and embedding benchmarks read, where the pixels' content does not matter."""
    import numpy as np

    from ml.survey_writer import SurveyWriter

    rng = np.random.default_rng(0)
    with SurveyWriter(path, objects_per_file=objects_per_file) as writer:
        for lo in range(0, n, batch):
            m = min(batch, n - lo)
            writer.append(rng.normal(0, 0.01, (m, 3, 152, 152)).astype(np.float32), {
                "ra": rng.uniform(0, 360, m), "dec": rng.uniform(-20, 20, m),
                "ebv": rng.uniform(0, 0.1, m).astype(np.float32),
                "flux": rng.uniform(1, 100, (m, 3)).astype(np.float32),
                "psfsize": rng.uniform(1, 2, (m, 3)).astype(np.float32),
                "psfdepth": rng.uniform(100, 1000, (m, 3)).astype(np.float32),
            })
