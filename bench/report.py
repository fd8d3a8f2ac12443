"""`make bench`: run the benchmarks and write their output into docs/benchmarks.md and the
README's performance section, between `<!-- bench:begin -->` and `<!-- bench:end -->`.

    .venv/bin/python bench/report.py            # everything (about 15 minutes)
    .venv/bin/python bench/report.py --quick    # short rows, to check the pipeline

Nothing in those sections is written by hand: each figure is what a script printed in this run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import load_average, machine

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
CLASSROOM_RUNS = 3


def run(script: str, *args: str) -> str:
    print(f"running {script} {' '.join(args)}", flush=True)
    result = subprocess.run(
        [sys.executable, f"bench/{script}", *args], cwd=REPO, stdout=subprocess.PIPE, text=True, check=True
    )
    return result.stdout.strip()


def classroom(seconds: str) -> tuple[str, list[float]]:
    """Three runs of 60 students + a dashboard; their outputs and student p99s."""
    outputs = [run("classroom.py", "--seconds", seconds) for _ in range(CLASSROOM_RUNS)]
    p99s = [float(re.search(r"p99 ([\d.]+)", output).group(1)) for output in outputs]
    return "\n\n".join(outputs), p99s


def profile(seconds: str) -> str:
    try:
        return run("profile.py", "--seconds", seconds)
    except subprocess.CalledProcessError as failed:  # py-spy missing, or no permission to ptrace
        return f"(py-spy could not sample the server: exit status {failed.returncode})"


def replace_between_markers(path: Path, text: str) -> None:
    content = path.read_text()
    start, end = content.index(BEGIN) + len(BEGIN), content.index(END)
    path.write_text(content[:start] + "\n" + text.strip() + "\n" + content[end:])


def first_row(table: str, prefix: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {prefix}"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def readme_table(load: dict, outputs: dict[str, str], classroom_p99s: list[float]) -> str:
    rows = [f"| {line[2:].split(':', 1)[0]} | {line[2:].split(':', 1)[1].strip()} |" for line in load["summary"]]
    rows.append(
        f"| 60 students + dashboard, student p99 (`classroom.py`, three runs) | "
        f"{statistics.median(classroom_p99s):.0f} ms ({min(classroom_p99s):.0f}–{max(classroom_p99s):.0f}; "
        f"target ≤ 100 ms) |"
    )
    page = first_row(outputs["preprocess"], "preprocess_bytes, the page's frames")
    rows.append(f"| preprocessing one page frame, median CPU (`preprocess.py`) | {page[1]} ms |")
    model_lines = outputs["model"].splitlines()
    header = next(i for i, line in enumerate(model_lines) if line.startswith("| padded to buckets"))
    padded = model_lines[header + 2].strip("|").split("|")
    rows.append(
        f"| model, batch sizes 1–32 padded to buckets / unpadded (`model.py`) | "
        f"{padded[0].strip()} / {padded[1].strip()} images/s |"
    )
    hostile = next(line for line in outputs["hostile"].splitlines() if line.startswith("- the costliest refusal"))
    rows.append(f"| hostile images (`hostile.py`) | {hostile[2:]} |")
    return "\n".join(["| what | figure |", "|---|---|", *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short rows, to check the pipeline")
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    started, load_before = datetime.datetime.now(datetime.UTC), load_average()
    outputs = {
        "model": run("model.py", *(["--seconds", "0.5"] if args.quick else [])),
        "preprocess": run("preprocess.py", *(["--repeats", "1"] if args.quick else [])),
        "hostile": run("hostile.py", *(["--repeats", "1"] if args.quick else [])),
        "load": run("load.py", "--json", str(RESULTS / "load.json"), *(["--quick"] if args.quick else [])),
    }
    outputs["classroom"], classroom_p99s = classroom("3" if args.quick else "20")
    outputs["profile"] = profile("3" if args.quick else "15")
    load = json.loads((RESULTS / "load.json").read_text())
    heading = (
        f"{started:%Y-%m-%d %H:%M} UTC on {machine()}; load average before: {load_before}, "
        f"after: {load_average()}{' (quick run)' if args.quick else ''}."
    )
    readme = f"Measured by `make bench`, {heading}\n\n{readme_table(load, outputs, classroom_p99s)}"
    replace_between_markers(REPO / "README.md", readme)
    sections = [
        ("Load (`bench/load.py`)", "load"),
        ("Classroom (`bench/classroom.py`, three runs)", "classroom"),
        ("Preprocessing (`bench/preprocess.py`)", "preprocess"),
        ("Hostile images (`bench/hostile.py`)", "hostile"),
        ("Model (`bench/model.py`)", "model"),
        ("Profile under load (`bench/profile.py`)", "profile"),
    ]
    body = "\n\n".join(f"### {title}\n\n{outputs[key]}" for title, key in sections)
    replace_between_markers(REPO / "docs" / "benchmarks.md", f"Run of {heading}\n\n{body}")
    print("wrote README.md and docs/benchmarks.md")


if __name__ == "__main__":
    main()
