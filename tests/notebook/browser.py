"""A real headless Chromium for tests, driven over the DevTools protocol (aiohttp's websocket).

``open_page(path)`` loads a file and returns what a person would check: console errors,
uncaught exceptions and failed loads, the DOM facts a script reads, and a screenshot.
Chromium comes from the system packages (``apt-get install chromium``); ``find()`` is
None without it, and tests skip.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find() -> str | None:
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class Page:
    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    facts: dict = field(default_factory=dict)  # what ``script`` returned
    screenshot: bytes = b""


def open_page(path: str | Path, script: str, *, width: int = 1280, height: int = 900, timeout: float = 60.0) -> Page:
    """Load ``path`` in headless Chromium; ``script`` is a JavaScript expression whose JSON value becomes ``facts``."""
    return asyncio.run(asyncio.wait_for(_open(Path(path).resolve().as_uri(), script, width, height), timeout))


async def _open(url: str, script: str, width: int, height: int) -> Page:
    import aiohttp

    profile = tempfile.mkdtemp(prefix="sqlml-chromium-")
    process = await asyncio.create_subprocess_exec(
        find() or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--remote-debugging-port=0",
        f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        endpoint = await _endpoint(process)
        async with aiohttp.ClientSession() as http, http.ws_connect(endpoint, max_msg_size=0) as ws:
            return await _drive(ws, url, script, width, height)
    finally:
        process.kill()
        await process.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _endpoint(process) -> str:
    while True:
        line = (await process.stderr.readline()).decode(errors="replace")
        if not line:
            raise RuntimeError("chromium exited before its DevTools endpoint was up")
        found = re.search(r"DevTools listening on (ws://\S+)", line)
        if found:
            return found.group(1)


async def _drive(ws, url: str, script: str, width: int, height: int) -> Page:
    page = Page()
    ids = itertools.count(1)
    waiting: dict[int, asyncio.Future] = {}
    loaded = asyncio.Event()

    async def reader():
        async for message in ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in waiting:
                waiting.pop(data["id"]).set_result(data)
                continue
            method, params = data.get("method"), data.get("params", {})
            if method == "Page.loadEventFired":
                loaded.set()
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                page.errors.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                page.errors.append(f"exception: {details.get('text', '')} {details.get('exception', {}).get('description', '')}".strip())
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                page.errors.append("log: " + params["entry"].get("text", ""))

    async def call(method: str, session: str | None = None, **params):
        number = next(ids)
        future = asyncio.get_running_loop().create_future()
        waiting[number] = future
        message = {"id": number, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        await ws.send_str(json.dumps(message))
        answer = await future
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    task = asyncio.create_task(reader())
    try:
        target = (await call("Target.createTarget", url="about:blank"))["targetId"]
        session = (await call("Target.attachToTarget", targetId=target, flatten=True))["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            await call(f"{domain}.enable", session)
        await call("Emulation.setDeviceMetricsOverride", session, width=width, height=height, deviceScaleFactor=1, mobile=False)
        await call("Page.navigate", session, url=url)
        await loaded.wait()
        result = await call("Runtime.evaluate", session, expression=f"JSON.stringify({script})", returnByValue=True)
        page.facts = json.loads(result["result"]["value"])
        shot = await call("Page.captureScreenshot", session, format="png", captureBeyondViewport=True)
        page.screenshot = base64.b64decode(shot["data"])
        await asyncio.sleep(0.2)  # late console messages
    finally:
        task.cancel()
    return page


def keep_screenshot(page: Page, name: str) -> Path:
    """Save the screenshot where a person can look (SQLML_SCREENSHOTS, else the temp folder)."""
    folder = Path(os.environ.get("SQLML_SCREENSHOTS", tempfile.gettempdir()))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(page.screenshot)
    return path
