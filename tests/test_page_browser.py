"""The data page in a real headless Chromium (Debian's, driven by Playwright), against a real
``capsync serve --http`` holding what ``capsync sync`` uploaded.

Screenshots go to ``test-artifacts/page/``. ``make test`` installs Chromium first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from page_fixtures import (
    ARTIFACTS,
    BACK_IMAGES,
    BURST_IMAGES,
    FRONT_IMAGES,
    PAGE_SIZE,
    THERMO_READINGS,
    VIBRATION_READINGS,
    PageProcess,
    start_page_server,
    write_and_sync,
)
from playwright.sync_api import Browser, Page, sync_playwright
from server_fixtures import KEY, KEY_ID, run_capsync, write_keys
from sync_helpers import BASE_NS

import capsync
from capsync.server.data_sources import open_data_query
from capsync.web.data_access import BinaryFilter, DataAccess

pytestmark = [pytest.mark.wire_independent, pytest.mark.slow]  # a browser and a server: ~1 min


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 20_000
ALL_IMAGES = FRONT_IMAGES + BACK_IMAGES + BURST_IMAGES


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageProcess]:
    tmp = tmp_path_factory.mktemp("page")
    keys = write_keys(tmp / "keys.json")
    page = start_page_server(tmp / "data", tmp, keys)
    try:
        write_and_sync(tmp / "capture", page, tmp / "robot.json")
        yield page
    finally:
        page.server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def page(browser: Browser, served: PageProcess) -> Iterator[Page]:
    """A fresh browser context, logged in, on the gallery."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    try:
        response = tab.goto(served.url)
        assert response.status == 401  # the login form
        tab.fill("#key_id", KEY_ID)
        tab.fill("#key", KEY)
        with tab.expect_navigation(url=served.url):
            tab.click("button[type=submit]")
        tab.wait_for_function(
            "() => /^[0-9]+$/.test(document.querySelector('#count')?.textContent ?? '')"
        )
        yield tab
    finally:
        context.close()


