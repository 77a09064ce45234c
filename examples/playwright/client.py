"""Connect to herd's Playwright gateway: the same X-Session-ID always
reaches the same browser, so cookies, storage and tabs survive reconnects.

    pip install playwright==1.65.1      # no browser download needed
    python examples/playwright/client.py my-session https://example.org/
"""

import asyncio
import sys

from playwright.async_api import async_playwright

GATEWAY = "ws://127.0.0.1:8080/"


async def main(session: str, url: str) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.connect(GATEWAY, headers={"X-Session-ID": session})
        context = browser.contexts[0] if browser.contexts else await browser.new_context()
        page = await context.new_page()
        await page.goto(url)
        print(session, "→", await page.title())
        await browser.close()  # disconnects; the browser stays with the session


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "my-session",
                     sys.argv[2] if len(sys.argv) > 2 else "http://127.0.0.1:8080/"))
