"""One table of every benchmark's latest figures (``var/bench/*.json``, written by each benchmark as it ends).

    python -m bench.report [--markdown]

Benchmarks not run on this machine yet are named at the end with the command that runs them.
"""

from __future__ import annotations

import argparse

from bench.results import latest

KNOWN = {"ingest": "make bench", "recordings": "make bench", "history": "make bench-history",
         "live_board": "make bench-live", "load": "make bench-load",
         "ingest_work": "make bench-work"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown", action="store_true", help="a Markdown table (as in the README)")
    args = parser.parse_args()
    found = latest()
    rows = [(str(r["bench"]), what, figure, f"{str(r['measured_at'])[:10]} `{r['command']}`")
            for r in found for what, figure in r["rows"]]  # type: ignore[attr-defined]
    if args.markdown:
        print("| benchmark | what | figure | measured, command |\n|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        width = max((len(what) for _, what, _, _ in rows), default=10)
        for result in found:
            print(f"\n{result['bench']}: {str(result['measured_at'])[:16]} UTC, {result['command']}")
            for what, figure in result["rows"]:  # type: ignore[attr-defined]
                print(f"  {what:<{width}}  {figure}")
        if found:
            print(f"\nmeasured on: {found[-1]['machine']}")
    missing = sorted(set(KNOWN) - {str(r["bench"]) for r in found})
    if missing:
        print("\nnot measured here yet: " + ", ".join(f"{name} ({KNOWN[name]})" for name in missing))


if __name__ == "__main__":
    main()
