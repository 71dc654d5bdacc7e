"""Stage editing, the studio in a real browser: headless Chromium loads the page, uploads a photo and
moves a slider. Skipped, with the reason, where Chromium or its driver is not installed
(Debian: `apt-get install chromium chromium-driver`; Python: `pip install -e '.[test]'`)."""
from __future__ import annotations

import os
import shutil
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from attrgan.editing.studio import load_studio
from attrgan.editing.webapp import create_app, make_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                reason="headless Chromium is not installed (apt-get install chromium chromium-driver)")


def browser(width: int = 1400, height: int = 900):
    """Headless Chromium with the flags a closed network needs, driven by its own chromedriver."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def served(studio):
    """Serve ``studio`` on a free local port in a background thread; returns (server, base URL)."""
    server = make_server(create_app(studio), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/"


def wait_for(condition, timeout: float = 180.0, what: str = "the page"):  # generous: CI machines are busy
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def settings(url: str) -> list[str]:
    """The attribute settings (``set=Name=value``) of a page or API URL."""
    return parse_qs(urlsplit(url).query).get("set", [])


PIXELS = """
const img = document.getElementById('edited');
if (!img.complete || !img.naturalWidth) return null;
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const ctx = canvas.getContext('2d'); ctx.drawImage(img, 0, 0);
return Array.from(ctx.getImageData(0, 0, canvas.width, canvas.height).data);
"""


def test_page_uploads_a_photo_and_a_slider_changes_the_face(conditional_run, trained_regressor, photos, tmp_path):
    server, url = served(load_studio(conditional_run, trained_regressor, device="cpu"))
    driver = browser()
    try:
        driver.get(url)
        wait_for(lambda: driver.find_elements("css selector", "#faces img"), what="the test-face strip")
        driver.find_element("id", "upload").send_keys(str(photos / "astronaut.png"))
        query = wait_for(lambda: (driver.find_element("id", "edited").get_attribute("data-query") or "")
                         if "photo=u" in (driver.find_element("id", "edited").get_attribute("data-query") or "")
                         else None, what="the uploaded photo's edit")
        before = wait_for(lambda: driver.execute_script(PIXELS), what="the edited image")
        assert driver.find_element("id", "crop").get_attribute("src").startswith("blob:")
        assert "worse than 99% of its test faces" in driver.find_element("id", "familiarity").text  # a real photo
        slider = driver.find_element("css selector", 'input[data-attribute="Smiling"]')
        slider.click()
        for _ in range(25):  # a burst of slider moves; the page sends the latest, never a queue
            slider.send_keys("\ue014")  # ARROW_RIGHT
        def settled_edit() -> str | None:
            # the shown edit settles on the slider's final value, the one the URL records (on a busy
            # machine an intermediate value of the burst may be shown first)
            shown = driver.find_element("id", "edited").get_attribute("data-query") or ""
            final = shown != query and "Smiling" in shown and settings(shown) == settings(driver.current_url)
            return shown if final else None

        moved = wait_for(settled_edit, what="the edited face to show the slider's final value")
        wait_for(lambda: driver.find_element("id", "busy").text == "", what="rendering to finish")
        assert "Smiling" in (driver.find_element("id", "samples").get_attribute("data-query") or "")
        # five loaders and the upload share the label: it names the latest work still running and
        # clears when the last of them ends, whichever order they end in
        assert driver.execute_script(
            'const endA = busy.start("a"), endB = busy.start("b"); endB(); const mid = $("busy").textContent;'
            ' endA(); return [mid, $("busy").textContent];') == ["a", ""]
        assert driver.execute_script(
            'const endA = busy.start("a"), endB = busy.start("b"); endA(); const mid = $("busy").textContent;'
            ' endB(); endB(); return [mid, $("busy").textContent];') == ["b", ""]
        after = wait_for(lambda: driver.execute_script(PIXELS), what="the edited image")
        assert after != before, "the slider did not change the face on the page"
        assert "Smiling" in driver.current_url  # the view is in the URL
        with urllib.request.urlopen(url + moved.lstrip("/")) as response:
            assert response.status == 200
        shot = Path(os.environ.get("ATTRGAN_SCREENSHOT", tmp_path / "studio.png"))
        driver.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000

        shared = driver.current_url  # reloading the URL restores the photo and the slider
        driver.get(shared)
        wait_for(lambda: driver.find_element("id", "edited").get_attribute("data-query") == moved,
                 what="the same edit after a reload")
        value = float(driver.find_element("css selector", 'input[data-attribute="Smiling"]').get_attribute("value"))
        assert f"Smiling%3D{value:g}" in shared or f"Smiling={value:g}" in shared, (value, shared)
    finally:
        driver.quit()
        server.shutdown()


def test_a_shared_link_whose_upload_is_gone_falls_back_and_narrow_pages_fit(conditional_run, tmp_path):
    server, url = served(load_studio(conditional_run, device="cpu"))
    driver = browser(width=700)
    try:
        gone = "u0123456789abcdef"
        driver.get(url + f"?photo={gone}&n=36&keep=1&set=Smiling%3D4.5")
        edit = wait_for(lambda: driver.find_element("id", "edited").get_attribute("data-query"),
                        what="the fallback face")
        first_face = driver.find_element("css selector", "#faces img").get_attribute("data-id")
        assert f"photo={first_face}" in edit and settings(edit) == ["Smiling=4.5"]
        notice = driver.find_element("id", "notice").text
        assert gone in notice and f"showing the test face {first_face} instead" in notice
        assert driver.find_element("id", "error").is_displayed() is False  # a notice, not the red banner
        samples = wait_for(lambda: driver.find_element("id", "samples").get_attribute("data-query"), what="the samples")
        assert gone not in samples and "n=36" in samples  # the samples never repeat the missing id
        assert driver.find_element("id", "count").get_attribute("value") == "36"  # the faces menu shows the link's n
        slider = driver.find_element("css selector", 'input[data-attribute="Smiling"]')
        assert float(slider.get_attribute("value")) == 4.5
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        assert driver.execute_script("const s = $('sliders'); return s.scrollWidth <= s.clientWidth")  # values shown
        assert driver.find_element("id", "keep").is_selected()
        second = driver.find_elements("css selector", "#faces img")[1]
        second.click()  # keep is on: the edit moves to the next face with its slider
        moved = wait_for(lambda: (q := driver.find_element("id", "edited").get_attribute("data-query") or "")
                         and f"photo={second.get_attribute('data-id')}" in q and q, what="the second face's edit")
        assert settings(moved) == ["Smiling=4.5"] and driver.find_element("id", "notice").text == ""
        driver.find_element("id", "keep").click()  # keep off: a new face starts from its own values
        driver.find_elements("css selector", "#faces img")[2].click()
        reset = wait_for(lambda: (q := driver.find_element("id", "edited").get_attribute("data-query") or "")
                         and "Smiling" not in q and q, what="the third face's edit")
        assert settings(reset) == [] and "keep=1" not in driver.current_url
    finally:
        driver.quit()
        server.shutdown()


def test_a_link_with_bad_values_is_adjusted_and_says_how(conditional_run, tmp_path):
    """A value the API would refuse is dropped or clamped before any request, the page says which,
    and every image loads (none is a broken icon) and later edits work."""
    server, url = served(load_studio(conditional_run, device="cpu"))
    driver = browser()
    try:
        driver.get(url + "?set=Smiling%3D9&set=Wings%3D1&set=Bald%3Dabc&set=%E2%98%BA%3D1&steps=100&seed=%D9%A3&n=1_6")
        edit = wait_for(lambda: driver.find_element("id", "edited").get_attribute("data-query"), what="the first face")
        assert settings(edit) == ["Smiling=5"]
        notice = driver.find_element("id", "notice").text
        for fragment in ("This link was adjusted:", "Smiling=9 clamped to 5", "dropped set=Wings=1",
                         "dropped set=Bald=abc: the value is not a number", "dropped set=☺=1",
                         "steps=100 is not a whole number from 2 to 16", "seed=٣", "n=1_6"):
            assert fragment in notice, (fragment, notice)
        assert float(driver.find_element("css selector", 'input[data-attribute="Smiling"]').get_attribute("value")) == 5
        assert settings(driver.current_url) == ["Smiling=5"]  # the URL now holds what the page shows
        wait_for(lambda: driver.find_element("id", "samples").get_attribute("data-query"), what="the samples")
        assert driver.find_element("id", "error").is_displayed() is False
        slider = driver.find_element("css selector", 'input[data-attribute="Smiling"]')
        driver.execute_script("arguments[0].focus()", slider)  # a click would move it to where it lands
        slider.send_keys("\ue012")  # ARROW_LEFT: a later edit works
        wait_for(lambda: settings(driver.find_element("id", "edited").get_attribute("data-query") or "")
                 == ["Smiling=4.9"], what="the next edit")
        assert driver.find_element("id", "error").is_displayed() is False
    finally:
        driver.quit()
        server.shutdown()


def test_an_upload_outlives_browsing_the_test_faces(conditional_run, learnable_dataset, photos, monkeypatch):
    import attrgan.editing.studio

    monkeypatch.setattr(attrgan.editing.studio, "KEPT_PHOTOS", 2)  # uploads' room, filled many times by test faces
    server, url = served(load_studio(conditional_run, data=learnable_dataset, device="cpu"))
    driver = browser()
    try:
        driver.get(url)
        wait_for(lambda: driver.find_elements("css selector", "#faces img"), what="the test-face strip")
        driver.find_element("id", "upload").send_keys(str(photos / "astronaut.png"))
        uploaded = wait_for(lambda: (q := driver.find_element("id", "edited").get_attribute("data-query") or "")
                            and "photo=u" in q and q, what="the upload's edit")
        photo = parse_qs(urlsplit(uploaded).query)["photo"][0]
        for _ in range(3):
            driver.find_element("id", "more-faces").click()
        faces = wait_for(lambda: (found := driver.find_elements("css selector", "#faces img")) and len(found) >= 48
                         and found, what="more test faces")
        for face in faces[:8]:  # each shown, encoded and held by the server
            face.click()
            wait_for(lambda: face.get_attribute("data-id") in (driver.find_element("id", "edited").get_attribute(
                "data-query") or ""), what="a test face's edit")
        driver.get(url + f"?photo={photo}&set=Smiling%3D1")
        edit = wait_for(lambda: driver.find_element("id",
                                                    "edited").get_attribute("data-query"), what="the upload again")
        assert f"photo={photo}" in edit and driver.find_element("id", "notice").text == ""
        assert driver.find_element("id", "error").is_displayed() is False
    finally:
        driver.quit()
        server.shutdown()
