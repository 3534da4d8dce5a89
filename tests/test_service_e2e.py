"""End to end: the real server (`deepfake-detector serve`) driven through its page by headless Chromium."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_helpers import Server, dfdc_image, model_ref, run_server

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; Playwright's own browser downloads are never used
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
SCREENSHOT_FOR_REVIEW = Path("/tmp/service-screenshot.png")
RESULT_TIMEOUT_MS = 300_000  # generous for a busy machine; a verdict normally takes well under a second

DROP_TEXT_FILE = """
() => {
  const data = new DataTransfer();
  data.items.add(new File(["shopping list\\nmilk\\n"], "notes.txt", { type: "text/plain" }));
  const zone = document.getElementById("drop-zone");
  zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: data, bubbles: true, cancelable: true }));
  zone.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
}
"""


def chromium_problem() -> str | None:
    if not CHROMIUM.is_file():
        return f"Debian Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright)"
    return None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("e2e")
    # A long request timeout: on a busy machine the first heatmap waits for Grad-CAM to be imported.
    with run_server(model_ref(folder / "model"), folder / "server.log", "--timeout", "600") as running:
        yield running


def headless_chromium() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (skips, saying why, where either is missing)."""
    problem = chromium_problem()
    if problem:
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from headless_chromium()


def api_prediction(server: Server, path: Path) -> dict:
    with open(path, "rb") as fh:
        response = httpx.post(
            server.url + "/v1/predict", files={"file": (path.name, fh, "image/jpeg")}, timeout=120
        )
    assert response.status_code == 200, response.text
    return response.json()


def test_page_shows_verdicts_for_a_real_and_a_fake_image(
    server: Server, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    real, fake = dfdc_image("Real"), dfdc_image("Fake")
    expected = {path.name: api_prediction(server, path) for path in (real, fake)}
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    page_errors: list[str] = []
    outside_requests: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith((server.url, "data:", "blob:"))
            else outside_requests.append(request.url)
        ),
    )
    try:
        # Locator assertions only: the page's Content-Security-Policy forbids the eval that
        # wait_for_function would need, which is part of what this test shows.
        page.goto(server.url + "/")
        expect(page.locator("#model-info")).to_have_text(re.compile(r"^Model "), timeout=RESULT_TIMEOUT_MS)

        page.set_input_files("#file-input", [str(real), str(fake)])
        expect(page.locator("article.card[data-status=done]")).to_have_count(2, timeout=RESULT_TIMEOUT_MS)
        cards = page.locator("article.card")
        assert cards.count() == 2
        seen = set()
        for index in range(2):
            card = cards.nth(index)
            name = card.locator(".filename").inner_text()
            seen.add(name)
            result = expected[name]
            verdict = card.locator(".verdict").inner_text()
            assert verdict == result["label"].upper() and verdict in ("REAL", "FAKE", "UNCERTAIN")
            prob = result["prob_fake"]
            assert card.locator(".prob-fill").get_attribute("style") == f"width: {100 * prob:.1f}%;"
            assert card.locator(".prob-bar").get_attribute("aria-valuenow") == str(prob)
            numbers = card.locator(".numbers").inner_text()
            assert f"P(fake) {100 * prob:.1f}%" in numbers
            # The words shown never contradict the probability shown beside them.
            if verdict == "FAKE":
                assert prob > 0.5 and f"{100 * prob:.1f}% sure it is fake" in numbers
            elif verdict == "REAL":
                assert prob < 0.5 and f"{100 * (1 - prob):.1f}% sure it is real" in numbers
            else:
                assert "too close to the threshold" in numbers
            box = card.locator(".face-box")
            assert box.count() == 1 and box.is_visible()
            assert (
                card.locator(".face-tag").inner_text()
                == f"{result['faces'][0]['label']} · P(fake) {prob:.2f}"
            )
            assert card.locator("img.photo").evaluate("img => img.complete && img.naturalWidth") == 224
        assert seen == {real.name, fake.name}

        # The heatmap appears on a click on the image.
        first = cards.nth(0)
        first.locator(".frame").click()
        heatmap = first.locator(".heatmaps img")
        heatmap.wait_for(timeout=RESULT_TIMEOUT_MS)
        assert heatmap.get_attribute("src").startswith("data:image/png;base64,")
        assert heatmap.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0

        # A text file dropped on the page is rejected with the reason.
        page.evaluate(DROP_TEXT_FILE)
        rejected = page.locator("article.card[data-status=error]")
        rejected.wait_for(timeout=RESULT_TIMEOUT_MS)
        assert (
            rejected.locator(".error-text").inner_text()
            == "notes.txt: not an image (content looks like text/HTML)"
        )
        expect(page.locator("#summary")).to_have_text("3 images checked.", timeout=RESULT_TIMEOUT_MS)

    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)  # what the page showed
        raise

    screenshot = tmp_path / "service-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    shutil.copyfile(screenshot, SCREENSHOT_FOR_REVIEW)
    page.close()
    assert page_errors == []
    assert outside_requests == []


PAGE_FITS = """
() => ({
  scroll: document.documentElement.scrollWidth,
  viewport: window.innerWidth,
  widest: Math.max(...[...document.querySelectorAll("img, .card, .prob-bar, table")]
    .map((node) => node.getBoundingClientRect().right)),
})
"""


@pytest.mark.parametrize("width,height", [(1280, 800), (390, 844)])
def test_page_fits_desktop_and_phone_widths_and_says_what_the_model_detects(
    server: Server, browser: Any, tmp_path: Path, width: int, height: int
) -> None:
    from playwright.sync_api import expect

    model = httpx.get(server.url + "/v1/model", timeout=60).json()
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        page.goto(server.url + "/")
        expect(page.locator("#model-info")).to_have_text(re.compile(r"^Model "), timeout=RESULT_TIMEOUT_MS)
        assert "uncertain between" in page.locator("#model-info").inner_text()
        if model.get("detects"):
            expect(page.locator("#model-detects")).to_have_text(model["detects"])
        page.set_input_files("#file-input", [str(dfdc_image("Fake", 1))])
        expect(page.locator("article.card[data-status=done]")).to_have_count(1, timeout=RESULT_TIMEOUT_MS)
        fits = page.evaluate(PAGE_FITS)
        assert fits["scroll"] <= fits["viewport"] and fits["widest"] <= fits["viewport"] + 0.5, fits
        assert page.locator("img.photo").evaluate("img => img.complete && img.naturalWidth") > 0
    except Exception:
        page.screenshot(path=str(tmp_path / f"failure-{width}.png"), full_page=True)
        raise
    finally:
        page.close()
