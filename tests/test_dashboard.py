"""The dashboard, as a user opens it: served over real HTTP against the emulator (through the
official clients), its actions changing the emulator's state, and in a real browser
(Chromium, driven by Playwright): rendered, acted on, and updated live."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from google.cloud import tasks_v2

from celery_gcp import Celery
from celery_gcp.dashboard import dashboard_app
from celery_gcp.schedules import crontab
from celery_gcp.testing import serve

from .shared_emulator import SharedEmulator

PARENT = "projects/p/locations/l"
QUEUE = f"{PARENT}/queues/celery"


@dataclass
class Site:
    app: Celery
    emulator: Any
    url: str
    waiting: Any  # the AsyncResult of a task waiting an hour


def project() -> Celery:
    app = Celery("shop", gcp_project="p", gcp_location="l", result_backend="memory://",
                 task_base_url="http://127.0.0.1:9", timezone="Europe/Paris", beat_schedule={
                     "nightly": {"task": "shop.report", "schedule": crontab(minute=0, hour=3)}})

    @app.task(name="shop.charge")
    def charge(order: str, cents: int) -> None: ...

    @app.task(name="shop.report")
    def report() -> None: ...

    @app.task(name="shop.fetch", bind=True, max_retries=5)
    def fetch(self: Any, url: str) -> None:
        raise self.retry(exc=ConnectionError(f"{url} timed out"), countdown=3600)

    return app


@pytest.fixture
def site(module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch,
         request: pytest.FixtureRequest) -> Iterator[Site]:
    from celery_gcp import beat, gcp
    from celery_gcp.results.layer import make_meta

    emu = module_emulator.begin(None)
    monkeypatch.setenv("CLOUD_TASKS_EMULATOR_HOST", emu.address)
    monkeypatch.setenv("CLOUD_SCHEDULER_EMULATOR_HOST", emu.address)
    app = project()
    emu.tasks_client().create_queue(parent=PARENT, queue={"name": QUEUE})
    beat.sync(app, gcp.scheduler_client(), prune=True)
    waiting = app.tasks["shop.charge"].apply_async(("<script>alert(1)</script>", 250),
                                                   countdown=3600)
    store = app.backend
    assert store is not None
    store.set_meta("done-1", {**make_meta(app, "done-1", "SUCCESS", {"paid": True},
                                                        runtime=0.25),
                              "name": "shop.charge"}, 3600)
    actions = getattr(request, "param", True)
    try:
        with serve(dashboard_app(app, actions=actions)) as url:
            yield Site(app, emu, url, waiting)
    finally:
        module_emulator.reset()


def token_of(html: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', html)
    assert found is not None, "no action form on the page"
    return found[1]


def test_the_page_shows_queues_tasks_jobs_and_finished_tasks(site: Site) -> None:
    html = httpx.get(site.url + "/", timeout=30).text
    assert "<code>celery</code>" in html
    assert "RUNNING" in html
    assert "shop.charge" in html
    assert site.waiting.id in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # arguments shown, escaped
    assert "<script>alert(1)</script>" not in html
    assert "0 3 * * *" in html
    # The next fire on the job's own clock (03:00 in Paris), then in UTC.
    assert re.search(r"\d{4}-\d\d-\d\d 03:00:00 Europe/Paris \(0[12]:00 UTC\)", html)
    assert "ENABLED" in html
    assert "done-1" in html
    assert "{&quot;paid&quot;: true}" in html
    assert "0.250 s" in html  # its runtime
    detail = httpx.get(f"{site.url}/tasks/celery/{site.waiting.id}", timeout=30)
    assert detail.status_code == 200
    assert "x-celery-task-id" in detail.text.lower()
    assert "250" in detail.text


def test_actions_change_the_emulators_state(site: Site) -> None:
    client = site.emulator.tasks_client()
    with httpx.Client(base_url=site.url, timeout=30) as http:
        token = token_of(http.get("/").text)
        answer = http.post("/actions/queues/celery/pause", data={"token": token})
        assert answer.status_code == 303
        assert client.get_queue(name=QUEUE).state == tasks_v2.Queue.State.PAUSED
        http.post("/actions/queues/celery/resume", data={"token": token})
        assert client.get_queue(name=QUEUE).state == tasks_v2.Queue.State.RUNNING
        http.post(f"/actions/tasks/celery/{site.waiting.id}/run", data={"token": token})
        ran = client.get_task(name=f"{QUEUE}/tasks/{site.waiting.id}")
        assert ran.dispatch_count >= 1  # dispatched now, an hour early
        http.post(f"/actions/tasks/celery/{site.waiting.id}/delete", data={"token": token})
        assert list(client.list_tasks(parent=QUEUE)) == []
        scheduler = site.emulator.scheduler_client()
        (job,) = scheduler.list_jobs(parent=PARENT)
        fired = http.post(f"/actions/jobs/{job.name.rsplit('/', 1)[1]}/run",
                          data={"token": token})
        assert fired.status_code == 303
        forged = http.post("/actions/queues/celery/purge", data={"token": "guess"})
        assert forged.status_code == 403


def test_a_retried_task_shows_why_it_was_retried(site: Site) -> None:
    # The task runs on a worker the emulator delivers it to, and retries itself: its retry
    # is a new Cloud Tasks task, due in an hour, whose reason only the result store keeps.
    client = site.emulator.tasks_client()
    with serve(site.app.asgi_app()) as worker:
        site.app.conf.task_base_url = worker
        sent = site.app.tasks["shop.fetch"].delay("https://feed.example")
        deadline = time.monotonic() + 30
        while not any(t.name.endswith(f"{sent.id}-r1") for t in client.list_tasks(parent=QUEUE)):
            assert time.monotonic() < deadline, "the task was not retried"
            time.sleep(0.05)
    reason = "retry 1: ConnectionError: https://feed.example timed out"
    html = httpx.get(site.url + "/", timeout=30).text
    assert f'<td data-label="retry reason">{reason}</td>' in html
    detail = httpx.get(f"{site.url}/tasks/celery/{sent.id}-r1", timeout=30).text
    assert f"<code>{reason}</code>" in detail


def test_finished_tasks_without_their_name_say_which_setting_stores_it(site: Site) -> None:
    from celery_gcp.results.layer import make_meta

    html = httpx.get(site.url + "/", timeout=30).text
    assert "result_extended" not in html  # every result shown names its task
    store = site.app.backend
    assert store is not None
    store.set_meta("done-2", make_meta(site.app, "done-2", "SUCCESS", 1), 3600)
    html = httpx.get(site.url + "/", timeout=30).text
    assert "done-2" in html
    assert "<code>result_extended = True</code> to store" in html


def test_a_long_queue_is_paged(site: Site) -> None:
    client = site.emulator.tasks_client()
    client.pause_queue(name=QUEUE)
    charge = site.app.tasks["shop.charge"]
    sent = {charge.apply_async((f"order-{i}", i)).id for i in range(149)} | {site.waiting.id}
    with httpx.Client(base_url=site.url, timeout=30) as http:
        html = http.get("/").text
        assert 'data-label="waiting">100+</td>' in html  # the first page's, and more
        first = set(re.findall(r"<code>([0-9a-f-]{36})</code>", html)) & sent
        assert len(first) == 100
        found = re.search(r'<a href="(queues/celery\?page=[^"]+)">more tasks of celery', html)
        assert found is not None
        rest = http.get("/" + found[1].replace("&amp;", "&"))
        assert rest.status_code == 200
        second = set(re.findall(r"<code>([0-9a-f-]{36})</code>", rest.text)) & sent
        assert "more tasks of" not in rest.text  # the last page
        assert len(second) == 50
        assert first | second == sent
        assert 'href="../tasks/celery/' in rest.text  # its links lead back to the root's pages
        assert http.get("/queues/celery?page=bogus").status_code == 400
        assert http.get("/queues/nope").status_code == 404


@pytest.mark.parametrize("site", [False], indirect=True)
def test_a_read_only_dashboard_offers_and_takes_no_action(site: Site) -> None:
    html = httpx.get(site.url + "/", timeout=30).text
    assert "<form" not in html
    assert "read-only" in html
    answer = httpx.post(f"{site.url}/actions/queues/celery/pause", data={"token": "x"})
    assert answer.status_code == 403
    assert "--allow-actions" in answer.text
    state = site.emulator.tasks_client().get_queue(name=QUEUE).state
    assert state == tasks_v2.Queue.State.RUNNING


def chromium() -> str:
    """Debian's Chromium, which README's test command installs."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("no Chromium for the browser test: install Debian's (apt-get install -y "
                    "chromium), as README's test command does")
    return path


