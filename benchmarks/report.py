"""
Write docs/benchmarks.md: the summary in benchmarks/summary.md, then every
benchmark's own results from benchmarks/results/, in a fixed order.

Run each benchmark first (python benchmarks/bench_<area>.py), then this.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["retry", "breaker", "degradation", "discovery", "saga", "backup", "telemetry"]


def demote(text: str) -> str:
    """
    Push every heading one level down, so each result sits under the summary.
    """
    return "\n".join(
        "#" + line if line.startswith("#") else line for line in text.splitlines()
    )


def main() -> None:
    parts = [(HERE / "summary.md").read_text().rstrip(), "", "# Full results", ""]
    for area in ORDER:
        path = HERE / "results" / f"{area}.md"
        if path.exists():
            parts += [demote(path.read_text().strip()), ""]
    (HERE.parent / "docs" / "benchmarks.md").write_text("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
