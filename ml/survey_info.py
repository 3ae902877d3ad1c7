"""``galsearch survey-info``: what a survey holds, and a contact sheet of its objects.

The terminal summary lists the files, columns and image size, percentiles of the observing
conditions (``ebv``, ``psfsize``, ``psfdepth``), a per-band magnitude histogram
(mag = 22.5 - 2.5 log10 flux, counted over every object, a chunk at a time) and, when the
folder has ``truth.h5``, the objects per class. The contact sheet (``--sheet PNG``) shows
``--per-class`` random examples per class, one row per class (without truth: a random sample),
each tile captioned with its object id and rendered by :func:`ml.render.rgb_uint8`, the same
arcsinh g, r, z stretch that the network and the web app use.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    import numpy as np

    from ml.survey import Survey

MAG_EDGES = tuple(float(m) for m in range(12, 27))  # 1-mag bins, under/overflow kept apart
SUMMARY_SAMPLE = 100_000  # objects used for the condition percentiles of a larger survey
CATALOG_CHUNK = 1_000_000  # rows per read when counting magnitudes
HIST_BAR_WIDTH = 30
SAMPLE_ROWS_WITHOUT_TRUTH = 4
# contact-sheet layout, pixels: tiles at (LABEL_W + c (H + PAD), TITLE_H + r (H + CAPTION_H + PAD))
PAD, CAPTION_H, LABEL_W, TITLE_H = 4, 16, 150, 28


def magnitude_histogram(survey: Survey, edges=MAG_EDGES) -> tuple[np.ndarray, np.ndarray]:
    """Objects per magnitude bin and band.

    Returns:
        (labels of the rows, counts (len(edges) + 2, 3)): rows are "< edges[0]", each bin,
        ">= edges[-1]" and "flux <= 0" (no magnitude), columns g, r, z.
    """
    import numpy as np

    from ml.photometry import flux_to_mag

    edges_arr = np.asarray(edges, dtype=np.float64)
    counts = np.zeros((len(edges_arr) + 2, 3), dtype=np.int64)
    for batch in survey.iter_batches(CATALOG_CHUNK, columns=("flux",), images=False):
        mag = flux_to_mag(batch.catalog["flux"])  # (B, 3), NaN where flux <= 0
        for band in range(3):
            m = mag[:, band]
            ok = np.isfinite(m)
            counts[:-1, band] += np.bincount(np.searchsorted(edges_arr, m[ok], side="right"),
                                             minlength=len(edges_arr) + 1)
            counts[-1, band] += int((~ok).sum())
    labels = [f"< {edges_arr[0]:g}"]
    labels += [f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(edges_arr)]
    labels += [f">= {edges_arr[-1]:g}", "flux <= 0"]
    return np.asarray(labels), counts


def _histogram_lines(labels, counts) -> list[str]:
    import numpy as np

    used = np.flatnonzero(counts.sum(axis=1) > 0)
    if used.size == 0:
        return ["  (no objects)"]
    rows = range(used[0], used[-1] + 1)
    peak = max(int(counts[:, 1].max()), 1)
    lines = [f"  {'mag':<10}{'g':>9}{'r':>9}{'z':>9}  r"]
    for i in rows:
        bar = "#" * round(HIST_BAR_WIDTH * counts[i, 1] / peak)
        lines.append(f"  {labels[i]:<10}" + "".join(f"{c:>9}" for c in counts[i]) + f"  {bar}")
    return lines


def _condition_lines(survey: Survey) -> list[str]:
    import numpy as np

    step = max(1, survey.n // SUMMARY_SAMPLE)
    ids = np.arange(0, survey.n, step)
    note = "" if step == 1 else f", over every {step}th object"
    lines = [f"observing conditions (median [5%, 95%]{note})"]
    for name, unit in (("ebv", "mag"), ("psfsize", "arcsec FWHM"), ("psfdepth", "nmgy^-2")):
        values = survey.read_column(name, ids).astype(np.float64)
        planes = [("", values)] if values.ndim == 1 else [
            (f" {b}", values[:, i]) for i, b in enumerate("grz")]
        for suffix, v in planes:
            v = v[np.isfinite(v)]
            if v.size == 0:
                lines.append(f"  {name + suffix:<12} (no finite values)")
                continue
            p5, p50, p95 = np.percentile(v, [5, 50, 95])
            lines.append(f"  {name + suffix:<12}{p50:>10.4g} [{p5:.4g}, {p95:.4g}] {unit}")
    return lines


def summary_lines(survey: Survey) -> list[str]:
    """The terminal summary, as lines of text."""
    _, h, w = survey.image_shape
    lines = [
        f"survey {survey.path}",
        f"  {survey.n} objects in {len(survey.files)} file(s); images 3x{h}x{w} float32 "
        "(g, r, z, nanomaggies)",
        f"  fingerprint {survey.fingerprint()}",
        "files",
    ]
    for k, path in enumerate(survey.files):
        rows = int(survey.offsets[k + 1] - survey.offsets[k])
        lines.append(f"  {path.name:<28}{rows:>10} objects {path.stat().st_size / 1e6:>10.1f} MB")
    lines.append("columns")
    for name, (dtype, trailing) in survey.column_specs.items():
        shape = f", {trailing[0]}" if trailing else ""
        lines.append(f"  {name:<20}{dtype}{shape}")
    lines += _condition_lines(survey)
    lines.append("magnitudes (22.5 - 2.5 log10 flux), objects per bin")
    lines += _histogram_lines(*magnitude_histogram(survey))
    truth = survey.truth()
    if truth is not None:
        lines.append("classes (truth.h5)")
        for name, count in truth.counts().items():
            lines.append(f"  {name:<14}{count:>10} {100.0 * count / max(survey.n, 1):>9.3f} %")
    return lines


def sheet_rows(survey: Survey, per_class: int, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """(row caption, object ids) of each contact-sheet row: per class, or a random sample."""
    import numpy as np

    rng = np.random.default_rng(seed)
    truth = survey.truth()
    if truth is None:
        n = min(survey.n, per_class * SAMPLE_ROWS_WITHOUT_TRUTH)
        ids = np.sort(rng.choice(survey.n, size=n, replace=False))
        return [("random", ids[i:i + per_class]) for i in range(0, n, per_class)]
    rows = []
    for name, count in truth.counts().items():
        if count == 0:
            continue
        members = np.flatnonzero(truth.labels == name)
        pick = np.sort(rng.choice(members, size=min(per_class, members.size), replace=False))
        rows.append((f"{name} ({count})", truth.object_ids[pick]))
    return rows


def contact_sheet(survey: Survey, path: str | Path, per_class: int = 8, seed: int = 0) -> Path:
    """Write a PNG contact sheet (see the module docstring); returns its path."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    from ml.render import rgb_uint8

    rows = sheet_rows(survey, per_class, seed)
    _, tile, _ = survey.image_shape
    font = ImageFont.load_default(size=14)
    small = ImageFont.load_default(size=12)
    title = (f"{survey.path.name}: {survey.n} objects; arcsinh stretch z->R r->G g->B; "
             "caption = object id")
    n_cols = max(len(ids) for _, ids in rows)
    width = max(LABEL_W + n_cols * (tile + PAD), int(font.getlength(title))) + 2 * PAD
    height = TITLE_H + len(rows) * (tile + CAPTION_H + PAD) + PAD
    sheet = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    draw.text((PAD, 6), title, fill=(230, 230, 230), font=font)
    all_ids = np.concatenate([ids for _, ids in rows])
    rgb = rgb_uint8(survey.read_images(all_ids))  # (M, H, W, 3)
    k = 0
    for r, (caption, ids) in enumerate(rows):
        y = TITLE_H + r * (tile + CAPTION_H + PAD)
        draw.text((PAD, y + tile // 2 - 8), caption, fill=(255, 255, 255), font=font)
        for c, object_id in enumerate(ids):
            x = LABEL_W + c * (tile + PAD)
            sheet.paste(Image.fromarray(rgb[k]), (x, y))
            draw.text((x + 2, y + tile + 1), str(int(object_id)), fill=(200, 200, 200), font=small)
            k += 1
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, format="PNG")
    return path


@click.command("survey-info")
@click.argument("survey_dir", type=click.Path(path_type=Path))
@click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a PNG contact sheet of examples per class here.")
@click.option("--per-class", default=8, show_default=True, type=click.IntRange(1, 64),
              help="Examples per class (per row without truth) on the sheet.")
@click.option("--seed", default=0, show_default=True, help="Seed of the sheet's random picks.")
@click.option("--check-pixels", is_flag=True, help="Also scan every pixel for NaN/inf.")
def survey_info(survey_dir: Path, sheet: Path | None, per_class: int, seed: int,
                check_pixels: bool) -> None:
    """Summarise the survey in SURVEY_DIR: counts, columns, magnitudes, classes."""
    from ml.survey import Survey, SurveyError

    try:
        with Survey(survey_dir) as survey:
            if check_pixels:
                survey.validate_pixels(progress=True)
            for line in summary_lines(survey):
                click.echo(line)
            if check_pixels:
                click.echo("pixels: all finite")
            if sheet is not None:
                click.echo(f"contact sheet: {contact_sheet(survey, sheet, per_class, seed)}")
    except SurveyError as exc:
        raise click.ClickException(str(exc)) from exc
