"""Signing in and out, creating a campaign with its team, managing members: in the browser."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect
from sqlalchemy import select

from server.models import Campaign, Membership


def test_sign_in_with_a_wrong_password_says_so(page: Page, live_server, screenshot):
    live_server.user("ada")
    page.goto("/campaigns/new")
    expect(page.get_by_role("heading", name="Sign in to galsearch")).to_be_visible()
    screenshot(page, "sign-in")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("not-her-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").filter(has_text="wrong username or password")).to_be_visible()
    # the right password, from the keyboard, lands on the page that was asked for
    page.get_by_label("Password").fill("ada-password")
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("heading", name="New campaign")).to_be_visible()
    assert page.url.endswith("/campaigns/new")


def test_create_a_campaign_with_a_team_then_manage_it(page: Page, live_server, sign_in,
                                                       screenshot, unnamed_controls):
    live_server.user("bea")
    live_server.user("cem")
    sign_in(page, "ada")
    page.get_by_role("link", name="New campaign").first.click()
    page.get_by_label("Name").fill("Ring galaxies, south")
    page.get_by_label("Target").fill("ring")
    page.get_by_label("Description").fill("Collisional and resonance rings for the training set.")
    page.get_by_role("button", name="Add a member").click()
    page.get_by_label("Username of member 1").fill("bea")
    page.get_by_role("button", name="Add a member").click()
    page.get_by_label("Username of member 2").fill("nobody")
    page.get_by_label("Role of member 2").select_option("viewer")
    assert unnamed_controls(page) == []
    screenshot(page, "new-campaign")
    page.get_by_role("button", name="Create campaign").click()

    # one member could not be added: the campaign exists, the team page says why
    expect(page.get_by_role("alert").filter(has_text="nobody")).to_contain_text(
        "no active user named 'nobody'")
    expect(page).to_have_url(re.compile(r"/campaigns/\d+/members$"))
    [(campaign,)] = live_server.query(select(Campaign).where(Campaign.name == "Ring galaxies, south"))
    assert (campaign.target, campaign.description) == (
        "ring", "Collisional and resonance rings for the training set.")
    roles = dict(live_server.query(select(Membership.user_id, Membership.role)
                                   .where(Membership.campaign_id == campaign.id)))
    assert {k: v.value for k, v in roles.items()} == {
        live_server.user("ada"): "owner", live_server.user("bea"): "labeler"}

    # add, promote and remove members from the keyboard-reachable form
    page.get_by_label("Username", exact=True).fill("cem")
    page.get_by_label("Role", exact=True).select_option("viewer")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("cell", name="cem", exact=True)).to_be_visible()
    page.get_by_label("Role of bea").select_option("owner")
    expect(page.get_by_role("status")).to_have_text("bea is now owner.")
    assert unnamed_controls(page) == []
    screenshot(page, "team")
    page.get_by_role("button", name="Remove cem").click()
    expect(page.get_by_role("cell", name="cem", exact=True)).to_have_count(0)
    roles = dict(live_server.query(select(Membership.user_id, Membership.role)
                                   .where(Membership.campaign_id == campaign.id)))
    assert {k: v.value for k, v in roles.items()} == {
        live_server.user("ada"): "owner", live_server.user("bea"): "owner"}

    # the campaign is listed for bea too, after ada signs out
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, "bea")
    expect(page.get_by_role("link", name="Ring galaxies, south", exact=True)).to_be_visible()
    screenshot(page, "campaigns")


def test_owners_change_the_settings_and_delete_a_campaign(page: Page, live_server, sign_in,
                                                           screenshot):
    sign_in(page, "ida")
    page.get_by_role("link", name="New campaign").first.click()
    page.get_by_label("Name").fill("Mergers, bright")
    page.get_by_role("button", name="Create campaign").click()
    expect(page.get_by_text("This campaign has no seed yet.")).to_be_visible()
    page.get_by_role("link", name="Settings").click()

    page.get_by_label("Magnitude window |Δmag_r|").fill("0.5")
    page.get_by_label("Faintest r mag").fill("41")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_label("Faintest r mag")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#settings-mag_r_max-error")).to_contain_text("from 0 to 40")
    page.get_by_label("Faintest r mag").fill("20.5")
    page.get_by_label("Source types").fill("dev, exp")
    page.get_by_label("Description").fill("Tidal features in bright galaxies.")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Campaign saved.")
    expect(page.get_by_text("Tidal features in bright galaxies.").first).to_be_visible()
    screenshot(page, "settings")
    [(campaign,)] = live_server.query(select(Campaign).where(Campaign.name == "Mergers, bright"))
    assert campaign.settings == {"mag_window": 0.5, "mag_r_max": 20.5,
                                 "source_types": ["DEV", "EXP"]}

    page.get_by_role("button", name="Delete campaign…").click()
    page.get_by_role("button", name="Delete “Mergers, bright” for good").click()
    expect(page.get_by_role("heading", name="Your campaigns")).to_be_visible()
    expect(page.get_by_role("link", name="Mergers, bright", exact=True)).to_have_count(0)
    assert live_server.query(select(Campaign).where(Campaign.name == "Mergers, bright")) == []
