"""Shared helpers for the benchmark scripts: machine description, timing, and result files.

Every benchmark prints a table, and writes ``benchmarks/results/<name>.json`` holding its rows together
with the machine it ran on, so numbers in the README can always be traced to a run.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "alphamatting-lowres"


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (``platform.processor()`` is often empty)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info(threads: int | None = None) -> dict:
    """A description of the machine and software a benchmark ran on."""
    import numpy
    import torch

    info = {
        "cpu": cpu_model(),
        "cores_available": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "threads_used": threads if threads is not None else torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (empty where the OS does not report them): other work on the
    machine adds to every timing."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return []


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeats`` runs after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table of ``rows`` (floats shown with 4 significant digits)."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])

    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_results(name: str, payload: dict, table: str | None = None) -> Path:
    """Write ``payload`` (plus ``machine``) to ``results/<name>.json``, print ``table``, return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": payload.pop("machine", machine_info()), **payload}
    if table:
        payload["table_markdown"] = table
        print(table)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    os.replace(tmp, path)
    print(f"wrote {path}")
    return path


def shipped_arch() -> str:
    """The architecture of the packaged default weights (the registry's default when none ship)."""
    from deepmatting import DeepMatting
    from deepmatting.checkpoint import default_weights
    from deepmatting.models import DEFAULT_ARCH

    weights = default_weights()
    if weights is None:
        return DEFAULT_ARCH
    with weights as path:
        return DeepMatting.from_checkpoint(path).config.arch


def photos_or_skip(data: Path, name: str, layout: str) -> Path | None:
    """``data`` resolved, when it holds photos (``images/``); otherwise the benchmark ``name`` is skipped:
    the reason is printed and written to ``results/<name>.json``, and None is returned.

    ``layout`` lists the folders the benchmark reads, for the message (e.g. "images/, alphas/, trimaps/").
    """
    data = data.resolve()
    if (data / "images").is_dir():
        return data
    reason = f"no data folder {data} (expected {layout})"
    print(f"{reason}: {name.replace('_', '-')} benchmark skipped")
    write_results(name, {"skipped": reason})
    return None
