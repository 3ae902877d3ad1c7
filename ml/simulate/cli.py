"""``galsearch simulate``: write a DESI Legacy Surveys-like survey and its truth."""

from __future__ import annotations

import click

from ml.survey_format import CUTOUT_SIZE, MAX_OBJECTS_PER_FILE


@click.command()
@click.option("--n", "n", type=int, required=True, help="Number of objects.")
@click.option("--out", "out", type=click.Path(file_okay=False), required=True,
              help="Survey folder to create.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed: the same seed and --n give the same survey, with any --workers.")
@click.option("--workers", type=int, default=None,
              help="Worker processes [default: all cores].")
@click.option("--rates", default=None,
              help="Class rates, e.g. lens=0.004,ring=0.004; the other classes share the rest "
                   "in their default proportions.")
@click.option("--size", type=int, default=CUTOUT_SIZE, show_default=True,
              help="Cutout side in pixels (0.262\"/px).")
@click.option("--objects-per-file", type=int, default=MAX_OBJECTS_PER_FILE, show_default=True,
              help="Objects per HDF5 file.")
@click.option("--overwrite", is_flag=True, help="Replace a survey already in --out.")
def simulate(n: int, out: str, seed: int, workers: int | None, rates: str | None, size: int,
             objects_per_file: int, overwrite: bool) -> None:
    """Simulate a g,r,z survey of galaxies (with rare lenses, rings, mergers, stars and
    artefacts) in the survey format, plus truth.h5 with every object's class and parameters."""
    from ml.simulate.classes import RatesError, parse_rates
    from ml.simulate.driver import SimulationError, simulate_survey
    from ml.survey_writer import SurveyWriteError

    try:
        parsed = parse_rates(rates)
        summary = simulate_survey(out, n, seed=seed, rates=parsed, workers=workers, size=size,
                                  objects_per_file=objects_per_file, overwrite=overwrite)
    except (RatesError, SimulationError, SurveyWriteError) as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"wrote {summary.n} objects to {out} in {len(summary.paths)} file(s) and "
               f"{summary.truth_path.name} ({summary.seconds:.1f} s, "
               f"{summary.objects_per_second:.0f} objects/s)")
    click.echo("classes: " + ", ".join(f"{name} {count}"
                                       for name, count in summary.class_counts.items()))
