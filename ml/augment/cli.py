"""``galsearch fit-augment SURVEY_DIR``: fit the augmentations' distributions to a survey.

Reads the ``ebv``, ``psfsize`` and ``psfdepth`` columns (a random subset of rows for large
surveys), fits the log-normals of E(B−V), PSF σ and noise σ per band, prints them beside the
authors' DR9 south fits, and writes ``<survey>/augment_stats.json``, which training reads.
"""

from __future__ import annotations

import click

# catalog rows read for the fit: a random subset this large pins each fit well below 1%
DEFAULT_MAX_OBJECTS = 200_000


def format_table(fitted, reference) -> str:
    """Fitted distributions beside the reference ones, one line per quantity and band."""
    from ml.survey_format import BANDS

    rows = [("E(B-V), mag", "", fitted.ebv, reference.ebv)]
    rows += [("PSF sigma, px", band, f, r) for band, f, r in
             zip(BANDS, fitted.psf_sigma_pix, reference.psf_sigma_pix, strict=True)]
    rows += [("noise sigma, nmgy", band, f, r) for band, f, r in
             zip(BANDS, fitted.noise_sigma, reference.noise_sigma, strict=True)]

    def params(d) -> str:
        if d.kind == "lognormal":
            return f"{d.shape:.4f} {d.loc:+.5f} {d.scale:.5f}"
        return f"U({d.lo:.4g}, {d.hi:.4g})"

    header = (f"{'quantity':<18} {'band':<4} {'fitted (shape loc scale)':<28} "
              f"{'DR9 south (shape loc scale)':<28} {'median':>9} {'DR9':>9}  range")
    lines = [header, "-" * len(header)]
    for name, band, f, r in rows:
        lines.append(f"{name:<18} {band:<4} {params(f):<28} {params(r):<28} "
                     f"{f.median():>9.4g} {r.median():>9.4g}  {f.lo:.4g}-{f.hi:.4g}")
    return "\n".join(lines)


@click.command("fit-augment")
@click.argument("survey_dir", type=click.Path(file_okay=False, path_type=str))
@click.option("--sampling", type=click.Choice(["lognormal", "uniform"]), default="lognormal",
              show_default=True,
              help="lognormal: the paper's fits to the survey; uniform: U over each range "
                   "(the authors' code default, reaching the tails).")
@click.option("--max-objects", type=click.IntRange(min=10), default=DEFAULT_MAX_OBJECTS,
              show_default=True, help="Fit a random subset of this many catalog rows.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the subset.")
def fit_augment(survey_dir: str, sampling: str, max_objects: int, seed: int) -> None:
    """Fit the augmentations' E(B-V), PSF and noise distributions to SURVEY_DIR's catalog."""
    import numpy as np

    from ml.augment.conditions import CONDITION_COLUMNS
    from ml.augment.stats import AugmentStats
    from ml.survey import Survey, SurveyError

    try:
        with Survey(survey_dir) as survey:
            ids = None
            if survey.n > max_objects:
                rng = np.random.default_rng(seed)
                ids = np.sort(rng.choice(survey.n, max_objects, replace=False))
            click.echo(f"reading {CONDITION_COLUMNS} of "
                       f"{survey.n if ids is None else ids.size:,} of {survey.n:,} objects")
            catalog = survey.catalog(CONDITION_COLUMNS, ids)
    except (SurveyError, KeyError) as exc:
        raise click.ClickException(str(exc)) from exc

    try:
        stats = AugmentStats.fit(catalog, max_objects=None, progress=True)
    except ValueError as exc:
        raise click.ClickException(f"cannot fit the augmentation statistics: {exc}") from exc
    click.echo(format_table(stats, AugmentStats.dr9_south()))
    if sampling == "uniform":
        stats = stats.as_uniform()
        click.echo("--sampling uniform: storing U(lo, hi) over each range")
    path = stats.save(survey_dir)
    click.echo(f"wrote {path}")
