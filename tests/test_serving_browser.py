"""End to end: the page of `acgan serve` in headless Chromium (Debian's), driven by Playwright.

Skips with the reason when Chromium or Playwright is missing (`make test` installs both where it can).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from acgan.sampling import load_generator
from acgan.serving import create_app
from tests.helpers import write_checkpoint

CHROMIUM = os.environ.get("ACGAN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a sandboxed machine with a closed network (no first-run, sync or component downloads).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium not found at {CHROMIUM}"),
]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`acgan serve`'s app under uvicorn on a free localhost port, in a background thread."""
    import uvicorn

    weights = write_checkpoint(tmp_path_factory.mktemp("browser"))
    # As `acgan evaluate --num 20` leaves it: some metrics could not be computed (NaN, written as null).
    report = {"num_samples": 20, "metrics": {"conditional_accuracy": {"generated": 0.5, "real": 0.9,
                                                                      "interval": [0.46, 0.54]},
                                             "fd": {"generated": float("nan"), "real": None},
                                             "precision": {"generated": 0.7, "real": float("nan")},
                                             "recall": {"generated": None, "real": float("inf")}}}  # fmt: skip
    (weights.parent / "eval.json").write_text(json.dumps(report))
    config = uvicorn.Config(create_app(load_generator(weights)), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_pick_a_class_generate_new_seed_and_every_view(server_url: str, tmp_path: Path) -> None:
    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        outside = []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith((server_url, "blob:")) else None)
        page.goto(server_url)

        def loaded(image_id: str) -> bool:
            script = "id => { const i = document.getElementById(id); return i.complete && i.naturalWidth > 0; }"
            return bool(page.evaluate(script, image_id))

        def wait_for_new(image_id: str, previous: str | None) -> str:
            page.wait_for_function(
                f"prev => {{ const i = document.getElementById('{image_id}');"
                " return i.src && i.src !== prev && i.complete && i.naturalWidth > 0; }",
                arg=previous or "",
                timeout=20_000,
            )
            return str(page.get_attribute(f"#{image_id}", "src"))

        first = wait_for_new("grid", None)
        assert "with the tac objective" in page.inner_text("#about")  # the page says how the generator was trained
        wait_for_new("interpolation", None)
        wait_for_new("sweep-image", None)
        assert page.locator("#label option").count() == 10
        assert "Sneaker" in page.locator("#label").inner_text()
        model = page.inner_text("#model")  # metrics an evaluation could not compute are shown, not fatal
        assert "0.500 ± 0.040 (real 0.900)" in model and "0.700 (real n/a)" in model and "n/a (real n/a)" in model
        assert "20 samples" in model
        assert "error" not in (page.get_attribute("#status", "class") or "")

        page.select_option("#label", label="7: Sneaker")
        page.fill("#num", "25")
        page.fill("#seed", "42")
        page.click("#generate")
        page.wait_for_function(
            "() => document.getElementById('grid').dataset.query === 'label=index%3A7&n=25&seed=42&scale=3'"
        )
        sneakers = wait_for_new("grid", first)
        shot_a = page.locator("#grid").screenshot()

        page.click("#new-seed")
        wait_for_new("grid", sneakers)
        assert page.input_value("#seed") != "42"
        shot_b = page.locator("#grid").screenshot()
        assert shot_a != shot_b  # a new seed shows different images

        page.fill("#seed", "42")
        page.click("#generate")
        page.wait_for_function("() => document.getElementById('grid').dataset.query.includes('seed=42')")
        page.wait_for_timeout(200)
        assert page.locator("#grid").screenshot() == shot_a  # the same seed shows the same images again

        page.fill("#truncation", "0.5")  # the truncation slider: generate and sweep ask for truncated latents
        page.dispatch_event("#truncation", "change")
        page.wait_for_function("() => document.getElementById('grid').dataset.query.includes('truncation=0.5')")
        page.wait_for_function("() => document.getElementById('sweep-image').dataset.query.includes('truncation=0.5')")
        assert wait_for_new("grid", None) and page.locator("#grid").screenshot() != shot_a

        page.fill("#steps", "12")
        page.click("#interpolate")
        page.wait_for_function("() => document.getElementById('interpolation').dataset.query.includes('steps=12')")
        page.fill("#rows", "3")
        page.click("#sweep")
        page.wait_for_function("() => document.getElementById('sweep-image').dataset.query.includes('rows=3')")
        assert loaded("interpolation") and loaded("sweep-image")
        assert page.get_attribute("#download", "href", timeout=1000).startswith("blob:")  # type: ignore[union-attr]

        page.fill("#num", "100000")
        page.click("#generate")
        page.wait_for_function("() => document.getElementById('status').classList.contains('error')")
        assert "n:" in page.inner_text("#status")  # the API's 422 names the field, and the page shows it

        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        assert (tmp_path / "page.png").stat().st_size > 10_000
        browser.close()
    assert outside == []  # nothing but the server itself was fetched
