"""Labeling in the browser: a campaign from an object id, the keyboard, undo, the detail view,
the next page, rollback of a failed write, and the speed targets of issue 8 (first grid within
1 s of navigation, focus moved within 50 ms of a key press), read from the app's performance
measures. Then issue 8's whole flow with a team: the probe retrains (the fixture's `galsearch
worker`) and the grid follows its order, a second labeler sees the shared progress, and a CSV
export holds what was labeled."""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path
from statistics import median

from playwright.sync_api import Page, Route, expect
from sqlalchemy import select

from server.models import Campaign, Job, JobStatus, Label, ProbeRun, User

PAGE_SIZE = 48
FIRST_GRID_BUDGET_MS = 1000
KEY_FOCUS_BUDGET_MS = 50
SEED_OBJECT = 5
# 30 labels in a pattern that uses every key: accept, reject, unsure
KEYS = ["a", "r", "r", "u", "r", "a"] * 5
VALUES = {"a": "accept", "r": "reject", "u": "unsure"}
PROBE_TIMEOUT_MS = 60_000  # the worker trains on a shared 2-core machine


def grid(page: Page):
    return page.locator("ul.grid")


def tile(page: Page, index: int):
    return grid(page).locator(".tile").nth(index)


def measures(page: Page, name: str) -> list[float]:
    return page.evaluate(
        "name => performance.getEntriesByName(name, 'measure').map(m => m.duration)", name)


def wait_for_measures(page: Page, name: str, count: int = 1, timeout_s: float = 10) -> list[float]:
    """The durations of the app's measures called ``name``, once there are ``count``.

    Polled from here: Playwright's wait_for_function evaluates strings in the page, which the
    page's Content-Security-Policy (rightly) forbids."""
    deadline = time.monotonic() + timeout_s
    while len(found := measures(page, name)) < count:
        assert time.monotonic() < deadline, f"{len(found)} of {count} {name} measures"
        time.sleep(0.05)
    return found


def wait_for_idle_worker(live_server, campaign_id: int, timeout_s: float = 60) -> None:
    """Wait until the campaign has no queued or running job: the worker's probe training
    shares this 2-core machine with the browser and the server, so timings are taken once it
    is done (a production worker runs on cores of its own)."""
    deadline = time.monotonic() + timeout_s
    while live_server.query(select(Job.id).where(
            Job.campaign_id == campaign_id,
            Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]))):
        assert time.monotonic() < deadline, "the worker did not finish the campaign's jobs"
        time.sleep(0.1)


def wait_until_saved(page: Page, labeled: int) -> None:
    expect(page.locator(".toolbar")).to_contain_text(f"{labeled}/{PAGE_SIZE} labeled")
    expect(grid(page).locator(".tile.pending")).to_have_count(0)


def create_campaign(page: Page, name: str, seed_object: int) -> int:
    page.get_by_role("link", name="New campaign").first.click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Target").fill("lens")
    page.get_by_role("textbox", name="Object id").fill(str(seed_object))
    page.get_by_role("button", name="Create campaign").click()
    expect(page).to_have_url(re.compile(r"/campaigns/\d+$"))
    return int(page.url.rsplit("/", 1)[1])


