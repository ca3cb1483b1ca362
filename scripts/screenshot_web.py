"""Screenshot the web app after a prediction: ``docs/images/web_page.png``.

Starts ``deepmatting serve``'s server in this process on a free port, opens the page in headless Chromium
(Debian's ``chromium`` driven by Playwright), picks a built-in example with its trimap (or uploads
--image/--trimap), predicts, and saves a full-page screenshot. The checked-in image was made with a
light-unet trained for 20 minutes on 2 CPU cores (``deepmatting train --max-minutes 20 --crop 192``).

    .venv/bin/python scripts/screenshot_web.py --checkpoint runs/demo/best.pt   # after `make demo`
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path

from deepmatting.inference import load_backend
from deepmatting.serve import make_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="model checkpoint (default: the shipped model)")
    parser.add_argument("--onnx", default=None, help="or an exported ONNX model")
    parser.add_argument("--example", type=int, default=2, help="built-in example to show (default 2)")
    parser.add_argument("--image", default=None, help="upload this image instead of an example")
    parser.add_argument("--trimap", default=None, help="and this trimap")
    parser.add_argument("--out", default="docs/images/web_page.png")
    parser.add_argument("--width", type=int, default=1360)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    shipped = args.checkpoint is None and args.onnx is None  # then the page offers the shipped qualities
    backend = load_backend(args.checkpoint, onnx=args.onnx, device="cpu")
    server = make_server(backend, "127.0.0.1", 0, quiet=True, quality="fast" if shipped else None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": args.width, "height": 900}, device_scale_factor=1)
            page.goto(url)
            if args.image:
                page.set_input_files("#image-file", args.image)
                page.click(".tab[data-guide=trimap]")
                page.set_input_files("#trimap-file", args.trimap)
            else:
                page.click(f".examples img[data-example='{args.example}']")
            page.wait_for_function("!document.getElementById('predict').disabled")
            page.click("#predict")
            page.wait_for_selector("#results[data-ready=true]", timeout=120_000)
            page.wait_for_function("document.getElementById('figure-img').complete")
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
            browser.close()
        print(f"wrote {out}")
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
