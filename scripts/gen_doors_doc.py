"""Write docs/doors.md's table from the door table (src/broadcaster/doors.py); tests/core/test_doors.py checks
the page agrees. Run: .venv/bin/python scripts/gen_doors_doc.py"""

from __future__ import annotations

from pathlib import Path

from broadcaster.doors import DOORS

PAGE = Path(__file__).resolve().parents[1] / "docs" / "doors.md"
START, END = "<!-- doors:start -->", "<!-- doors:end -->"


def table() -> str:
    rows = ["| Door | What it does | Who may, and what needs a second person |", "|---|---|---|"]
    rows += [f"| `{d.name}` | {d.what} | {d.rule} |" for d in DOORS.values()]
    return "\n".join(rows)


def main() -> None:
    text = PAGE.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    PAGE.write_text(f"{head}{START}\n{table()}\n{END}{tail}")


if __name__ == "__main__":
    main()
