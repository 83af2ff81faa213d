"""Drive Open WebUI 0.12.4 in Debian's Chromium with Playwright, as a person would, and watch what
its socket delivers: every answer arrives as `response:completion` text deltas, then a
`chat:completion` event with `done: true` (or a `chat:message:error`).

Playwright only drives /usr/bin/chromium (never a browser of its own). The launch flags keep
Chromium from reaching out to the internet at start (this machine's network is closed).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@dataclass
class Answer:
    model: str
    deltas: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, text)
    text: str = ""
    error: str = ""
    done_at: float = 0.0
    sent_at: float = 0.0
    screenshot: Path | None = None

    @property
    def streamed_over_time(self) -> bool:
        """More than one text update, the first before the end: a person sees it grow."""
        return len(self.deltas) >= 2 and self.deltas[0][0] < self.done_at


def _socket_event(frame: str) -> dict | None:
    """The payload of a socket.io `42["events", {...}]` frame, else None."""
    m = re.match(r"^\d+", frame)
    if not m or not frame[m.end():].startswith("["):
        return None
    try:
        message = json.loads(frame[m.end():])
    except ValueError:
        return None
    if isinstance(message, list) and len(message) == 2 and message[0] == "events" and isinstance(message[1], dict):
        return message[1]
    return None


class OpenWebUI:
    """One browser page on an Open WebUI instance."""

    def __init__(self, playwright, url: str, shots: Path) -> None:
        self.url = url.rstrip("/")
        self.shots = shots
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        self.page = self.browser.new_page(viewport={"width": 1280, "height": 900})
        self.events: list[tuple[float, dict]] = []
        self.page.on("websocket", lambda ws: ws.on("framereceived", self._on_frame))

    def _on_frame(self, frame: str | bytes) -> None:
        event = _socket_event(frame) if isinstance(frame, str) else None
        if event is not None:
            self.events.append((time.monotonic(), event))

    def close(self) -> None:
        self.browser.close()

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def sign_up_first_admin(self, name: str, email: str, password: str) -> None:
        """The landing page's "Get started", then the form that creates the admin account."""
        self.page.goto(self.url + "/auth")
        self.page.get_by_role("button", name="Get started").click()
        self.page.fill("#name", name)
        self.page.fill("#email", email)
        self.page.fill("#password", password)
        self.shot("01-sign-up")
        self.page.get_by_role("button", name="Create Admin Account").click()
        self.page.wait_for_url(self.url + "/", timeout=60_000)
        self._dismiss_release_notes()

    def _dismiss_release_notes(self) -> None:
        """A new account sees "What's New" once; it covers the chat until dismissed."""
        button = self.page.get_by_role("button", name="Okay, Let's Go!")
        try:
            button.wait_for(timeout=15_000)
        except Exception:  # noqa: BLE001 - not shown: nothing to dismiss
            return
        button.click()

    def token(self) -> str:
        """The session's bearer token (Open WebUI keeps it in localStorage)."""
        return self.page.evaluate("() => localStorage.token")

    def listed_models(self) -> list[str]:
        self.page.click("#model-selector-model-button")
        options = self.page.locator('button[role="option"][aria-label^="Select "]')
        options.first.wait_for(timeout=30_000)
        names = [re.sub(r"^Select (.*) model$", r"\1", label or "")
                 for label in options.evaluate_all("els => els.map(e => e.getAttribute('aria-label'))")]
        self.page.keyboard.press("Escape")
        return names

    def new_chat(self, model: str) -> None:
        self.page.goto(self.url + "/")
        self.page.locator("#chat-input").wait_for(timeout=60_000)
        self.page.click("#model-selector-model-button")
        self.page.locator(f'button[role="option"][aria-label="Select {model} model"]').click()
        button = self.page.locator("#model-selector-model-button")
        assert button.inner_text().strip() == model, f"picked {model}, the picker shows {button.inner_text()!r}"

    def send(self, model: str, text: str, shot: str, timeout: float = 300) -> Answer:
        """Type `text` (pasted at once when long), press Enter, wait for the answer's end (or
        error); screenshot it."""
        self.page.click("#chat-input")
        if len(text) > 200:
            self.page.keyboard.insert_text(text)
        else:
            self.page.keyboard.type(text)
        start = len(self.events)
        answer = Answer(model, sent_at=time.monotonic())
        self.page.keyboard.press("Enter")
        deadline = time.monotonic() + timeout
        while not (answer.done_at or time.monotonic() > deadline):
            self.page.wait_for_timeout(100)
            for at, event in self.events[start:]:
                start += 1
                self._fold(answer, at, event.get("data") or {})
        if not answer.done_at:
            answer.error = answer.error or f"no answer within {timeout:.0f} s"
        else:
            self.page.wait_for_timeout(500)  # let the last render land before the screenshot
        answer.screenshot = self.shot(shot)
        return answer

    @staticmethod
    def _fold(answer: Answer, at: float, data: dict) -> None:
        kind, body = data.get("type"), data.get("data") or {}
        if kind == "response:completion" and body.get("type") == "response.output_text.delta":
            answer.deltas.append((at, body.get("delta") or ""))
        elif kind == "chat:completion" and body.get("done"):
            answer.text = "".join(part.get("text", "") for item in body.get("output") or []
                                  for part in item.get("content") or [] if isinstance(part, dict))
            answer.done_at = at
        elif kind == "chat:message:error":
            answer.error = ((body.get("error") or {}).get("content")) or json.dumps(body)
            answer.done_at = at

    def shown_answer(self) -> str:
        """The text the page shows for the last answer (rendered as markdown)."""
        return self.page.locator("#response-content-container").last.inner_text()
