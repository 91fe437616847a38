"""Drive the generated page in headless Chromium (selenium + Debian's chromium / chromium-driver).

`python -m benchmark.leaderboard.browser` opens `leaderboard/index.html`, sorts the first table by
`test/acc` and writes `leaderboard/screenshot.png`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from benchmark.leaderboard.tracks import LEADERBOARD

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = ("/usr/bin/chromedriver",)
INSTALL = "apt-get install -y chromium chromium-driver"


def find(candidates: tuple[str, ...], name: str) -> str | None:
    return next((c for c in candidates if Path(c).exists()), None) or shutil.which(name)


def missing() -> str | None:
    """Why a headless browser cannot be started here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[test]'"
    if find(CHROMIUM, "chromium") is None:
        return f"chromium is not installed: {INSTALL}"
    if find(CHROMEDRIVER, "chromedriver") is None:
        return f"chromedriver is not installed: {INSTALL}"
    return None


def browser(width: int = 1400, height: int = 1000):
    """A headless Chromium WebDriver (no network needed)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = find(CHROMIUM, "chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(find(CHROMEDRIVER, "chromedriver")), options=options)


def column(driver, table, key: str) -> list[str | None]:
    """The `data-sort` values of the column headed `key`, top to bottom ('' = no value)."""
    from selenium.webdriver.common.by import By

    headers = [th.get_attribute("data-key") for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    index = headers.index(key) + 1
    return [td.get_attribute("data-sort") for td in table.find_elements(By.CSS_SELECTOR, f"tbody tr td:nth-child({index})")]


def click_header(table, key: str) -> None:
    from selenium.webdriver.common.by import By

    table.find_element(By.CSS_SELECTOR, f'thead th[data-key="{key}"]').click()


def main(page: Path = LEADERBOARD / "index.html", out: Path = LEADERBOARD / "screenshot.png", key: str = "test/acc") -> Path:
    from selenium.webdriver.common.by import By

    reason = missing()
    if reason:
        sys.exit(f"error: {reason}")
    driver = browser(height=1600)
    try:
        driver.get(Path(page).resolve().as_uri())
        table = driver.find_element(By.CSS_SELECTOR, "table.board")
        click_header(table, key)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
    print(out)
    return out


if __name__ == "__main__":
    main()