def test_in_a_browser_the_page_renders_acts_and_updates_live(site: Site) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(),
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
            page.goto(site.url + "/")
            assert page.locator("h2", has_text="Queues").is_visible()
            row = page.locator("tr", has_text="celery").first
            assert "RUNNING" in row.inner_text()
            row.get_by_role("button", name="pause").click()
            page.wait_for_load_state()
            assert "PAUSED" in page.locator("tr", has_text="celery").first.inner_text()
            # A task sent now shows up without a reload (the page polls its main part).
            sent = site.app.tasks["shop.charge"].apply_async(("live-order", 1), countdown=600)
            page.locator("code", has_text=sent.id).wait_for(timeout=15_000)
        finally:
            browser.close()


def test_on_a_phone_without_javascript_each_row_reads_whole_and_nothing_scrolls_sideways(
        site: Site) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(),
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844},
                                          java_script_enabled=False)
            page = context.new_page()
            page.goto(site.url + "/")
            assert page.locator("noscript").count() == 1
            widths = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
            assert widths[0] <= widths[1], widths
            # The id is readable: a line or two of the screen's width, not a column of
            # single characters squeezed between seven others.
            task_id = page.locator("code", has_text=site.waiting.id)
            box = task_id.bounding_box()
            assert box is not None
            assert box["width"] > 200, box
            assert box["height"] < 40, box
            cell = page.locator("td", has=task_id).first
            assert cell.get_attribute("data-label") == "id"
            # Each value is labelled, as the laptop's column headers label it.
            label = cell.evaluate("e => getComputedStyle(e, '::before').content")
            assert label == '"id: "', label
            context.close()
        finally:
            browser.close()
