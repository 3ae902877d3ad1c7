"""A campaign's seeds in the browser: a sky position matched to its object, an uploaded .npy
cutout embedded by the server, a refusal shown beside its field, and removal; a random object
as the first seed, and a table of objects imported as seeds (checked first)."""

from __future__ import annotations

import io
import re

import numpy as np
from playwright.sync_api import Page, expect
from sqlalchemy import select

from ml.survey import Survey
from server.models import CampaignSeed


def test_seeds_from_the_sky_and_from_a_file(page: Page, live_server, sign_in, survey_path,
                                            screenshot):
    with Survey(survey_path) as survey:
        catalog = survey.catalog(["ra", "dec"], [10])
        ra, dec = float(catalog["ra"][0]), float(catalog["dec"][0])
        cutout = survey.read_images([12])[0]  # (3, H, W) g, r, z nanomaggies
    sign_in(page, "eve")
    page.get_by_role("link", name="New campaign").first.click()
    page.get_by_label("Name").fill("Seeded from the sky")
    page.get_by_role("radio", name="By sky position (RA, Dec)").check()
    page.get_by_label("RA (degrees)").fill(f"{ra + 1 / 3600:.6f}")  # 1″ east, near the object
    page.get_by_label("Dec (degrees)").fill(f"{dec:.6f}")
    page.get_by_role("button", name="Create campaign").click()
    expect(page).to_have_url(re.compile(r"/campaigns/\d+$"))
    campaign_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("ul.grid .tile")).to_have_count(48)

    page.get_by_role("link", name="Seeds").click()
    expect(page.get_by_role("listitem").filter(has_text="→ object 10")).to_be_visible()

    # a position far from every object: refused, the reason beside the tolerance field
    page.get_by_role("radio", name="By sky position (RA, Dec)").check()
    page.get_by_label("RA (degrees)").fill(f"{(ra + 1) % 360:.6f}")
    page.get_by_label("Dec (degrees)").fill(f"{dec:.6f}")
    page.get_by_role("button", name="Add seed").click()
    expect(page.get_by_label("Within (arcsec)")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field-error")).to_contain_text("no survey object within 5")

    # an uploaded cutout, embedded with the bundle's own model
    buffer = io.BytesIO()
    np.save(buffer, cutout)
    page.get_by_role("radio", name="From a cutout file").check()
    page.get_by_label("Cutout file (FITS or .npy").set_input_files(
        files=[{"name": "object12.npy", "mimeType": "application/octet-stream",
                "buffer": buffer.getvalue()}])
    page.get_by_role("button", name="Add seed").click()
    expect(page.get_by_role("listitem").filter(has_text="uploaded cutout object12.npy")).to_be_visible()
    screenshot(page, "seeds")
    kinds = sorted(row[0].value for row in live_server.query(
        select(CampaignSeed.kind).where(CampaignSeed.campaign_id == campaign_id)))
    assert kinds == ["sky", "vector"]

    page.get_by_role("button", name=re.compile(r"^Remove seed RA")).click()
    expect(page.get_by_role("listitem").filter(has_text="→ object 10")).to_have_count(0)
    kinds = [row[0].value for row in live_server.query(
        select(CampaignSeed.kind).where(CampaignSeed.campaign_id == campaign_id))]
    assert kinds == ["vector"]
    # the grid now ranks by the uploaded cutout alone
    page.get_by_role("link", name="Label", exact=True).click()
    expect(page.locator("ul.grid .tile")).to_have_count(48)


def test_a_random_seed_then_a_table_of_seeds(page: Page, live_server, sign_in, screenshot,
                                             unnamed_controls):
    sign_in(page, "fay")
    page.get_by_role("link", name="New campaign").first.click()
    page.get_by_label("Name").fill("Anything at random")
    page.get_by_role("radio", name="A random object").check()
    drawn = page.get_by_test_id("random-seed")
    expect(drawn).to_have_text(re.compile(r"^object \d+"))
    page.get_by_role("button", name="Draw another").click()
    expect(drawn).to_have_text(re.compile(r"^object \d+"))
    object_id = int(drawn.inner_text().split()[1])
    page.get_by_role("button", name="Create campaign").click()
    expect(page).to_have_url(re.compile(r"/campaigns/\d+$"))
    campaign_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("ul.grid .tile")).to_have_count(48)
    seeds = live_server.query(select(CampaignSeed.object_id)
                              .where(CampaignSeed.campaign_id == campaign_id))
    assert [s for (s,) in seeds] == [object_id]

    # a CSV of object ids: one is the seed already, one is not in the survey
    others = [i for i in (3, 4, 5) if i != object_id][:2]
    table = "object_id\n" + "\n".join(str(i) for i in [*others, object_id, 99999]) + "\n"
    page.get_by_role("link", name="Import").click()
    page.get_by_label("Table file").set_input_files(files=[{
        "name": "seeds.csv", "mimeType": "text/csv", "buffer": table.encode()}])
    expect(page.get_by_label("Check only: match and report, write nothing")).to_be_checked()
    page.get_by_role("button", name="Check the table").click()
    report = page.get_by_role("region", name="Check report")
    expect(report).to_contain_text("4 rows: 3 matched, 2 would be written, 1 already seeds; "
                                   "1 unmatched")
    assert len(live_server.query(select(CampaignSeed.id)
                                 .where(CampaignSeed.campaign_id == campaign_id))) == 1
    page.get_by_label("Check only: match and report, write nothing").uncheck()
    page.get_by_role("button", name="Import").click()
    expect(page.get_by_role("region", name="Import report")).to_contain_text("2 written")
    assert unnamed_controls(page) == []
    screenshot(page, "import")
    seeds = live_server.query(select(CampaignSeed.object_id)
                              .where(CampaignSeed.campaign_id == campaign_id))
    assert sorted(s for (s,) in seeds) == sorted([object_id, *others])

