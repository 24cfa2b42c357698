"""Drive the dom0 web console in headless Chromium (Debian's chromium + chromium-driver, Selenium).

`check_web_console` is what a visitor does: see every guest running, try a shutdown without the token
(refused, and the page says so), then shut one guest down with the token and watch the page show it
stopped. The same steps run against the console on the build host (with a fake `xl`) and against a
booted ISO through QEMU's port forwarding (base URL http://127.0.0.1:HOSTPORT).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@contextmanager
def headless_chromium(chromium: str = CHROMIUM, chromedriver: str = CHROMEDRIVER) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,700"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    try:
        yield driver
    finally:
        driver.quit()


def check_web_console(
    base_url: str,
    token: str,
    *,
    guests: Sequence[str],
    shut_down: str,
    screenshot: Path,
    timeout: float = 60.0,
    chromium: str = CHROMIUM,
    chromedriver: str = CHROMEDRIVER,
) -> None:
    """Assert the console's behaviour in a real browser; raises AssertionError saying what was not seen.

    guests: names that must all be listed as running (waits up to `timeout` for guests still booting);
    shut_down: the one guest to shut down (it must be stopped within `timeout`). The screenshot of the
    final page is written to `screenshot`, also when a step fails.
    """
    with headless_chromium(chromium, chromedriver) as driver:
        try:
            driver.get(base_url.rstrip("/") + "/")
            page = ConsolePage(driver, timeout)
            page.wait_for(lambda: all(page.state(name) == "running" for name in guests), f"{list(guests)} running")

            page.set_token("")
            page.act("shutdown", shut_down)
            message = page.wait_for_message()
            assert "refused" in message, f"a shutdown without the token was not refused; the page said {message!r}"
            assert page.state(shut_down) == "running", f"{shut_down} is {page.state(shut_down)} after a refusal"

            page.set_token(token)
            page.act("shutdown", shut_down)
            message = page.wait_for_message()
            assert "refused" not in message and "failed" not in page.message_class(), f"shutdown failed: {message!r}"
            page.wait_for(lambda: page.state(shut_down) == "stopped", f"{shut_down} stopped")
            others = [name for name in guests if name != shut_down]
            assert all(page.state(name) == "running" for name in others), "another guest changed state"
        finally:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(screenshot))


class ConsolePage:
    """The domain table, the token field and the message line, read through the page's own DOM."""

    def __init__(self, driver: webdriver.Chrome, timeout: float) -> None:
        self.driver = driver
        self.timeout = timeout

    def script(self, code: str, *args: Any) -> Any:
        return self.driver.execute_script(code, *args)

    def state(self, name: str) -> str | None:
        return self.script(  # type: ignore[no-any-return]
            "const cell = document.querySelector(`tr[data-name=${JSON.stringify(arguments[0])}] .state`);"
            "return cell ? cell.textContent : null;",
            name,
        )

    def message(self) -> str:
        return str(self.script("return document.getElementById('message').textContent;"))

    def message_class(self) -> str:
        return str(self.script("return document.getElementById('message').className;"))

    def set_token(self, token: str) -> None:
        field = self.driver.find_element(By.ID, "token")
        field.clear()
        if token:
            field.send_keys(token)

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        try:
            WebDriverWait(self.driver, self.timeout, poll_frequency=0.25).until(lambda _driver: condition())
        except TimeoutException:
            raise AssertionError(f"page did not show {what} within {self.timeout:.0f} s") from None

    def act(self, action: str, name: str) -> None:
        """Click the action's button and accept the page's confirmation."""
        self.script("document.getElementById('message').textContent = '';")
        selector = f"button[data-action={json.dumps(action)}][data-name={json.dumps(name)}]"

        def click() -> bool:
            try:
                self.driver.find_element(By.CSS_SELECTOR, selector).click()
                return True
            except StaleElementReferenceException:
                return False  # the table was refreshed under us: find the button again

        self.wait_for(click, f"a {action} button for {name}")
        alert = WebDriverWait(self.driver, self.timeout).until(lambda driver: driver.switch_to.alert)
        assert f"{action} {name}" in alert.text, f"confirmation asked {alert.text!r}"
        alert.accept()

    def wait_for_message(self) -> str:
        """The answer to an action, once the page shows it (not the 'sent, waiting' note)."""
        self.wait_for(lambda: bool(self.message()) and "waiting" not in self.message(), "the action's answer")
        return self.message()
