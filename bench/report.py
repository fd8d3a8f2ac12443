"""`make bench`: run the benchmarks and write their output into docs/benchmarks.md and the
README's performance section, between `<!-- bench:begin -->` and `<!-- bench:end -->`.

    .venv/bin/python -m bench.report            # everything (about 15 minutes)
    .venv/bin/python -m bench.report --quick    # short rows, to check the pipeline

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

from bench.common import HostCpu, load_average, machine, stolen_percent

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
CLASSROOM_RUNS = 3
SCALEOUT_RUNS = 3


def run(script: str, *args: str) -> str:
    """`python -m bench.<script>` from the checkout's root, its stdout."""
    print(f"running bench.{script} {' '.join(args)}", flush=True)
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{script}", *args], cwd=REPO, stdout=subprocess.PIPE, text=True, check=True
    )
    return result.stdout.strip()


def classroom(seconds: str) -> tuple[str, list[float]]:
    """Three runs of 60 students + a dashboard; their outputs and student p99s."""
    outputs = [run("classroom", "--seconds", seconds) for _ in range(CLASSROOM_RUNS)]
    return "\n\n".join(outputs), [student_p99(output) for output in outputs]


def student_p99(output: str) -> float:
    if (found := re.search(r"p99 ([\d.]+)", output)) is None:
        raise ValueError(f"no student p99 in bench.classroom's output:\n{output}")
    return float(found.group(1))


def scaleout(seconds: str) -> tuple[str, str]:
    """Three runs of bench.scaleout: their outputs, and each table row as the median (min–max)
    of its numeric cells over the runs."""
    outputs = [run("scaleout", "--duration", seconds) for _ in range(SCALEOUT_RUNS)]
    return "\n\n".join(outputs), "\n".join(summarised_tables(outputs))


def summarised_tables(outputs: list[str]) -> list[str]:
    """The tables of the first output, each data row merged cell by cell with the rows of the
    other outputs that start alike (same first two cells); the last column (the load average)
    stays the first run's."""
    rows: dict[tuple[str, ...], list[list[str]]] = {}
    for output in outputs:
        for cells in table_rows(output):
            rows.setdefault(tuple(cells[:2]), []).append(cells)
    lines = outputs[0].splitlines()
    table: list[str] = []
    for index, line in enumerate(lines):
        if not line.startswith("|"):
            continue
        is_header = index + 1 < len(lines) and lines[index + 1].startswith("|---")
        if is_header:
            table.append("")
        if is_header or line.startswith("|---"):
            table.append(line)
            continue
        runs = rows[tuple(cell.strip() for cell in line.strip("|").split("|")[:2])]
        cells = [median_cell([run[i] for run in runs]) for i in range(len(runs[0]) - 1)] + [runs[0][-1]]
        table.append("| " + " | ".join(cells) + " |")
    return table


def table_rows(output: str) -> list[list[str]]:
    """The data rows of every markdown table in `output`, as cells."""
    lines = output.splitlines()
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for index, line in enumerate(lines)
        if line.startswith("|")
        and not line.startswith("|---")
        and not (index + 1 < len(lines) and lines[index + 1].startswith("|---"))
    ]


def median_cell(values: list[str]) -> str:
    try:
        numbers = [float(value.replace(",", "")) for value in values]
    except ValueError:
        return values[0]
    if len(set(numbers)) == 1:
        return values[0]
    digits = max(len(value.partition(".")[2]) for value in values)
    return f"{statistics.median(numbers):.{digits}f} ({min(numbers):.{digits}f}–{max(numbers):.{digits}f})"


def profile(seconds: str) -> str:
    try:
        return run("profile", "--seconds", seconds)
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
    page_png = first_row(outputs["preprocess"], "preprocess_bytes, the same strokes as 128 px RGBA PNGs")
    rows.append(
        f"| preprocessing one page frame, median CPU (`preprocess.py`) | {page[1]} ms "
        f"(the same strokes as RGBA PNG: {page_png[1]} ms) |"
    )
    model_lines = outputs["model"].splitlines()
    header = next(i for i, line in enumerate(model_lines) if line.startswith("| padded to buckets"))
    padded = model_lines[header + 2].strip("|").split("|")
    rows.append(
        f"| served model, batch sizes 1–32 padded to buckets / unpadded (`model.py`) | "
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
    started, load_before, host_before = datetime.datetime.now(datetime.UTC), load_average(), HostCpu.read()
    outputs = {
        "model": run("model", *(["--seconds", "0.5"] if args.quick else [])),
        "preprocess": run("preprocess", *(["--repeats", "1"] if args.quick else [])),
        "hostile": run("hostile", *(["--repeats", "1"] if args.quick else [])),
        "load": run("load", "--json", str(RESULTS / "load.json"), *(["--quick"] if args.quick else [])),
    }
    outputs["classroom"], classroom_p99s = classroom("3" if args.quick else "20")
    outputs["scaleout"], scaleout_summary = scaleout("2" if args.quick else "10")
    outputs["profile"] = profile("3" if args.quick else "15")
    load = json.loads((RESULTS / "load.json").read_text())
    heading = (
        f"{started:%Y-%m-%d %H:%M} UTC on {machine()}; load average before: {load_before}, "
        f"after: {load_average()}; CPU time taken by the host (steal): "
        f"{stolen_percent(host_before, HostCpu.read()):.1f}%{' (quick run)' if args.quick else ''}."
    )
    readme = (
        f"Measured by `make bench`, {heading}\n\n{readme_table(load, outputs, classroom_p99s)}\n\n"
        f"Several processes (`scaleout.py`, median (min–max) of three runs, pace lifted; one worker process or two "
        f"sharing the port and a Redis, the load generator on the same two cores):\n{scaleout_summary}"
    )
    replace_between_markers(REPO / "README.md", readme)
    sections = [
        ("Load (`bench/load.py`)", "load"),
        ("Classroom (`bench/classroom.py`, three runs)", "classroom"),
        ("Several processes and Redis (`bench/scaleout.py`, three runs)", "scaleout"),
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
