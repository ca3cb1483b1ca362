"""Run every benchmark (``make bench``) and collect their results into ``benchmarks/RESULTS.md``.

Each script runs in turn as its own process, its output streamed; one that fails is reported and the rest
still run. ``--quick`` is passed to the scripts that take it; for those that do not, lighter settings of
their own options are passed instead (``QUICK_FALLBACK``), when their ``--help`` lists them. Then, for each
``benchmarks/results/*.json``, ``RESULTS.md`` gets a section: the benchmark, the machine it ran on, its
table, and the command that reproduces it.

Run: ``.venv/bin/python benchmarks/run_all.py [--quick] [--only train quality ...] [--report-only]``.
Exits 1 when a benchmark failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import RESULTS_DIR, format_table  # noqa: E402

RESULTS_MD = HERE / "RESULTS.md"
SCRIPTS = ["bench_targets.py", "bench_metrics.py", "bench_data.py", "bench_inference.py", "bench_onnx.py",
           "bench_train.py", "bench_quality.py", "bench_closed_form.py", "bench_knn.py", "bench_gpu.py"]
OPTIONAL = {"bench_onnx.py"}  # run when present
#: Lighter settings for ``--quick`` where a script has no ``--quick`` of its own (used only when its
#: ``--help`` lists every option named here).
QUICK_FALLBACK = {
    "bench_metrics.py": ["--seeds", "1", "--repeats", "2", "--ref-repeats", "1"],
    "bench_data.py": ["--files", "4", "--batches", "2"],
    "bench_onnx.py": ["--repeats", "2", "--warmup", "1"],
}


def script_name(benchmark: str) -> str:
    return f"bench_{benchmark}.py"


def quick_args(script: Path) -> list[str]:
    """What to pass a script for a quick run, read from its ``--help``."""
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        return []  # the real run will fail and say why
    if "--quick" in out.stdout:
        return ["--quick"]
    fallback = QUICK_FALLBACK.get(script.name, [])
    if all(a in out.stdout for a in fallback if a.startswith("--")):
        return fallback
    return []


def command(script: str, args: list[str]) -> str:
    return " ".join([".venv/bin/python", f"benchmarks/{script}", *args])


def run_scripts(scripts: list[str], quick: bool) -> list[dict]:
    """Run ``scripts`` one after the other; a status dict (script, args, rc, seconds) for each."""
    status = []
    for script in scripts:
        path = HERE / script
        if not path.is_file():
            if script not in OPTIONAL:
                print(f"=== {script}: missing", flush=True)
                status.append({"script": script, "args": [], "rc": "missing", "seconds": 0.0})
            continue
        args = quick_args(path) if quick else []
        print(f"\n=== {command(script, args)}", flush=True)
        start = time.perf_counter()
        rc = subprocess.run([sys.executable, str(path), *args], cwd=HERE.parent).returncode
        seconds = time.perf_counter() - start
        print(f"=== {script}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {seconds:.0f} s", flush=True)
        status.append({"script": script, "args": args, "rc": rc, "seconds": seconds})
    return status


def _machine_line(machine: dict) -> str:
    parts = [machine.get("cpu", "unknown CPU"),
             f"{machine.get('cores_available', '?')} cores available, {machine.get('threads_used', '?')} "
             "threads used"]
    if machine.get("gpu"):
        parts.append(f"GPU {machine['gpu']}")
    parts.append(f"torch {machine.get('torch', '?')}")
    if machine.get("python"):
        parts.append(f"Python {machine['python']}")
    parts.append(machine.get("date", "date unknown"))
    return ", ".join(parts)


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def section(path: Path, ran: dict[str, dict]) -> str:
    """The RESULTS.md section of one results file."""
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return f"## {path.stem}\n\n(could not read {path.name}: {e})\n"
    name = payload.get("benchmark", path.stem)
    script = script_name(name)
    lines = [f"## {name}", "", f"- Machine: {_machine_line(payload.get('machine', {}))}"]
    load = payload.get("load_average") or payload.get("machine", {}).get("load_average_1_5_15min")
    if load:
        load = json.dumps(_rounded(load))
        lines.append(f"- Load average: {load} (other work on the machine skews timings)")
    if payload.get("quick"):
        lines.append("- Quick run (fewer repeats, smaller settings)")
    lines.append("")
    if "skipped" in payload:
        lines.append(f"Skipped: {payload['skipped']}.")
    elif payload.get("table_markdown"):
        lines.append(payload["table_markdown"])
    elif payload.get("rows"):
        lines.append(format_table(payload["rows"]))
    else:
        lines.append("(no table in the results file)")
    lines.append("")
    if script in ran:
        lines.append(f"Reproduce: `{command(script, ran[script]['args'])}`")
    else:
        args = ["--quick"] if payload.get("quick") else []
        lines.append(f"Reproduce: `{command(script, args)}` (result of an earlier run, not rerun by this "
                     "`run_all.py`)")
    return "\n".join(lines) + "\n"


def _status(rc: int | str) -> str:
    return "ok" if rc == 0 else ("missing" if rc == "missing" else f"FAILED (exit {rc})")


def write_report(status: list[dict], quick: bool) -> Path:
    """``RESULTS.md`` from every ``results/*.json``, in the order of ``SCRIPTS``, then any others."""
    order = {script: i for i, script in enumerate(SCRIPTS)}
    files = sorted(RESULTS_DIR.glob("*.json"),
                   key=lambda p: (order.get(script_name(p.stem), len(order)), p.stem))
    ran = {s["script"]: s for s in status if s["rc"] == 0}
    head = ["# Benchmark results", "",
            f"Written by `benchmarks/run_all.py{' --quick' if quick else ''}` on "
            f"{time.strftime('%Y-%m-%d %H:%M')}. Each section names the machine its numbers come from; "
            "`benchmarks/README.md` says what each benchmark measures and its targets.", ""]
    if status:
        rows = [{"script": s["script"], "args": " ".join(s["args"]) or "-", "status": _status(s["rc"]),
                 "seconds": round(s["seconds"])} for s in status]
        head += ["This run:", "", format_table(rows), ""]
    body = [section(path, ran) for path in files]
    RESULTS_MD.write_text("\n".join(head) + "\n" + "\n".join(body))
    print(f"wrote {RESULTS_MD}")
    return RESULTS_MD


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short settings for every benchmark")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these (train, quality, ...)")
    p.add_argument("--report-only", action="store_true",
                   help="only rewrite RESULTS.md from the existing results")
    args = p.parse_args()
    scripts = SCRIPTS
    if args.only:
        wanted = {script_name(n.removeprefix("bench_").removesuffix(".py")) for n in args.only}
        unknown = wanted - set(SCRIPTS)
        if unknown:
            p.error(f"unknown benchmarks {sorted(unknown)}; choose from {[s[6:-3] for s in SCRIPTS]}")
        scripts = [s for s in SCRIPTS if s in wanted]
    status = [] if args.report_only else run_scripts(scripts, args.quick)
    write_report(status, args.quick)
    failed = [s for s in status if s["rc"] != 0]
    if failed:
        print("failed: " + ", ".join(f"{s['script']} ({_status(s['rc'])})" for s in failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
