"""The replay page in a real headless chromium, opened from disk: scrub, read it back against the log, open things."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from tests.chromium import INSTALL_HINT, launch, missing, sync_playwright
from tests.test_replay import BOB, CAFE, CY, payload_run
from worlds.cli import app

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(bool(missing()), reason=f"replay page NOT tested in a browser: no {' and no '.join(missing())}; "
                       f"{INSTALL_HINT}"),
]


@pytest.fixture(scope="module")
def run_and_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("replay-browser")
    run_dir = payload_run(folder)
    page = folder / "replay.html"
    result = CliRunner().invoke(app, ["replay", str(run_dir), "-o", str(page)])
    assert result.exit_code == 0, result.output
    return run_dir, page


@pytest.fixture
def opened(run_and_page: tuple[Path, Path]) -> Iterator[tuple[Page, list[dict], list[str]]]:
    """The page loaded from file:// with the run's log; every console error or uncaught exception is collected."""
    run_dir, page_file = run_and_page
    log = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_file.as_uri())
        page.wait_for_selector("body[data-ready]")
        yield page, log, errors
        browser.close()


def _places_of_markers(page: Page) -> dict[str, tuple[str, float, float]]:
    shown = page.eval_on_selector_all("[data-agent-marker]", """els => els
        .filter(e => e.getAttribute("display") !== "none")
        .map(e => [e.getAttribute("data-agent-marker"), e.getAttribute("data-place"), +e.getAttribute("cx"),
                   +e.getAttribute("cy")])""")
    return {name: (place, x, y) for name, place, x, y in shown}


def test_scrubbing_shows_where_everyone_was_and_their_status_then(opened) -> None:
    page, log, errors = opened
    ticks = [e for e in log if e["kind"] == "tick"]
    step = next(i for i, t in enumerate(ticks) if t["positions"] != ticks[0]["positions"]
                and t["status"] != ticks[0]["status"])
    page.focus("#scrubber")
    for _ in range(step):
        page.keyboard.press("ArrowRight")
    assert page.input_value("#scrubber") == str(step)
    tick = ticks[step]
    assert page.text_content("#clock") == f"{datetime.fromisoformat(tick['sim_time']):%a %Y-%m-%d %H:%M}"
    nodes = {name: (x, y) for name, x, y in page.eval_on_selector_all(
        "[data-place-node]", "els => els.map(e => [e.getAttribute('data-place-node'), +e.getAttribute('cx'), "
                             "+e.getAttribute('cy')])")}
    markers = _places_of_markers(page)
    assert {name: place for name, (place, _, _) in markers.items()} == tick["positions"]
    for place, x, y in markers.values():
        assert math.dist((x, y), nodes[place]) < 40, "each marker is drawn at its place"
    rows = page.eval_on_selector_all("[data-agent-status]", "els => els.map(e => [e.getAttribute('data-agent-status'), "
                                     "e.querySelector('.where').textContent, e.querySelector('.line').textContent])")
    assert {name: (where, line) for name, where, line in rows} == \
        {name: (f"@ {tick['positions'][name]}", tick["status"][name]) for name in tick["positions"]}
    occupied = set(page.eval_on_selector_all(".place.occupied", "els => els.map(e => e.getAttribute('data-place-node'))"))
    assert occupied == set(tick["positions"].values())
    assert errors == []


def test_a_conversation_opens_its_transcript_and_markup_in_it_stays_text(opened) -> None:
    page, log, errors = opened
    lines = [e for e in log if e["kind"] == "utterance"]
    marked = next(e["conversation_id"] for e in lines if e["speaker"] == CY)
    page.locator(f'g.link[data-conversation-id="{marked}"]').click()
    said = [f"{e['speaker']}: {e['text']}" for e in lines if e["conversation_id"] == marked]
    assert page.locator("#transcript li").all_text_contents() == said
    assert page.text_content("#detail-title") == f"Conversation @ {CAFE}"
    assert page.locator(".selected").count() >= 2, "the link and the participants' blocks are highlighted"
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert page.evaluate("document.scripts.length") == 2
    names = page.locator("#status .name").all_text_contents()
    assert {BOB, CY} <= set(names)
    titles = page.eval_on_selector_all("[data-place-node]", "els => els.map(e => e.textContent)")
    assert f"{CAFE} (Town)" in titles, "the place's own name, markup and all, as its tooltip"
    assert errors == []


def test_a_probe_shows_every_answer_and_a_reflection_the_memories_it_cites(opened) -> None:
    page, log, errors = opened
    answers = [e for e in log if e["kind"] == "probe_answer"]
    page.click('[data-probe="0"]')
    assert page.text_content("#detail-title") == f"Probe 0: {answers[0]['question']}"
    rows = page.eval_on_selector_all("#probe-answers tr[data-probe-agent]", "els => els.map(e => "
                                     "[e.querySelector('.agent').textContent, e.querySelector('.answer').textContent])")
    assert rows == [[e["agents"][0], e["answer"]] for e in answers]
    reflection = next(e for e in log if e["kind"] == "reflection")
    memories = {e["memory"]["id"]: e["memory"]["text"] for e in log if e["kind"] == "memory_added"}
    page.locator(f'[data-reflection-id="reflection-{reflection["seq"]}"]').click()
    assert page.locator("#insights .insight").all_text_contents() == [i["text"] for i in reflection["insights"]]
    assert page.locator("#insights .cites li").all_text_contents() == \
        [memories[m] for i in reflection["insights"] for m in i["evidence"]]
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert errors == []
