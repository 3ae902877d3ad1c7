"""Simulate a whole survey: objects in parallel, written chunk by chunk, nothing half-finished.

Objects are simulated in fixed-size chunks by a pool of worker processes and written in order
by the parent through :class:`ml.survey_writer.SurveyWriter` (survey files) and
:class:`ml.simulate.truth.TruthWriter` (``truth.h5``), both under temporary names renamed only
when the whole survey is done; on an error or an interrupt both are deleted. At most two chunks
per worker are in flight, so memory stays bounded whatever N is. Every object has its own
random stream (see :mod:`ml.simulate.objects`), so a seed gives the same survey bit for bit with
any number of workers.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ml.simulate.classes import CLASSES, DEFAULT_RATES, class_counts, plan_labels
from ml.simulate.neighbours import NeighbourLibrary
from ml.simulate.objects import (
    SimOptions,
    library_seed,
    plan_seed,
    simulate_object,
    warm_up,
)
from ml.simulate.sink import SurveySink
from ml.simulate.truth import PARAM_NAMES, TruthWriter, params_row
from ml.survey_format import MAX_OBJECTS_PER_FILE, OPTIONAL_KEYS, TRUTH_FILENAME
from ml.survey_writer import SurveyWriter

CHUNK_OBJECTS = 32
IN_FLIGHT_PER_WORKER = 2
MIN_SIZE = 32

CATALOG_DTYPES = {
    "ra": np.float64, "dec": np.float64, "ebv": np.float32, "flux": np.float32,
    "psfsize": np.float32, "psfdepth": np.float32, **OPTIONAL_KEYS,
}


class SimulationError(ValueError):
    """Arguments the simulator cannot work with."""


@dataclass(frozen=True)
class SimulationSummary:
    n: int
    paths: list[Path]
    truth_path: Path
    class_counts: dict[str, int]
    seconds: float

    @property
    def objects_per_second(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("inf")


# Each process keeps the neighbour library of the survey it works on (forked workers inherit
# the parent's).
_LIBRARY: dict[int, NeighbourLibrary] = {}


def _library(seed: int) -> NeighbourLibrary:
    if seed not in _LIBRARY:
        _LIBRARY.clear()
        _LIBRARY[seed] = NeighbourLibrary.build(library_seed(seed))
    return _LIBRARY[seed]


def simulate_chunk(seed: int, start: int, labels: np.ndarray, options: SimOptions
                   ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Objects start .. start + len(labels) - 1.

    Returns:
        images (n, 3, S, S) float32, catalog columns, truth labels (n,) bytes, truth params
        (n, P) float32.
    """
    library = _library(seed) if options.neighbours else None
    n, s = len(labels), options.size
    images = np.empty((n, 3, s, s), dtype=np.float32)
    rows, params = [], np.empty((n, len(PARAM_NAMES)), dtype=np.float32)
    for k, label in enumerate(labels):
        obj = simulate_object(seed, start + k, CLASSES[label], library, options)
        images[k] = obj.image
        rows.append(obj.catalog)
        params[k] = params_row(obj.truth)
    catalog = {key: np.array([row[key] for row in rows], dtype=dtype)
               for key, dtype in CATALOG_DTYPES.items()}
    names = np.array([CLASSES[label].encode() for label in labels])
    return images, catalog, names, params


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group: the parent cleans up and stops the pool, so the
    # workers need not each print a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_chunk(args: tuple) -> tuple:
    return simulate_chunk(*args)


def _check(n: int, seed: int, workers: int, size: int, objects_per_file: int) -> None:
    if n < 1:
        raise SimulationError(f"--n must be at least 1; got {n}")
    if seed < 0:
        raise SimulationError(f"--seed must be a non-negative integer; got {seed}")
    if workers < 1:
        raise SimulationError(f"--workers must be at least 1; got {workers}")
    if size < MIN_SIZE:
        raise SimulationError(f"--size must be at least {MIN_SIZE} pixels; got {size}")
    if objects_per_file < 1:
        raise SimulationError(f"--objects-per-file must be at least 1; got {objects_per_file}")


