"""The generated page in a real browser (headless Chromium): clicking a header re-orders the rows by that column."""

from __future__ import annotations

import pytest

from benchmark.leaderboard import browser
from benchmark.leaderboard.render import render
from tests.benchmark.leaderboard.test_render import filled  # noqa: F401 (fixture)


def as_numbers(values: list[str]) -> list[float]:
    return [float(v) for v in values if v != ""]


def test_clicking_a_header_sorts_the_rows_by_that_column(filled, tmp_path):  # noqa: F811
    reason = browser.missing()
    if reason:
        pytest.fail(f"the browser test needs headless Chromium: {reason}")
    leaderboard, _ = filled
    render(leaderboard)
    from selenium.webdriver.common.by import By

    driver = browser.browser()
    try:
        driver.get((leaderboard / "index.html").resolve().as_uri())
        table = driver.find_element(By.CSS_SELECTOR, 'table.board[data-track="fake"]')
        before = browser.column(driver, table, "method")
        assert before == ["Retrain", "Close", "Original", "Far", "Unstable"]  # ranked by avg gap

        browser.click_header(table, "test/acc")
        values = browser.column(driver, table, "test/acc")
        assert as_numbers(values) == sorted(as_numbers(values)) and values[-1] == ""  # ascending, no value last
        assert browser.column(driver, table, "method") == ["Far", "Close", "Retrain", "Original", "Unstable"]

        browser.click_header(table, "test/acc")
        values = browser.column(driver, table, "test/acc")
        assert as_numbers(values) == sorted(as_numbers(values), reverse=True) and values[-1] == ""

        table.find_element(By.CSS_SELECTOR, 'tr[data-method="Close"] summary').click()
        assert '"init_args"' in table.find_element(By.CSS_SELECTOR, 'tr[data-method="Close"] pre').text
        driver.save_screenshot(str(tmp_path / "screenshot.png"))
    finally:
        driver.quit()
    assert (tmp_path / "screenshot.png").stat().st_size > 0
