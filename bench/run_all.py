"""Every benchmark at modest sizes, then one summary table: figure, target, measured, ratio, pass/fail.

    .venv/bin/python bench/run_all.py [--only ledger,fanout,digest,ingest,scale,memory,burst] [--no-postgres]
    make bench

Sizes (each benchmark's own command line runs it bigger; see bench/README.md):
- ledger: 10,000 projects imported, re-imported, exported (bench/ledger.py), SQLite; target a few seconds
  each (≤ 5 s);
- fanout: 1,000 reminders at 25/s, one sender then two sharing the outbox (bench/fanout.py), SQLite;
- digest: alert scan and digest figures on 10,000 projects with 10 reports each (bench/digest.py), SQLite;
- ingest: 200 one-message reports through the Dispatcher and 200 through the floor, one at a time and
  8 at once, SQLite and PostgreSQL (bench/ingest.py);
- scale: 1,000 and 10,000 projects with 50 reports each (bench/scale.py), SQLite;
- memory: an idle `bot run` with 10,000 projects (bench/memory.py);
- burst: 50 and 200 contacts each sending 4 messages within a second to `bot run` under Telegram's
  limits, SQLite and PostgreSQL (bench/burst.py).
Ratio: above 1 the target is met with that margin (target / measured for times and sizes, measured /
target for rates and shares).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `bench.*` importable when run as a file

from bench import burst, digest, fanout, ingest, ledger, memory, scale
from bench._common import PG_DEFAULT, Figure, print_figures

LEDGER_TARGET_S = 5.0  # "a few seconds each" (the ledger issue)
FANOUT_SHARE = 95.0


async def run_ledger(projects: int = 10_000) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="qs_all_ledger_") as tmp:
        folder = Path(tmp)
        files = {"base": ledger.write_file(folder / "base.xlsx", ledger.make_ledger(projects)),
                 "changed": ledger.write_file(folder / "changed.xlsx", ledger.make_ledger(projects, changed=True))}
        print(f"{projects:,} projects; SQLite:")
        results = await ledger.run(f"sqlite+aiosqlite:///{folder / 'ledger.db'}", files, folder)
    return [Figure(f"ledger {projects:,}: {label}", round(seconds, 2), LEDGER_TARGET_S, "s")
            for label, seconds, _ in results]


async def run_fanout(recipients: int = 1000, rate: float = 25.0) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="qs_all_fanout_") as tmp:
        folder = Path(tmp)
        rows = await fanout.run_backend("sqlite", f"sqlite+aiosqlite:///{folder / 'fanout.db'}", folder, rate,
                                        recipients)
    fanout.print_table(rows)
    figures = []
    for row in rows:
        who = "1 sender" if row.senders == 1 else f"{row.senders} senders"
        figures += [
            Figure(f"fan-out {recipients}, {who}: rate, % of {rate:g}/s", round(100 * row.rate / row.configured, 1),
                   FANOUT_SHARE, "%", higher_is_better=True),
            Figure(f"fan-out {recipients}, {who}: 429 responses", row.too_many, 0, ""),
            Figure(f"fan-out {recipients}, {who}: not delivered exactly once", 0 if row.once else row.queued, 0, ""),
        ]
    return figures


async def run_digest(projects: int = 10_000, reports: int = 10) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="qs_all_digest_") as tmp:
        folder = Path(tmp)
        timings = await digest.one(f"sqlite+aiosqlite:///{folder / 'digest.db'}", projects, reports, folder, False)
    size = f"{projects:,}/{projects * reports:,}"
    return [Figure(f"digest bench {size}: alert scan (steady)", round(timings["alerts"], 3), 1.0, "s"),
            Figure(f"digest bench {size}: digest figures", round(timings["digest"], 3), 1.0, "s")]


async def run_ingest(postgres: str | None) -> list[Figure]:
    return await ingest.measure(reports=200, projects=1000, postgres=postgres, concurrency=(1, 8))


async def run_scale() -> list[Figure]:
    return await scale.run([1_000, 10_000], 50, 500_000, 5, None)


async def run_memory() -> list[Figure]:
    return await memory.measure(10_000, 12, 5.0)


async def run_burst(postgres: str | None) -> list[Figure]:
    return await burst.measure((50, 200), postgres=postgres is not None)


async def main_async(only: list[str], postgres: str | None) -> int:
    sections: dict[str, Callable[[], Awaitable[list[Figure]]]] = {
        "ledger": run_ledger, "fanout": run_fanout, "digest": run_digest,
        "ingest": lambda: run_ingest(postgres), "scale": run_scale, "memory": run_memory,
        "burst": lambda: run_burst(postgres),
    }
    figures: list[Figure] = []
    took: dict[str, float] = {}
    for name, step in sections.items():
        if only and name not in only:
            continue
        print(f"\n=== {name} " + "=" * (60 - len(name)), flush=True)
        started = time.perf_counter()
        figures += await step()
        took[name] = time.perf_counter() - started
    print("\n=== summary " + "=" * 53)
    print_figures(figures)
    failed = [f for f in figures if not f.passed]
    print(f"\n{len(figures) - len(failed)} of {len(figures)} figures meet their targets; "
          + ", ".join(f"{n} {s:.0f} s" for n, s in took.items()) + f" (total {sum(took.values()):.0f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated: ledger,fanout,digest,ingest,scale,memory,burst")
    parser.add_argument("--postgres", default=PG_DEFAULT, help="for ingest (an admin URL; a database is made)")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)
    only = [n for n in args.only.split(",") if n]
    return asyncio.run(main_async(only, None if args.no_postgres else args.postgres))


if __name__ == "__main__":
    sys.exit(main())