def simulate_survey(out_dir: str | os.PathLike, n: int, seed: int = 0,
                    rates: dict[str, float] | None = None, workers: int | None = None,
                    size: int = 152, objects_per_file: int = MAX_OBJECTS_PER_FILE,
                    options: SimOptions | None = None, overwrite: bool = False,
                    progress: bool = True) -> SimulationSummary:
    """Simulate ``n`` objects into the survey folder ``out_dir`` plus its ``truth.h5``.

    Args:
        out_dir: folder to create, or one without survey files (unless ``overwrite``).
        n: number of objects.
        seed: the survey's seed; the same seed and n give the same survey.
        rates: class -> rate, summing to 1 (see :func:`ml.simulate.classes.parse_rates`);
            default :data:`ml.simulate.classes.DEFAULT_RATES`.
        workers: processes; default all cores. 1 runs in this process.
        size: cutout side, pixels.
        objects_per_file: objects per HDF5 file.
        options: switch neighbours or noise off (tests); ``size`` overrides its size.
        overwrite: replace an existing survey in ``out_dir``.
        progress: show a progress bar.
    """
    rates = dict(DEFAULT_RATES if rates is None else rates)
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    _check(n, seed, workers, size, objects_per_file)
    options = SimOptions(size=size, neighbours=(options or SimOptions()).neighbours,
                         noise=(options or SimOptions()).noise)
    out = Path(out_dir)
    if (out / TRUTH_FILENAME).exists() and not overwrite:
        raise SimulationError(f"{out} already holds a {TRUTH_FILENAME}; choose an empty folder "
                              "or pass --overwrite")
    labels = plan_labels(n, rates, plan_seed(seed))
    starts = range(0, n, CHUNK_OBJECTS)
    tasks = ((seed, s, labels[s:s + CHUNK_OBJECTS], options) for s in starts)
    # built and warmed up once here (neighbour library, GalSim tables, lenstronomy's compiled
    # code); forked workers inherit them instead of each paying for them
    library = _library(seed) if options.neighbours else None
    warm_up(rates, library, options)

    t0 = time.perf_counter()
    pool = None
    if workers > 1:
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        pool = mp.get_context(method).Pool(workers, initializer=_ignore_interrupts)
    writer = SurveyWriter(
        out, image_size=size, objects_per_file=objects_per_file, overwrite=overwrite,
        extra_columns={key: (dtype, ()) for key, dtype in OPTIONAL_KEYS.items()})
    truth = TruthWriter(out, seed, rates)
    sink = SurveySink(writer, truth, size)
    bar = tqdm(total=n, unit="obj", desc="simulate", disable=not progress, smoothing=0.05)
    try:
        if pool is None:
            for task in tasks:
                result = simulate_chunk(*task)
                sink.add(*result)
                bar.update(len(result[0]))
        else:
            pending: deque = deque()
            task_iter = iter(tasks)
            for task in task_iter:
                pending.append((task[1], pool.apply_async(_run_chunk, (task,))))
                if len(pending) >= IN_FLIGHT_PER_WORKER * workers:
                    break
            while pending:
                start, async_result = pending.popleft()
                result = async_result.get()
                next_task = next(task_iter, None)
                if next_task is not None:
                    pending.append((next_task[1], pool.apply_async(_run_chunk, (next_task,))))
                assert start == sink.n  # chunks arrive in object order
                sink.add(*result)
                bar.update(len(result[0]))
        sink.flush()
        paths = writer.close()
        truth_path = truth.close()
    except BaseException:
        writer.abort()
        truth.abort()
        raise
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
    counts = dict(zip(CLASSES, class_counts(n, rates).tolist(), strict=True))
    return SimulationSummary(n, paths, truth_path, counts, time.perf_counter() - t0)

