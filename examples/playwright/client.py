"""Connect to herd's Playwright gateway: the same X-Session-ID always
reaches the same browser, so cookies, storage and tabs survive reconnects.

    pip install playwright==1.65.1      # no browser download needed
    python3 examples/playwright/client.py alice            # opens a tab: 1 tab open
    python3 examples/playwright/client.py alice            # same browser: 2 tabs open
    python3 examples/playwright/client.py bob              # another browser: 1 tab open
    python3 examples/playwright/client.py alice https://example.org/

HERD_GATEWAY overrides the gateway's address (default ws://127.0.0.1:8080/).
"""

import asyncio
import os
import sys

from playwright.async_api import async_playwright

GATEWAY = os.environ.get("HERD_GATEWAY", "ws://127.0.0.1:8080/")
HELLO = "data:text/html,<title>hello from a herd browser</title>"


async def main(session: str, url: str) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.connect(GATEWAY, headers={"X-Session-ID": session})
        context = browser.contexts[0] if browser.contexts else await browser.new_context()
        page = await context.new_page()
        await page.goto(url)
        tabs = len(context.pages)
        print(f"{session} → {await page.title()!r}: {tabs} tab{'s' if tabs != 1 else ''} open in this session's browser")
        await browser.close()  # disconnects; the browser and its tabs stay with the session


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "my-session", sys.argv[2] if len(sys.argv) > 2 else HELLO))