def shot(tab: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"))


class OpenedDataAccess(DataAccess):
    """The page's data layer over its own query layer on the server's data dir."""

    def __init__(self, data_dir: Path) -> None:
        self._opened = open_data_query(data_dir)
        super().__init__(self._opened, data_dir)

    def close(self) -> None:
        self._opened.close()


def data_access(served: PageProcess) -> DataAccess:
    """The page's data layer, opened beside the server (as the data API sees the store)."""
    return OpenedDataAccess(served.server.data_dir)


def wait_count(tab: Page, expected: int) -> None:
    """The count says ``expected`` and the first page of tiles is in."""
    tiles = min(expected, PAGE_SIZE)
    tab.wait_for_function(
        f"() => document.querySelector('#count').textContent === '{expected}' && "
        f"document.querySelectorAll('#grid .tile').length === {tiles}"
    )


def test_login_form_refuses_a_wrong_key(browser: Browser, served: PageProcess) -> None:
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.goto(served.url)
        tab.fill("#key_id", KEY_ID)
        tab.fill("#key", "not-the-key")
        with tab.expect_response(lambda r: r.url.endswith("/login")) as answer:
            tab.click("button[type=submit]")
        assert answer.value.status == 401
        assert "Wrong key id or key" in tab.inner_text(".error")
        assert context.cookies() == []
        shot(tab, "login-refused")
    finally:
        context.close()


def test_gallery_shows_every_image_newest_first_a_page_at_a_time(page: Page) -> None:
    wait_count(page, ALL_IMAGES)
    page.wait_for_timeout(300)  # nothing more arrives while the end of the grid is out of view
    assert page.locator("#grid .tile").count() == PAGE_SIZE
    page.wait_for_function(
        "() => [...document.querySelectorAll('#grid img.thumb')].slice(0, 12)"
        ".every(i => i.complete && i.naturalWidth > 0 && i.naturalWidth <= 256)"
    )
    shot(page, "gallery")
    page.locator("#sentinel").scroll_into_view_if_needed()
    page.wait_for_function(
        f"() => document.querySelectorAll('#grid .tile').length === {ALL_IMAGES}"
    )
    shown = page.eval_on_selector_all(
        "#grid .tile", "tiles => tiles.map(t => [t.dataset.id, t.dataset.time])"
    )
    assert len({binary_id for binary_id, _ in shown}) == ALL_IMAGES
    times = [time for _, time in shown]
    assert times == sorted(times, reverse=True)
    captions = page.eval_on_selector_all("#grid .tile figcaption", "c => c.map(x => x.textContent)")
    assert sum("cam-burst" in c for c in captions[-BURST_IMAGES:]) == BURST_IMAGES  # the oldest


def test_a_tag_filter_narrows_the_gallery(page: Page) -> None:
    wait_count(page, ALL_IMAGES)
    page.click("#tag-filter summary")
    page.check("#tag-options input[value=red]")
    wait_count(page, FRONT_IMAGES)
    shot(page, "gallery-tag-red")
    captions = page.eval_on_selector_all(
        "#grid .tile figcaption", "captions => captions.map(c => c.textContent)"
    )
    assert all("cam-front" in c for c in captions)


def test_a_component_filter_and_counts(page: Page) -> None:
    wait_count(page, ALL_IMAGES)
    page.select_option("#filters select[name=component]", "cam-back")
    wait_count(page, BACK_IMAGES)
    options = page.eval_on_selector_all(
        "#filters select[name=component] option", "o => o.map(x => x.textContent)"
    )
    assert f"cam-back ({BACK_IMAGES})" in options
    assert f"cam-front ({FRONT_IMAGES})" in options


def test_a_time_range_filter(page: Page) -> None:
    wait_count(page, ALL_IMAGES)
    # BASE_NS is 2023-11-14T22:13:20Z; cam-front and cam-back have one image a minute
    # from BASE_NS + 1 min: [+3 min, +5 min) holds two of each.
    page.fill("#filters input[name=since]", "2023-11-14T22:16:20")
    page.fill("#filters input[name=until]", "2023-11-14T22:18:20")
    page.dispatch_event("#filters input[name=until]", "change")
    wait_count(page, 4)
    page.click("#filters button[type=reset]")
    wait_count(page, ALL_IMAGES)


def test_drawing_a_box_stores_it_and_deleting_removes_it(page: Page, served: PageProcess) -> None:
    wait_count(page, ALL_IMAGES)
    binary_id = page.get_attribute("#grid .tile:nth-child(2)", "data-id")
    page.click("#grid .tile:nth-child(2) img.thumb")
    page.wait_for_function(
        "() => document.querySelector('#viewer').open"
        " && document.querySelector('#viewer-img').complete"
        " && document.querySelector('#viewer-img').naturalWidth > 0"
    )
    area = page.locator("#overlay").bounding_box()
    x0, y0 = area["x"] + area["width"] * 0.25, area["y"] + area["height"] * 0.2
    x1, y1 = area["x"] + area["width"] * 0.75, area["y"] + area["height"] * 0.6
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()
    page.fill("#box-label", "mug")
    page.click("#box-form button:has-text('Save box')")
    page.wait_for_selector("#viewer-boxes li:has-text('mug')")
    page.wait_for_selector("#overlay rect[data-box]")
    shot(page, "viewer-box")

    data = data_access(served)
    try:
        (box,) = data.get_binary(binary_id).bboxes
        assert box["label"] == "mug"
        assert box["x_min_normalized"] == pytest.approx(0.25, abs=0.02)
        assert box["y_min_normalized"] == pytest.approx(0.2, abs=0.02)
        assert box["x_max_normalized"] == pytest.approx(0.75, abs=0.02)
        assert box["y_max_normalized"] == pytest.approx(0.6, abs=0.02)

        page.click("#viewer-boxes button[aria-label='delete box mug']")
        page.wait_for_selector("#overlay rect[data-box]", state="detached")
        assert data.get_binary(binary_id).bboxes == ()
    finally:
        data.close()


def _select_tiles(page: Page, count: int) -> list[str]:
    ids = []
    for n in range(1, count + 1):
        page.check(f"#grid .tile:nth-child({n}) .pick input")
        ids.append(page.get_attribute(f"#grid .tile:nth-child({n})", "data-id"))
    page.wait_for_function(
        f"() => document.querySelector('#selected-count').textContent === '{count}'"
    )
    return ids


def test_tags_on_a_selection_are_added_and_removed(page: Page, served: PageProcess) -> None:
    wait_count(page, ALL_IMAGES)
    ids = _select_tiles(page, 3)
    page.fill("#tag-input", "reviewed")
    page.click("#add-tag")
    page.wait_for_selector("#message:has-text('Tagged 3 image(s)')")
    data = data_access(served)
    try:
        total, tagged, _ = data.list_binaries(BinaryFilter(tags=("reviewed",)))
        assert total == 3 and {b.id for b in tagged} == set(ids)
        shot(page, "gallery-selection-tagged")
        page.fill("#tag-input", "reviewed")
        page.click("#remove-tag")
        page.wait_for_selector("#message:has-text('from 3 image(s)')")
        assert data.list_binaries(BinaryFilter(tags=("reviewed",)))[0] == 0
    finally:
        data.close()


def test_creating_a_dataset_from_a_selection(page: Page, served: PageProcess) -> None:
    wait_count(page, ALL_IMAGES)
    ids = _select_tiles(page, 4)
    page.fill("#dataset-name", "training-set")
    page.click("#create-dataset")
    page.wait_for_selector("#message:has-text('with 4 image(s)')")
    data = data_access(served)
    try:
        (dataset,) = [d for d in data.list_datasets() if d.name == "training-set"]
        assert dataset.count == 4
        total, members, _ = data.list_binaries(BinaryFilter(dataset_id=dataset.id))
        assert total == 4 and {b.id for b in members} == set(ids)
    finally:
        data.close()
    # The dataset filter now shows exactly those images.
    page.click("#select-none")
    page.select_option("#filters select[name=dataset]", dataset.id)
    wait_count(page, 4)
    # Remove one from the dataset through the selection bar.
    _select_tiles(page, 1)
    page.select_option("#dataset-target", dataset.id)
    page.click("#remove-from-dataset")
    wait_count(page, 3)
    shot(page, "gallery-dataset")


def _open_readings(page: Page, component: str, field: str) -> None:
    page.click("button[data-tab=readings]")
    page.wait_for_selector("#reading-source select[name=component] option", state="attached")
    page.select_option("#reading-source select[name=component]", component)
    page.wait_for_selector(
        f"#reading-source select[name=field] option[value='{field}']", state="attached"
    )
    page.select_option("#reading-source select[name=field]", field)


def test_the_plot_of_a_known_series_has_every_point(page: Page) -> None:
    _open_readings(page, "thermo", "readings.temp")
    page.wait_for_function(
        "() => document.querySelector('#plot').dataset.field === 'readings.temp' && "
        f"document.querySelector('#plot').dataset.points === '{THERMO_READINGS}'"
    )
    drawn = page.evaluate(
        "[window.capsyncPage.readings.plot.data[0].length,"
        " Math.max(...window.capsyncPage.readings.plot.data[1])]"
    )
    assert drawn == [THERMO_READINGS, (THERMO_READINGS - 1) * 0.5]
    rows = page.eval_on_selector_all("#latest tbody tr", "r => r.length")
    assert rows == 20
    newest = page.inner_text("#latest tbody tr:first-child")
    assert str(THERMO_READINGS - 1) in newest
    page.wait_for_selector("#plot canvas")
    shot(page, "readings-thermo")


def test_a_long_series_arrives_downsampled_with_its_spike(page: Page) -> None:
    _open_readings(page, "vibration", "readings.g")
    page.wait_for_function(
        f"() => document.querySelector('#plot').dataset.total === '{VIBRATION_READINGS}'"
    )
    points, width, highest = page.evaluate(
        "[window.capsyncPage.readings.plot.data[0].length,"
        " window.capsyncPage.readings.plot.width,"
        " Math.max(...window.capsyncPage.readings.plot.data[1])]"
    )
    assert points <= 2 * width < VIBRATION_READINGS
    assert highest == 9.0  # min/max buckets keep the one spike
    shot(page, "readings-vibration")


def test_the_plot_updates_live_while_data_arrives(
    page: Page, served: PageProcess, tmp_path: Path
) -> None:
    _open_readings(page, "heartbeat", "readings.beat")
    page.wait_for_function("() => document.querySelector('#plot').dataset.points === '10'")
    capture_dir = tmp_path / "more"
    stream = capsync.open_stream(
        capture_dir,
        component_type="rdk:component:sensor",
        component_name="heartbeat",
        method_name="Readings",
        max_file_size_bytes=1 << 40,
    )
    with stream:
        for i in range(10, 25):
            stream.append({"beat": float(i)}, BASE_NS + i * 1_000_000_000)
        stream.flush_to_capture()
    from sync_helpers import machine_config, write_config

    config = write_config(tmp_path / "more.json", machine_config(capture_dir, served.server))
    result = run_capsync("sync", str(config), "--quiet")
    assert result.returncode == 0, result.stderr
    # No reload: the page polls while "live" is on.
    page.wait_for_function("() => document.querySelector('#plot').dataset.points === '25'")
