"""A tiny but real pipeline preset for tests (the pipeline's and the demo's)."""

from __future__ import annotations

from pathlib import Path

from ml.simulate.driver import simulate_survey

N_OBJECTS = 32
SIZE = 48
SEED = 3


def simulate_tiny(out: Path) -> Path:
    """The survey of :func:`tiny_toml` (32 simulated objects of 48 px)."""
    simulate_survey(out, N_OBJECTS, seed=SEED, workers=1, size=SIZE, progress=False)
    return out


def tiny_toml(root: Path, **tables: dict) -> Path:
    """A preset for the smallest real pipeline under ``root`` (survey, run, outputs)."""
    sections = {
        "simulate": {"n": N_OBJECTS, "seed": SEED, "size": SIZE, "workers": 1},
        "pipeline": {"model": ""},
        "embed": {"batch_size": 8, "chunk_size": 8, "workers": 0, "device": "cpu"},
        "index": {"k": 10, "kind": "flat"},
        "evaluate": {"n_sample": N_OBJECTS, "queries_per_class": 4, "depth": 10,
                     "recall_queries": 4, "recall_k": 5, "map": "pca", "map_per_class": 10},
    }
    for name, values in tables.items():
        sections.setdefault(name, {}).update(values)
    lines = [
        f'survey = "{root / "survey"}"', f'out_dir = "{root / "run"}"',
        'arch = "resnet10"', "width = 8", "small_stem = true", "queue_size = 16",
        "batch_size = 8", "bn_groups = 2", "max_steps = 3", "num_workers = 0", "threads = 1",
        "checkpoint_every = 1", "progress = false", 'device = "cpu"',
        "", "[augment]", "crop = 24", "out_size = 16",
    ]
    for name, values in sections.items():
        lines += ["", f"[{name}]"]
        lines += [f"{k} = {_toml(v)}" for k, v in values.items()]
    path = root / "tiny.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)