def test_label_a_page_with_the_keyboard_undo_and_move_on(page: Page, new_page, live_server,
                                                          sign_in, screenshot, report,
                                                          unnamed_controls):
    sign_in(page, "ada")
    campaign_id = create_campaign(page, "Lenses from one example", SEED_OBJECT)

    # the first grid: 48 candidates, the seed's most similar first. The server renders each
    # cutout for the first time here (cold: see the report printed at the end); the 1 s target
    # is checked below, where the server has rendered them before
    expect(grid(page).locator(".tile")).to_have_count(PAGE_SIZE)
    expect(page.locator(".toolbar")).to_contain_text(f"Page 1 · 0/{PAGE_SIZE} labeled")
    [cold_ms] = wait_for_measures(page, "galsearch:first-grid")
    first_page = [int(i) for i in grid(page).locator(".tile").evaluate_all(
        "tiles => tiles.map(t => t.dataset.objectId)")]
    assert len(set(first_page)) == PAGE_SIZE
    scores = [float(text.split()[-1]) for text in grid(page).locator(".score").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)  # most similar to the seed first
    expect(tile(page, 0)).to_be_focused()
    # accessible: one tile in the Tab order (the rest by arrows), every control named
    expect(grid(page).locator('.tile[tabindex="0"]')).to_have_count(1)
    assert unnamed_controls(page) == []

    # label 30 from the keyboard: focus moves on after each label
    for key in KEYS:
        page.keyboard.press(key)
    wait_until_saved(page, 30)
    expect(tile(page, 30)).to_be_focused()
    expect(tile(page, 0)).to_have_class(re.compile(r"\baccept\b"))
    expect(tile(page, 1)).to_have_class(re.compile(r"\breject\b"))
    expect(tile(page, 3)).to_have_class(re.compile(r"\bunsure\b"))
    # told apart by more than colour: a symbol and a word on the tile, and in its name
    expect(tile(page, 0).locator(".badge")).to_have_text("✓ Accept")
    expect(tile(page, 1).locator(".badge")).to_have_text("✗ Reject")
    expect(tile(page, 0)).to_have_attribute("aria-label", re.compile(r"accepted"))
    stored = dict(live_server.query(select(Label.object_id, Label.value)
                                    .where(Label.campaign_id == campaign_id)))
    expected = {first_page[i]: {"a": "accept", "r": "reject", "u": "unsure"}[k]
                for i, k in enumerate(KEYS)}
    assert {k: v.value for k, v in stored.items()} == expected

    # undo the last one: z; the tile shows it unlabeled and takes the focus
    page.keyboard.press("z")
    expect(page.get_by_role("status")).to_contain_text(f"Undone: object {first_page[29]}")
    wait_until_saved(page, 29)
    expect(tile(page, 29)).to_be_focused()
    expect(tile(page, 29)).not_to_have_class(re.compile(r"\b(accept|reject|unsure)\b"))
    stored = dict(live_server.query(select(Label.object_id, Label.value)
                                    .where(Label.campaign_id == campaign_id)))
    assert len(stored) == 29 and first_page[29] not in stored

    # arrows move the focus by one tile and by one row, within 50 ms of the key
    page.evaluate("performance.clearMeasures('galsearch:key-focus')")
    columns = grid(page).locator(".tile").evaluate_all(
        "tiles => tiles.filter(t => t.offsetTop === tiles[0].offsetTop).length")
    page.keyboard.press("ArrowRight")
    expect(tile(page, 30)).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(tile(page, 30 + columns)).to_be_focused()
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowLeft")
    expect(tile(page, 29)).to_be_focused()
    for _ in range(8):
        page.keyboard.press("ArrowRight")
    expect(tile(page, 37)).to_be_focused()
    key_ms = wait_for_measures(page, "galsearch:key-focus", 12)
    assert median(key_ms) < KEY_FOCUS_BUDGET_MS, key_ms
    assert max(key_ms) < 2 * KEY_FOCUS_BUDGET_MS, key_ms  # a shared machine may hiccup once
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "labeling")

    # space: the detail of the focused object, with its catalog row and the sky viewer
    focused_id = first_page[37]
    page.keyboard.press(" ")
    detail = page.get_by_role("complementary", name=f"Object {focused_id}")
    expect(detail).to_be_visible()
    viewer = detail.get_by_role("link", name=re.compile("Legacy Surveys sky viewer"))
    expect(viewer).to_have_attribute("href", re.compile(
        r"^https://www\.legacysurvey\.org/viewer\?ra=[\d.]+&dec=-?[\d.]+&layer=ls-dr9&zoom=16$"))
    expect(detail.get_by_role("row", name=re.compile("^ra "))).to_be_visible()
    expect(detail.get_by_role("button", name=re.compile(r"^Object \d+, similarity"))).not_to_have_count(0)
    # labeling still works with the detail open, and the detail follows the focus
    page.keyboard.press("a")
    expect(page.get_by_role("complementary", name=f"Object {first_page[38]}")).to_be_visible()
    expect(tile(page, 38)).to_be_focused()
    page.keyboard.press("ArrowLeft")
    detail = page.get_by_role("complementary", name=f"Object {focused_id}")
    expect(detail.get_by_text("Catalog")).to_be_visible()
    expect(detail.get_by_role("listitem").filter(has_text="ada: unlabeled → accepted")).to_be_visible()
    assert unnamed_controls(page) == []
    screenshot(page, "detail")
    page.keyboard.press("Escape")
    expect(page.get_by_role("complementary")).to_have_count(0)
    wait_until_saved(page, 30)

    # n: the next page. While pages follow similarity it is the prefetched one, holding none of
    # the first page's objects; once the worker has trained a probe from these labels (a race
    # with the keys above) it is the probe order's first page instead, holding none of the
    # labeled objects
    page.keyboard.press("n")
    expect(page.locator(".toolbar")).to_contain_text(f"Page 2 · 0/{PAGE_SIZE} labeled")
    second_page = page_ids(page)
    labeled = {row[0] for row in live_server.query(
        select(Label.object_id).where(Label.campaign_id == campaign_id))}
    assert len(labeled) == 30 and not set(second_page) & labeled
    if grid(page).locator(".score").first.inner_text().startswith("sim."):
        assert not set(second_page) & set(first_page)
    expect(tile(page, 0)).to_be_focused()

    # a fresh load of the campaign: the first grid within 1 s, the labeled left out
    wait_for_idle_worker(live_server, campaign_id)
    page.goto(f"/campaigns/{campaign_id}")
    [reload_ms] = wait_for_measures(page, "galsearch:first-grid")
    assert reload_ms < FIRST_GRID_BUDGET_MS, reload_ms
    assert not set(page_ids(page)) & labeled

    # another browser (nothing cached in it) navigating from the campaign list: within 1 s
    other = new_page()
    sign_in(other, "ada")
    other.get_by_role("link", name="Lenses from one example", exact=True).click()
    [fresh_ms] = wait_for_measures(other, "galsearch:first-grid")
    assert fresh_ms < FIRST_GRID_BUDGET_MS, fresh_ms
    report(f"first grid of {PAGE_SIZE}: {cold_ms:.0f} ms with every cutout rendered for the "
           f"first time, {fresh_ms:.0f} ms in a fresh browser, {reload_ms:.0f} ms on a reload; "
           f"key to focus: median {median(key_ms):.1f} ms, max {max(key_ms):.1f} ms "
           f"({len(key_ms)} keys)")


