"""Embedding throughput: ``galsearch embed`` against a plain read-then-embed loop.

On a survey of 152-px cutouts (the demo survey ``data/demo`` when it exists, else N noise
cutouts written here: 4,096, or 1,024 with --quick), with the demo preset's network (the shipped
model ``models/demo-resnet18.pt`` when it exists, else the same architecture with random
weights: the arithmetic is the same), it times, in this order and again in reverse (the best of
the two passes is kept, because the page cache favours whoever reads second):

* ``baseline``: ``Survey.iter_batches`` then ``Encoder.embed`` on each batch, in one process,
  no output written: what a notebook loop does;
* ``embed, no reader``: :func:`ml.embed.embed_survey` with ``workers=0`` (reads between forward
  passes, writes and marks float16 chunks);
* ``embed``: the same with one reader process overlapping reads and compute (the default).

Objects/s (wall) and process CPU seconds per 1,000 objects, with each wall time's ratio to the
baseline; float16 arrays written to a scratch folder that is deleted afterwards.

    .venv/bin/python benchmarks/embed.py [--quick] [--n N] [--batch-size 256] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the galsearch commands do
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.common import package_version, write_noise_survey, write_results  # noqa: E402
from ml.embed import embed_survey  # noqa: E402
from ml.encoder import Encoder  # noqa: E402
from ml.moco import build_query_encoder  # noqa: E402
from ml.survey import Survey  # noqa: E402
from ml.train import distributed  # noqa: E402
from ml.train.config import load_config  # noqa: E402

DEMO_SURVEY = ROOT / "data" / "demo"
SHIPPED_MODEL = ROOT / "models" / "demo-resnet18.pt"
DEMO_CONFIG = ROOT / "configs" / "demo.toml"


def encoder_of_the_preset(device: str) -> tuple[Encoder, str]:
    if SHIPPED_MODEL.is_file():
        return Encoder.from_checkpoint(SHIPPED_MODEL, device=device), str(SHIPPED_MODEL)
    config = load_config(DEMO_CONFIG)
    torch.manual_seed(0)
    network = build_query_encoder(config.model_args())
    return (Encoder(network, config.model_args(), config.augment, sha256="random-weights",
                    device=device), "configs/demo.toml architecture, random weights")


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its finished children)."""
    cpu0 = time.process_time()
    children0 = os.times().children_user + os.times().children_system
    t0 = time.perf_counter()
    fn()
    wall = time.perf_counter() - t0
    children = os.times().children_user + os.times().children_system - children0
    return wall, time.process_time() - cpu0 + children


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 1,024-object noise survey")
    parser.add_argument("--n", type=int, default=None, help="objects of the noise survey")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="bench-embed-", dir=ROOT / "data"
                                    if (ROOT / "data").is_dir() else None))
    try:
        if args.quick or args.n or not DEMO_SURVEY.is_dir():
            n = args.n or (1024 if args.quick else 4096)
            write_noise_survey(scratch / "survey", n, batch=512)
            survey_path, survey_kind = scratch / "survey", f"{n} noise cutouts"
        else:
            survey_path, survey_kind = DEMO_SURVEY, "the demo survey (data/demo)"
        survey = Survey(survey_path)
        encoder, model_kind = encoder_of_the_preset(args.device)
        info = distributed.setup(args.device)
        bs = args.batch_size

        def baseline() -> None:
            for batch in survey.iter_batches(bs):
                encoder.embed(batch.images, batch_size=bs)

        def run(workers: int):
            def go() -> None:
                out = scratch / f"emb-{workers}"
                shutil.rmtree(out, ignore_errors=True)
                embed_survey(encoder, survey, out, info, batch_size=bs, workers=workers,
                             progress=False)
            return go

        cases = {"baseline": baseline, "embed, no reader": run(0), "embed": run(1)}
        best = {name: (float("inf"), float("inf")) for name in cases}
        for order in (list(cases), list(reversed(cases))):
            for name in order:
                wall, cpu = timed(cases[name])
                if wall < best[name][0]:
                    best[name] = (wall, cpu)
        base_wall = best["baseline"][0]
        figures = {name: {"wall_s": round(wall, 3), "objects_per_s": round(survey.n / wall, 1),
                          "cpu_s_per_1000": round(1000 * cpu / survey.n, 3),
                          "wall_ratio_to_baseline": round(wall / base_wall, 3)}
                   for name, (wall, cpu) in best.items()}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"embedding {survey.n} objects ({survey_kind}), {model_kind}, batch {bs}, "
          f"{args.device}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'case':<18} {'wall s':>8} {'objects/s':>10} {'CPU s/1000':>11} {'vs baseline':>12}")
    for name, f in figures.items():
        print(f"{name:<18} {f['wall_s']:>8.2f} {f['objects_per_s']:>10.1f} "
              f"{f['cpu_s_per_1000']:>11.2f} {f['wall_ratio_to_baseline']:>12.2f}")
    result = {
        "benchmark": "embed",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "parameters": {"n": survey.n, "survey": survey_kind, "model": model_kind,
                       "dims": encoder.dims, "crop": encoder.augment.crop,
                       "out_size": encoder.augment.out_size, "batch_size": bs,
                       "device": args.device, "dtype": "float16", "chunk_size": 4096},
        "figures": figures,
        "notes": "best of two passes in alternating order; CPU time includes the reader "
                 "process; the machine is shared with other jobs (see loadavg)",
        "machine": {
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
                               1),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__, "faiss": package_version("faiss-cpu"),
            "loadavg_1min": round(os.getloadavg()[0], 2),
        },
    }
    write_results("embed", result, quick=args.quick)


if __name__ == "__main__":
    main()
