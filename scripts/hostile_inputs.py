"""The hostile-input matrix outside the web server (issue #13, cases 6-15), run as a user would.

Each case runs the ``deepmatting`` command on a bad input in a temporary folder and reports the exit
status, the first line of the error, whether a Python traceback reached the user, the peak memory of the
command, and what it left on disk. The server's cases are in ``scripts/serve_hostile.py``.

    .venv/bin/python scripts/hostile_inputs.py            # prints a Markdown table
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from deepmatting import DeepMatting

TINY_TRAIN = ["--epochs", "3", "--crop", "48", "--batch-size", "2", "--workers", "0",
              "--synthetic-train", "8", "--device", "cpu"]


def run(*argv: str, cwd: Path) -> dict:
    """Run ``deepmatting ARGV`` in a child process; its exit status, stderr and peak memory."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "deepmatting", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, errors="replace")
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "it/s]" not in line
             and "image/s]" not in line and "Warning" not in line and "warnings.warn" not in line]
    return {"status": proc.returncode, "seconds": round(time.perf_counter() - start, 1),
            "traceback": "Traceback" in proc.stderr, "message": (lines or [""])[-1][:160]}


def png_claiming(path: Path, w: int, h: int) -> Path:
    """A valid PNG header and end chunk claiming ``w x h`` RGB pixels, with one row of data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * (3 * w + 1))) + chunk(b"IEND", b""))
    return path


def weights_finite(path: Path) -> bool | None:
    if not path.exists():
        return None
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return all(bool(torch.isfinite(t).all()) for t in ckpt["model"].values() if t.is_floating_point())


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        image = (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)
        trimap = np.full((40, 56), 128, np.uint8)
        trimap[:10], trimap[-10:] = 0, 255
        Image.fromarray(image).save(d / "i.png")
        Image.fromarray(trimap).save(d / "t.png")
        DeepMatting(width=0.5).save(d / "good.pt")
        io = ["--image", "i.png", "--trimap", "t.png"]

        r = run("train", *TINY_TRAIN, "--lr", "1e6", "--checkpoint-every", "1", "--out", "lr1e6", cwd=d)
        rows.append(("6: `train --lr 1e6 --checkpoint-every 1`", r,
                     f"last.pt finite: {weights_finite(d / 'lr1e6' / 'last.pt')}"))
        r = run("train", *TINY_TRAIN, "--lr", "1e30", "--out", "lr1e30", cwd=d)
        rows.append(("7: `train --lr 1e30`", r, f"last.pt exists: {(d / 'lr1e30' / 'last.pt').exists()}"))

        run("train", *TINY_TRAIN[:1], "1", *TINY_TRAIN[2:], "--out", "killed", cwd=d)
        for k in range(10):
            (d / "killed" / f".last.pt.{k}abc.tmp").write_bytes(b"x" * 2_300_000)
        r = run("train", *TINY_TRAIN, "--out", "killed", "--resume", cwd=d)
        left = len(list((d / "killed").glob(".*.tmp")))
        rows.append(("9: `--resume` after 10 killed checkpoint writes (23 MB of .tmp)", r,
                     f"temporaries left: {left}"))

        for sub in ("images", "masks"):
            (d / "bomb" / sub).mkdir(parents=True)
        png_claiming(d / "bomb" / "images" / "a.png", 12000, 12000)
        png_claiming(d / "bomb" / "masks" / "a.png", 12000, 12000)
        size = (d / "bomb" / "images" / "a.png").stat().st_size
        r = run("train", *TINY_TRAIN, "--data", "bomb", "--out", "bombrun", cwd=d)
        rows.append((f"10: a {size}-byte PNG claiming 12000x12000 in the training data", r, ""))
        png_claiming(d / "liar.png", 6000, 6000)
        r = run("predict", "--checkpoint", "good.pt", "--image", "liar.png", "--trimap", "t.png",
                "--out", "o", cwd=d)
        rows.append(("10: a PNG claiming 6000x6000 with one row of data (under the size limit)", r, ""))

        (d / "taken").write_text("a file")
        for out in ("/proc/x", "taken"):
            r = run("predict", "--checkpoint", "good.pt", *io, "--out", out, cwd=d)
            rows.append((f"11: `predict --out {out}`", r, ""))

        torch.save({"model": [1, 2, 3], "config": {}}, d / "bad.pt")
        for sub in ("images", "masks", "trimaps"):
            (d / "small" / sub).mkdir(parents=True)
        Image.fromarray(image).save(d / "small" / "images" / "a.png")
        Image.fromarray((trimap > 128).astype(np.uint8) * 255).save(d / "small" / "masks" / "a.png")
        Image.fromarray(trimap).save(d / "small" / "trimaps" / "a.png")
        for cmd in (["predict", "--checkpoint", "bad.pt", *io, "--out", "o"],
                    ["evaluate", "--data", "small", "--checkpoint", "bad.pt"],
                    ["export", "--checkpoint", "bad.pt", "--out", "m.onnx"]):
            r = run(*cmd, cwd=d)
            rows.append((f"12: `{cmd[0]} --checkpoint` of `{{'model': [1, 2, 3], 'config': {{}}}}`", r, ""))

        try:
            import onnx

            run("export", "--checkpoint", "good.pt", "--out", "good.onnx", cwd=d)
            model = onnx.load(d / "good.onnx")
            x = onnx.helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, ["b", 3, "h", "w"])
            t = onnx.helper.make_tensor_value_info("trimap", onnx.TensorProto.FLOAT, ["b", 1, "h", "w"])
            y = onnx.helper.make_tensor_value_info("alpha", onnx.TensorProto.FLOAT, ["b", 3, "h", "w"])
            graph = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["image"], ["alpha"])], "g",
                                           [x, t], [y])
            fake = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
            onnx.helper.set_model_props(fake, {p.key: p.value for p in model.metadata_props})
            onnx.save(fake, d / "identity.onnx")
            r = run("predict", "--onnx", "identity.onnx", *io, "--out", "o", cwd=d)
            rows.append(("13: an ONNX file with our metadata on an Identity graph", r, ""))
        except ImportError:
            pass

        broken = DeepMatting(width=0.5)
        with torch.no_grad():
            next(broken.decoder.parameters()).fill_(float("nan"))
        broken.save(d / "nan.pt")
        r = run("predict", "--checkpoint", "nan.pt", *io, "--out", "nanout", cwd=d)
        rows.append(("14: `predict` with weights that produce NaN", r,
                     f"alpha written: {(d / 'nanout' / 'i_alpha.png').exists()}"))

        root = d / os.fsdecode(b"caf\xe9")
        for sub in ("images", "masks", "trimaps"):
            (root / sub).mkdir(parents=True)
        name = os.fsdecode(b"caf\xe9.png")
        Image.fromarray(image).save(root / "images" / name)
        Image.fromarray((trimap > 128).astype(np.uint8) * 255).save(root / "masks" / name)
        Image.fromarray(trimap).save(root / "trimaps" / name)
        r = run("evaluate", "--data", str(root), "--checkpoint", "good.pt", "--json", "e.json", cwd=d)
        strict = json.loads((d / "e.json").read_bytes().decode("utf-8"))["images"][0]["name"]
        rows.append(("15: `evaluate --json` on a file name that is not UTF-8", r,
                     f"name in the JSON: {strict!r}"))

    print("| case | exit | traceback | message | notes |")
    print("|---|---|---|---|---|")
    for case, r, note in rows:
        message = r["message"].replace("|", "/")
        print(f"| {case} | {r['status']} | {'yes' if r['traceback'] else 'no'} | {message} | {note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