def test_a_failed_write_rolls_back_visibly(page: Page, live_server, sign_in):
    sign_in(page, "bea")
    campaign_id = create_campaign(page, "Rollback check", SEED_OBJECT + 1)
    expect(grid(page).locator(".tile")).to_have_count(PAGE_SIZE)

    def refuse(route: Route) -> None:
        if route.request.method == "PUT":
            route.fulfill(status=500, content_type="application/json", body=(
                '{"status": 500, "title": "Internal Server Error", '
                '"detail": "the label store is down"}'))
        else:
            route.fallback()

    page.route(re.compile(r".*/api/campaigns/\d+/labels/\d+$"), refuse)
    expect(tile(page, 0)).to_be_focused()  # the grid takes focus once its first page is in
    page.keyboard.press("a")
    expect(page.get_by_role("alert")).to_contain_text("the label store is down")
    expect(page.get_by_role("alert")).to_contain_text("back to unlabeled")
    expect(tile(page, 0)).to_have_class(re.compile(r"\bfailed\b"))
    expect(tile(page, 0).locator(".badge")).to_have_text("⚠ not saved")
    expect(tile(page, 0)).not_to_have_class(re.compile(r"\baccept\b"))
    assert live_server.query(select(Label).where(Label.campaign_id == campaign_id)) == []

    # once the server answers again, the same key saves it
    page.unroute(re.compile(r".*/api/campaigns/\d+/labels/\d+$"))
    page.keyboard.press("ArrowLeft")
    expect(tile(page, 0)).to_be_focused()
    page.keyboard.press("a")
    expect(tile(page, 0)).to_have_class(re.compile(r"\baccept\b"))
    expect(tile(page, 0)).not_to_have_class(re.compile(r"\bfailed\b"))
    [(campaign,)] = live_server.query(select(Campaign).where(Campaign.id == campaign_id))
    assert campaign.name == "Rollback check"
    # the worker tried to train the probe from that one label: the panel says why it could not
    expect(page.get_by_role("region", name="Active learning").get_by_test_id("probe-job")
           ).to_contain_text("failed: cannot train a probe yet", timeout=PROBE_TIMEOUT_MS)


