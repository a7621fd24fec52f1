"""Screenshots of the chat page for the docs: a real exchange with the default council (the
packaged catalogue: five SmolLM2 heads), the ballot open, at desktop and phone sizes.

    .venv/bin/python scripts/screenshots.py [--data-dir DIR] [--out docs/screenshots]

Needs Debian's Chromium at /usr/bin/chromium (`make install` puts it there when root) and
playwright (the dev extra). Takes a few minutes on 2 cores: SmolLM2 really answers.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip
PROMPTS = ["What is 7 * 8?", "Write a short Python function that reverses a string."]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """`council prepare` then `council serve` on the packaged catalogue, memory on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    env.update(COUNCIL_DATA_DIR=str(data_dir), COUNCIL_CONFIG=str(data_dir / "none.toml"))
    subprocess.run([sys.executable, "-m", "council", "prepare"], env=env, check=True)
    log = (data_dir / "server.log").open("w")
    cmd = [sys.executable, "-m", "council", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited; see {data_dir / 'server.log'}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit("server not ready in 300 s")


def open_first_ballot(page: Page, anchor: str) -> None:
    """Expand the first answer's ballot (five heads on 7 * 8) and scroll `anchor` to the top."""
    turn = page.locator(".turn").first
    turn.locator(".ballot summary").click()
    turn.locator(anchor).evaluate("el => el.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(800)  # smooth scrolling settles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, help="reuse a data dir (converted model)")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="council-shots-"))
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = serve(data_dir, port)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            page.wait_for_selector("body.ready")
            for i, prompt in enumerate(PROMPTS):
                page.fill("#input", prompt)
                page.press("#input", "Enter")
                page.locator(".turn .meta, .turn .error").nth(i).wait_for(timeout=300_000)
            conversation = page.url
            open_first_ballot(page, ".bubble")
            page.screenshot(path=str(args.out / "desktop.png"))

            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.goto(conversation)
            phone.wait_for_selector(".turn .meta")
            open_first_ballot(phone, ".answer")
            phone.screenshot(path=str(args.out / "phone.png"))
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(f"wrote {args.out / 'desktop.png'} and {args.out / 'phone.png'}")


if __name__ == "__main__":
    main()
