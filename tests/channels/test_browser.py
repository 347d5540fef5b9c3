"""The chat page in a real browser: Debian's chromium, headless, driven by Selenium through
chromedriver, on a phone-sized window. One conversation, in order: a question and its reply,
a quick reply, 👎 on a generated answer (stored as feedback), HTML in texts shown as text,
and a server restart the page rides out: the server keeps sessions in SQLite (no REDIS_URL),
so this is also the check that without Redis a restarted `rasa run` continues the
conversation. Screenshots go to .kefu/test-artifacts/."""

from __future__ import annotations

import json
import shutil
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from components.feedback import FeedbackLog
from tests.channels.conftest import API_TOKEN
from tests.conftest import PROJECT, RasaServer

ARTIFACTS = PROJECT / ".kefu" / "test-artifacts"

# with the web bot's other modules, minutes on the trained model: scheduled among the first (tests/conftest.py)
pytestmark = pytest.mark.longest

XSS = ['<img src=x onerror="window.kefuHacked=1">', "<script>window.kefuHacked=2</script>"]


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    for program in ("chromium", "chromedriver"):
        if not shutil.which(program):
            pytest.fail(f"{program} is not installed (Debian: apt-get install chromium chromium-driver; "
                        "make test does it)")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--disable-background-networking", "--window-size=390,844"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(shutil.which("chromedriver")))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def bubbles(driver: WebDriver, side: str) -> list[str]:
    return [node.text for node in driver.find_elements(By.CSS_SELECTOR, f".message.{side} .bubble")]


def type_message(driver: WebDriver, text: str) -> None:
    driver.find_element(By.ID, "text").send_keys(text)
    driver.find_element(By.ID, "send").click()


def wait_for_bot(driver: WebDriver, count: int, seconds: float = 120) -> list[str]:
    WebDriverWait(driver, seconds).until(lambda d: len(bubbles(d, "bot")) >= count and d.find_element(
        By.ID, "typing").get_attribute("hidden") is not None)
    return bubbles(driver, "bot")


def add_bot_text(bot: RasaServer, sender: str, text: str) -> None:
    request = urllib.request.Request(f"{bot.url}/conversations/{sender}/tracker/events?token={API_TOKEN}",
                                     data=json.dumps({"event": "bot", "text": text}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=60).read()


def test_a_conversation_in_the_browser(browser: WebDriver, web_bot: RasaServer, feedback_db: Path) -> None:
    browser.get(f"{web_bot.url}/webhooks/webchat/")
    sender = f"browser-{uuid.uuid4().hex}"
    browser.execute_script("localStorage.setItem('kefu-sender', arguments[0]); location.reload();", sender)
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "text").is_displayed())

    # a question and its reply, then a quick reply from the greeting's buttons
    type_message(browser, "hello")
    assert "How can I help" in wait_for_bot(browser, 1)[-1]
    [delivery] = [b for b in browser.find_elements(By.CSS_SELECTOR, ".quick-replies button")
                  if b.text == "Delivery times"]
    delivery.click()
    assert "business days" in wait_for_bot(browser, 2)[-1]
    assert bubbles(browser, "user")[-1] == "Delivery times"

    # a generated answer carries 👍/👎; 👎 is stored and the bot asks for the right answer
    type_message(browser, "I need to switch my account to a new email")
    count = len(wait_for_bot(browser, 3))
    thumbs_down = browser.find_elements(By.CSS_SELECTOR, ".message.bot .rating button[data-rating='down']")
    assert thumbs_down, bubbles(browser, "bot")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "webchat.png"))  # the README's picture
    thumbs_down[-1].click()
    assert "right answer" in wait_for_bot(browser, count + 1)[-1]
    assert [r.rating for r in FeedbackLog(feedback_db).replies() if r.conversation_id == sender] == ["down"]
    type_message(browser, "Profile > Email, then confirm the link we send.")
    assert "Thank you" in wait_for_bot(browser, count + 2)[-1]

    # HTML from the customer or in a bot text is shown as text, never run
    for text in XSS:
        add_bot_text(web_bot, sender, text)
    type_message(browser, XSS[0])
    wait_for_bot(browser, count + 3)
    browser.refresh()  # the history brings back the bot texts added above
    WebDriverWait(browser, 30).until(lambda d: XSS[1] in bubbles(d, "bot"))
    assert XSS[0] in bubbles(browser, "bot") and XSS[0] in bubbles(browser, "user")
    assert browser.execute_script("return window.kefuHacked") is None
    assert not browser.find_elements(By.CSS_SELECTOR, ".bubble img, .bubble script")

    # the page fits a phone: nothing wider than the screen
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")

    # the server restarts; the page reconnects and the conversation goes on
    before = len(bubbles(browser, "bot"))
    web_bot.stop()
    type_message(browser, "which payment methods can I use?")
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "status").is_displayed())
    web_bot.start()
    replies = wait_for_bot(browser, before + 1, seconds=300)
    assert "PayPal" in replies[-1]
    assert not browser.find_element(By.ID, "status").is_displayed()
    browser.refresh()
    WebDriverWait(browser, 30).until(lambda d: "which payment methods can I use?" in bubbles(d, "user"))
    assert "hello" in bubbles(browser, "user")  # the same conversation, before and after the restart

    browser.save_screenshot(str(ARTIFACTS / "webchat-after-restart.png"))

    # the page speaks the customer's language: its labels follow a switch to Chinese
    assert browser.find_element(By.ID, "text").get_attribute("placeholder") == "Type your question…"
    type_message(browser, "你好，我想问一下运费")
    assert "运费" in wait_for_bot(browser, before + 2)[-1]  # the shipping fee, told in Chinese
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "send").text == "发送")
    assert browser.find_element(By.ID, "text").get_attribute("placeholder") == "请输入您的问题…"
    assert browser.execute_script("return document.documentElement.lang") == "zh"
