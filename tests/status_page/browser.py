"""Drives the real status page in headless Chromium for tests/status_page_e2e.rs.

Usage: browser.py --url SERVE_URL --mock KIMI_MOCK_URL --out DIR

With the Kimi mock failing, checks what a person sees (banner, the failing row, the incident,
and each day of the uptime bar read out without a mouse: Tab to the bar, arrow keys), saves
screenshots (light and dark, desktop and phone width) into DIR, then switches the mock back to
"ok" and waits — polling the DOM against a deadline — for the page to show the recovery by
itself, without a reload. Prints one line per step; exits non-zero with the reason on the first
failed expectation.
"""

import argparse
import datetime
import json
import sys
import time
import urllib.request

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling home over a closed network.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# The page polls every 5 s and the monitor needs two healthy probes (2 s apart) to close the
# incident: 60 s is a wide margin on a loaded machine.
RECOVERY_DEADLINE_S = 60


def fail(message):
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


def step(message):
    print(message, flush=True)


def expect(condition, message):
    if not condition:
        fail(message)


def wait_for(page, what, check, deadline_s):
    """Polls `check(page)` until it is truthy; fails with `what` at the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = check(page)
        if value:
            return value
        if time.monotonic() > deadline:
            fail(f"timed out after {deadline_s} s waiting for {what}")
        page.wait_for_timeout(200)


def banner(page):
    return page.locator(".banner").inner_text().strip()


def check_outage(page):
    text = banner(page)
    expect("Kimi — major outage for" in text, f"banner does not announce the Kimi outage: {text!r}")
    expect("state-down" in (page.locator(".banner").get_attribute("class") or ""), "banner is not red")
    row = page.locator("#monitor-kimi-chat")
    expect(row.count() == 1, "no row for kimi-chat")
    expect("Major outage" in row.inner_text(), f"kimi row does not say Major outage: {row.inner_text()!r}")
    ok_row = page.locator("#monitor-deepseek-reachability")
    expect("Operational" in ok_row.inner_text(), "deepseek row is not operational")
    incident = page.locator("table.incidents tbody tr.outage")
    expect(incident.count() >= 1, "no outage in the incident table")
    first = incident.first.inner_text()
    expect("Kimi" in first and "ongoing" in first and "provider" in first,
           f"incident row lacks provider, state or side: {first!r}")
    bar = row.locator("svg.bar")
    expect(bar.get_attribute("role") == "img" and "90-day uptime" in (bar.get_attribute("aria-label") or ""),
           "uptime bar has no accessible label")
    # One path per kind of day, not a node per day.
    paths = row.locator("svg.bar path").count()
    expect(1 <= paths <= 5 and row.locator("svg.bar rect").count() == 0,
           f"uptime bar is not drawn as one path per kind of day ({paths} paths)")
    expect(len(row.locator(".days").get_attribute("data-marks") or "") == 90, "uptime bar does not have 90 days")


def today_utc():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")


def yesterday_utc():
    day = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    return day.strftime("%Y-%m-%d")


def check_days_by_keyboard(page):
    """Each day's state and uptime without a mouse: Tab from the row's link onto its bar, read
    today (the bar's value, and the caption under it), step back a day with the arrow key."""
    page.focus("#monitor-kimi-chat h2 a")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.id")
    expect(focused == "days-kimi-chat", f"Tab from the Kimi link lands on {focused!r}, not its uptime bar")
    days = page.locator("#days-kimi-chat")
    expect(days.get_attribute("role") == "slider", "the focused bar is not announced as a control")
    page.keyboard.press("End")
    today = days.get_attribute("aria-valuetext") or ""
    expect(today.startswith(today_utc()) and "Outage" in today and "uptime" in today and "incident" in today,
           f"today's value does not give date, state, uptime and incidents: {today!r}")
    caption = page.locator("#monitor-kimi-chat .day-note").inner_text()
    expect(caption == today, f"the caption does not show the day: {caption!r} vs {today!r}")
    page.keyboard.press("ArrowLeft")
    before = days.get_attribute("aria-valuetext") or ""
    expect(before.startswith(yesterday_utc()), f"ArrowLeft did not step back a day: {before!r}")
    page.keyboard.press("Tab")
    caption = page.locator("#monitor-kimi-chat .day-note").inner_text()
    expect("uptime" in caption and not caption.startswith(today_utc()),
           f"the caption did not return to the 90-day uptime: {caption!r}")
    # A mouse over the right end of the bar shows today.
    box = days.bounding_box()
    page.mouse.move(box["x"] + box["width"] - 1, box["y"] + box["height"] / 2)
    hovered = page.locator("#monitor-kimi-chat .day-note").inner_text()
    expect(hovered.startswith(today_utc()), f"hovering today shows {hovered!r}")
    page.mouse.move(0, 0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--mock", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        step(f"browser {browser.version}")

        shots = [
            ("desktop", "light", DESKTOP),
            ("desktop", "dark", DESKTOP),
            ("phone", "light", PHONE),
            ("phone", "dark", PHONE),
        ]
        for width_name, scheme, viewport in shots:
            context = browser.new_context(viewport=viewport, color_scheme=scheme)
            page = context.new_page()
            page.goto(args.url + "/")
            check_outage(page)
            if width_name == "phone":
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                expect(overflow <= 0, f"the phone layout scrolls sideways by {overflow} px")
            path = f"{args.out}/status-{width_name}-{scheme}.png"
            page.screenshot(path=path, full_page=True)
            step(f"outage shown ({width_name}, {scheme}): {path}")
            if (width_name, scheme) == ("desktop", "light"):
                check_days_by_keyboard(page)
                step("days read out by keyboard and mouse")
            context.close()

        context = browser.new_context(viewport=DESKTOP, color_scheme="light")
        page = context.new_page()
        page.goto(args.url + "/monitors/kimi-chat")
        expect(page.locator("svg.chart path.p50").count() == 1, "no p50 line on the monitor page")
        expect(page.locator("#day-table tbody tr").count() == 90, "the monitor page lacks the 90-day table")
        page.focus("#day-table summary")
        page.keyboard.press("Enter")
        first_day = page.locator("#day-table tbody tr").first.inner_text()
        expect(first_day.startswith(today_utc()) and "Outage" in first_day,
               f"the day table's first row is not today's outage: {first_day!r}")
        expect("unavailable" in page.locator("table.results").inner_text(), "probe results lack the verdict")
        page.screenshot(path=f"{args.out}/monitor-desktop-light.png", full_page=True)
        page.goto(args.url + "/incidents")
        expect(page.locator("table.incidents tbody tr").count() >= 1, "incident history is empty")
        step("monitor page and incident history shown")

        page.goto(args.url + "/")
        check_outage(page)
        # A full reload would drop this marker: its survival proves the update was live.
        page.evaluate("window.__noReload = true")
        request = urllib.request.Request(
            args.mock + "/_mock/scenario",
            data=json.dumps({"scenario": "ok"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=5).read()
        step("mock recovered; waiting for the page to notice")
        started = time.monotonic()
        wait_for(page, "the banner to say all systems operational",
                 lambda pg: banner(pg) == "All systems operational", RECOVERY_DEADLINE_S)
        expect(page.evaluate("window.__noReload === true"), "the page reloaded instead of updating live")
        expect("Operational" in page.locator("#monitor-kimi-chat").inner_text(), "kimi row did not recover")
        resolved = page.locator("table.incidents tbody tr.outage").first.inner_text()
        expect("ongoing" not in resolved, f"incident still ongoing after recovery: {resolved!r}")
        page.screenshot(path=f"{args.out}/status-desktop-light-recovered.png", full_page=True)
        step(f"live update after {time.monotonic() - started:.1f} s")
        browser.close()
    step("OK")


if __name__ == "__main__":
    main()
