"""The web page end to end in headless Chromium: upload or draw, predict, download the alpha.

Needs Debian's ``chromium`` (``/usr/bin/chromium``) and the ``playwright`` Python package (the browser that
``playwright install`` would download is not used); skipped with the reason when either is missing. CI
installs both (see ``.ci/run``).
"""

import contextlib
import os

import numpy as np
import pytest
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
H, W = 90, 120

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the playwright package is missing (pip install playwright)")

pytestmark = pytest.mark.slow  # a browser per module, seconds per test: `pytest -m "not slow"` skips them


@pytest.fixture(scope="module")
def url(server_url):
    return server_url + "/"


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextlib.contextmanager
def _open(browser, url):
    """The page at ``url`` in a new browser context, once ``/api/info`` has answered; closed on exit."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(url)
        page.wait_for_selector(".examples img")
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser, url):
    with _open(browser, url) as page:
        yield page


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((H, W, 3)) * 255).astype(np.uint8)).save(tmp_path / "photo.png")
    trimap = np.full((H, W), 128, np.uint8)
    trimap[:25] = 0
    trimap[-25:] = 255
    Image.fromarray(trimap).save(tmp_path / "photo_trimap.png")
    (tmp_path / "notes.png").write_bytes(b"this is text, not an image")
    return tmp_path, trimap


def _upload(page, folder, image="photo.png"):
    """Upload ``image`` and the trimap from ``folder``."""
    page.set_input_files("#image-file", str(folder / image))
    page.click(".tab[data-guide=trimap]")
    page.set_input_files("#trimap-file", str(folder / "photo_trimap.png"))


def _predict_and_download_alpha(page) -> np.ndarray:
    page.click("#predict")
    page.wait_for_selector("#results[data-ready=true]")
    assert page.is_hidden("#error")
    with page.expect_download() as download:
        page.click("#download-alpha")
    with Image.open(download.value.path()) as png:
        return np.asarray(png)


def test_upload_image_and_trimap_then_download_alpha(page, files):
    folder, trimap = files
    _upload(page, folder)
    assert page.is_hidden("#quality-box")  # a server given a checkpoint offers no choice of quality
    alpha = _predict_and_download_alpha(page)
    assert alpha.shape == (H, W)
    assert (alpha[trimap == 0] == 0).all() and (alpha[trimap == 255] == 255).all()
    assert "(PyTorch, " in page.text_content("#result-info")  # which model ran
    assert page.get_attribute("#download-alpha", "download") == "photo_alpha.png"
    assert page.eval_on_selector("#cutout-img", "img => img.naturalWidth") == W
    assert page.eval_on_selector("#figure-img", "img => img.complete && img.naturalWidth > 0")


def test_a_choice_of_quality_when_two_ship(browser, start_server, ship, tiny_checkpoint, tiny_best_checkpoint,
                                           files):
    from deepmatting.backends import load_backend

    folder, _ = files
    with ship({"fast": tiny_checkpoint, "best": tiny_best_checkpoint}):
        url = start_server(load_backend(quality="fast", device="cpu"), quality="fast", device="cpu")
        with _open(browser, url) as page:
            assert page.is_visible("#quality-box")
            options = page.eval_on_selector_all("#quality option", "os => os.map(o => o.value)")
            assert options == ["fast", "best"]
            assert page.input_value("#quality") == "fast"  # the server's own
            page.select_option("#quality", "best")
            _upload(page, folder)
            page.click("#predict")
            page.wait_for_selector("#results[data-ready=true]")
            info = page.text_content("#result-info")  # the field was sent: the best model ran
            assert info.startswith("effnet-cf (PyTorch, the shipped best model)") and "matting" in info
            assert "effnet-cf" in page.text_content("#model")  # the header names the model that ran


def test_draw_strokes_then_predict(page, files):
    folder, _ = files
    page.set_input_files("#image-file", str(folder / "photo.png"))
    page.click(".tab[data-guide=scribbles]")
    box = page.locator("#scribbles").bounding_box()

    def stroke(brush, fy):
        page.click(f"label.tool:has(input[value={brush}])")
        y = box["y"] + fy * box["height"]
        page.mouse.move(box["x"] + 0.2 * box["width"], y)
        page.mouse.down()
        page.mouse.move(box["x"] + 0.8 * box["width"], y, steps=8)
        page.mouse.up()

    stroke("fg", 0.2)
    stroke("bg", 0.8)
    alpha = _predict_and_download_alpha(page)
    assert alpha.shape == (H, W)
    cols = slice(int(0.3 * W), int(0.7 * W))
    assert (alpha[round(0.2 * H), cols] == 255).all()  # under the foreground stroke
    assert (alpha[round(0.8 * H), cols] == 0).all()  # under the background stroke


def test_bad_upload_shows_a_message(page, files):
    folder, _ = files
    _upload(page, folder, "notes.png")
    page.click("#predict")
    page.wait_for_selector("#error:not([hidden])")
    message = page.text_content("#error")
    assert "not an image" in message and "Traceback" not in message
    # the server still serves: a good pair afterwards works
    page.set_input_files("#image-file", str(folder / "photo.png"))
    page.set_input_files("#trimap-file", str(folder / "photo_trimap.png"))
    assert _predict_and_download_alpha(page).shape == (H, W)


def test_example_thumbnails_show_a_placeholder_until_they_arrive(browser, url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    held = []  # requests the test lets through when it has seen the placeholders

    def hold(route):
        held.append(route)

    page.route("**/api/info", hold)
    page.route("**/api/examples/*/image.png", hold)

    def release(count):
        for _ in range(200):
            if len(held) >= count:
                break
            page.wait_for_timeout(25)
        assert len(held) >= count
        while held:
            held.pop().continue_()

    try:
        page.goto(url)
        assert page.locator(".examples .placeholder").is_visible()  # before the list of examples
        release(1)
        page.wait_for_selector(".examples img.loading")  # each thumbnail: a grey box of its size
        box = page.locator(".examples img.loading").first.bounding_box()
        assert box["width"] >= 40 and box["height"] >= 40
        assert page.locator(".examples .placeholder").count() == 0
        release(2)
        page.wait_for_function("document.querySelectorAll('.examples img:not(.loading)').length === 2")
    finally:
        context.close()