def page_ids(page: Page) -> list[int]:
    return [int(i) for i in grid(page).locator(".tile").evaluate_all(
        "tiles => tiles.map(t => t.dataset.objectId)")]


def stored_labels(live_server, campaign_id: int) -> dict[tuple[str, int], str]:
    """(username, object id) -> value of every label in the campaign."""
    return {(name, object_id): value.value for name, object_id, value in live_server.query(
        select(User.username, Label.object_id, Label.value).join(User, User.id == Label.user_id)
        .where(Label.campaign_id == campaign_id))}


def test_a_team_labels_the_probe_retrains_and_a_csv_export_holds_the_labels(
        page: Page, new_page, live_server, sign_in, screenshot, report, unnamed_controls):
    live_server.user("dan")
    sign_in(page, "cy")
    # a campaign from an object id, with dan as a second labeler
    page.get_by_role("link", name="New campaign").first.click()
    page.get_by_label("Name").fill("Team lenses")
    page.get_by_label("Target").fill("lens")
    page.get_by_role("textbox", name="Object id").fill(str(SEED_OBJECT + 2))
    page.get_by_role("button", name="Add a member").click()
    page.get_by_label("Username of member 1").fill("dan")
    page.get_by_role("button", name="Create campaign").click()
    expect(page).to_have_url(re.compile(r"/campaigns/\d+$"))
    campaign_id = int(page.url.rsplit("/", 1)[1])
    expect(grid(page).locator(".tile")).to_have_count(PAGE_SIZE)
    panel = page.get_by_role("region", name="Active learning")
    expect(panel.get_by_test_id("probe-version")).to_have_text("none yet")
    expect(grid(page).locator(".score").first).to_contain_text("sim.")
    similarity_page = page_ids(page)

    # label 30 with the keyboard, undo one
    for key in KEYS:
        page.keyboard.press(key)
    wait_until_saved(page, 30)
    page.keyboard.press("z")
    wait_until_saved(page, 29)
    labeled = {similarity_page[i]: VALUES[k] for i, k in enumerate(KEYS[:29])}
    assert stored_labels(live_server, campaign_id) == {("cy", o): v for o, v in labeled.items()}

    # the worker retrains the probe from them: the panel shows the version and its metrics, and
    # the grid offers the probe's order; o shows it
    started = time.monotonic()
    expect(panel.get_by_test_id("probe-version")).to_have_text(re.compile(r"^version \d+$"),
                                                              timeout=PROBE_TIMEOUT_MS)
    expect(panel.get_by_test_id("probe-job")).to_contain_text("trained version",
                                                             timeout=PROBE_TIMEOUT_MS)
    expect(panel.get_by_test_id("probe-unseen")).to_have_text("0")  # the undo included
    retrain_s = time.monotonic() - started
    expect(panel).to_contain_text("ROC AUC")
    notice = page.get_by_role("note")
    expect(notice).to_contain_text(re.compile(r"Probe version \d+ is newer"))
    page.keyboard.press("o")
    expect(notice).to_have_count(0)
    expect(page.get_by_role("status")).to_contain_text("in the new order")
    expect(grid(page).locator(".score").first).to_contain_text("probe")
    expect(tile(page, 0)).to_be_focused()
    probe_page = page_ids(page)
    assert not set(probe_page) & set(labeled)  # labeled objects stay out
    scores = [float(t.split()[-1]) for t in grid(page).locator(".score").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)  # strategy top: most likely first
    unlabeled_by_similarity = [o for o in similarity_page if o not in labeled]
    assert probe_page[:len(unlabeled_by_similarity)] != unlabeled_by_similarity  # a new order
    versions = [v for (v,) in live_server.query(
        select(ProbeRun.version).where(ProbeRun.campaign_id == campaign_id))]
    assert versions and max(versions) == int(
        panel.get_by_test_id("probe-version").inner_text().split()[-1])
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "labeling-probe")

    # the active-learning tab: versions, the order switch (owners), retrain now
    page.get_by_role("link", name="Active learning").click()
    learning = page.get_by_role("region", name="Active learning")
    expect(page.get_by_role("table", name="Probe versions, newest first")).to_be_visible()
    learning.get_by_label("Order").select_option("uncertainty")
    expect(page.get_by_role("status")).to_contain_text("orders the pages by uncertainty")
    [(settings,)] = live_server.query(select(Campaign.settings).where(Campaign.id == campaign_id))
    assert settings["probe_strategy"] == "uncertainty"
    newest = max(versions)
    learning.get_by_role("button", name="Retrain now").click()
    expect(learning.get_by_test_id("probe-version")).to_have_text(
        re.compile(rf"^version ({newest + 1}|[1-9]\d+)$"), timeout=PROBE_TIMEOUT_MS)
    expect(page.get_by_role("table", name="Probe versions, newest first")
           .get_by_role("row")).to_have_count(len(versions) + 2, timeout=10_000)  # + header
    assert unnamed_controls(page) == []
    screenshot(page, "active-learning")

    # a second labeler: dan's grid leaves out cy's labels; dan labels two
    dan = new_page()
    sign_in(dan, "dan", f"/campaigns/{campaign_id}")
    expect(grid(dan).locator(".tile")).to_have_count(PAGE_SIZE)
    assert not set(page_ids(dan)) & set(labeled)
    dan_first = page_ids(dan)[:2]
    expect(tile(dan, 0)).to_be_focused()
    dan.keyboard.press("a")
    dan.keyboard.press("r")
    expect(grid(dan).locator(".tile.pending")).to_have_count(0)
    expect(dan.locator(".toolbar")).to_contain_text("2/48 labeled")
    labels = stored_labels(live_server, campaign_id)
    assert labels[("dan", dan_first[0])] == "accept" and labels[("dan", dan_first[1])] == "reject"

    # ... and sees the team's progress: cy's 29 beside dan's 2
    dan.get_by_role("link", name="Progress").click()
    table = dan.get_by_role("table", name="Labels per labeler")
    counts = {k: sum(1 for v in labeled.values() if v == k) for k in VALUES.values()}
    expect(table.get_by_role("row", name=re.compile(r"^cy "))).to_have_accessible_name(
        re.compile(rf"^cy owner {counts['accept']} {counts['reject']} {counts['unsure']} 29 "))
    expect(table.get_by_role("row", name=re.compile(r"^dan "))).to_have_accessible_name(
        re.compile(r"^dan labeler 1 1 0 2 "))
    expect(dan.get_by_test_id("consensus-accept")).to_have_text(str(counts["accept"] + 1))
    expect(dan.get_by_test_id("fleiss-kappa")).to_have_text("not defined yet")
    assert unnamed_controls(dan) == []
    screenshot(dan, "progress")

    # cy's progress tab follows dan's work as it comes in
    page.get_by_role("link", name="Progress").click()
    expect(page.get_by_role("table", name="Labels per labeler")
           .get_by_role("row", name=re.compile(r"^dan "))).to_have_accessible_name(
        re.compile(r"^dan labeler 1 1 0 2 "))

    # export CSV: its rows are the labeled objects, with each labeler's label
    page.get_by_role("link", name="Exports").click()
    expect(page.get_by_role("radio", name=re.compile("^CSV"))).to_be_checked()
    page.get_by_role("button", name="Start export").click()
    download_link = page.get_by_role("link", name=re.compile(r"^Download export \d+$"))
    expect(download_link).to_be_visible(timeout=30_000)
    expect(page.get_by_role("table", name=re.compile("exports"))).to_contain_text("ready: 31 rows")
    with page.expect_download() as info:
        download_link.click()
    rows = list(csv.DictReader(Path(info.value.path()).read_text().splitlines()))
    labels = stored_labels(live_server, campaign_id)
    assert {int(r["object_id"]) for r in rows} == {o for _, o in labels}
    exported = {(name, int(r["object_id"])): r[f"label_{name}"]
                for r in rows for name in ("cy", "dan") if r[f"label_{name}"]}
    assert exported == labels
    for row in rows:
        assert row["consensus"] == labels.get(("cy", int(row["object_id"])),
                                              labels.get(("dan", int(row["object_id"]))))
        assert row["probe_version"] != ""  # the probe's score of the moment is in the file
    assert unnamed_controls(page) == []
    screenshot(page, "exports")
    report(f"probe: the version that learned every label, the undo included, shown "
           f"{retrain_s:.1f} s after the undo was saved (worker polling every 0.2 s, debounce "
           f"0.5 s; {len(versions)} version(s) by then)")

