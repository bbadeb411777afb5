"""The traefik-gen benchmark: six figures at 1,000 and 10,000 domains, against their targets.

    .venv/bin/python bench/run.py [--domains 1000,10000] [--quick]

Builds a Dokploy-shaped database per size (bench/dataset.py, in the machine's PostgreSQL on
127.0.0.1:5432, named traefik_gen_bench_*, dropped at the end) and measures:

1. full generation into an empty directory (mode full), beside its floor: the same
   SELECTs through the same driver plus the same bytes written to the same files with the
   same fsync and rename. Generations and floors run in pairs, in alternating order; the
   ratio is the median of the pairs' ratios. bcrypt is excluded: a first run fills the
   hash cache, which is copied into the empty directory before the timed run.
2. regeneration with nothing changed (one-shot): time and files written. The run finds
   its record (traefik_gen/record.py) and maps, plans and renders nothing.
3. one changed domain in the sidecar: from the poll that sees it to the last rename, and
   how many polls took the incremental path (only the touched owner read and planned).
4. the idle sidecar (`traefik-gen watch` as a process): its CPU per poll and per minute,
   and the database server's time per poll (EXPLAIN ANALYZE of the fingerprint statement).
5. change latency into the real Traefik 3.7 (default 2 s throttle), beside Traefik's floor
   (an equivalent file renamed into the directory), at the largest size.
6. peak resident memory of `generate` (read by a small parent, see `live.measured`) plus
   its staging helper's, and of `watch` (VmHWM).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import dataset as ds
import live

from traefik_gen.settings import Settings, load_settings
from traefik_gen.sources.dokploy.queries import build_statements
from traefik_gen.sources.dokploy.schema import probe_schema
from traefik_gen.sync import sync
from traefik_gen.watch.loop import Sidecar
from traefik_gen.writer import STAGING_DIR

logger = logging.getLogger(__name__)

MB = 1024 * 1024


@dataclass
class Figures:
    domains: int
    rows: dict[str, str] = field(default_factory=dict)
    misses: list[str] = field(default_factory=list)

    def add(self, name: str, value: str, target: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("ok" if ok else "MISS")
        self.rows[name] = f"{value:>34}  {target:>22}  {verdict}"
        if ok is False:
            self.misses.append(name)
        print(f"  [{self.domains}] {name:34} {self.rows[name]}", flush=True)


def settings_for(data: ds.Dataset, out: Path, **extra: object) -> Settings:
    return load_settings(source=(data.url,), out=out, mode="full", docker=False, **extra)


def timed(action: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def best_of(runs: int, action: Callable[[], object]) -> float:
    return min(timed(action)[0] for _ in range(runs))


# 1. full generation and its floor


def warm_cache(data: ds.Dataset, root: Path) -> Path:
    """A first run into a scratch directory pays bcrypt once; its cache is kept."""
    scratch = root / "warm"
    elapsed, _ = timed(lambda: sync(settings_for(data, scratch)))
    print(f"  [{data.domains}] first run with {data.users} bcrypt hashes: {elapsed:.2f} s")
    return scratch / STAGING_DIR / "bcrypt-cache"


def empty_with_cache(root: Path, name: str, cache: Path) -> Path:
    out = root / name
    if out.exists():
        shutil.rmtree(out)
    (out / STAGING_DIR).mkdir(parents=True)
    if cache.exists():
        shutil.copy(cache, out / STAGING_DIR / "bcrypt-cache")
    return out


def full_generation(data: ds.Dataset, root: Path, cache: Path, runs: int) -> dict[str, bytes]:
    """Generations and floors in pairs, in alternating order: the disk of these machines
    varies twofold within minutes, so each ratio compares runs taken side by side. Each
    timed run writes into a directory of its own, after a sync of what came before it."""
    # Untimed: the bytes the floor writes, and the directory (2) regenerates.
    files = generation_once(data, root, cache, "full-0")[1]
    generations, floors = [], []
    for run in range(runs):
        # Alternating order, so neither side always runs on a disk the other just filled.
        if run % 2:
            floors.append(floor_once(data, files, root / f"floor-{run}"))
            generations.append(generation_once(data, root, cache, f"timed-{run}")[0])
        else:
            generations.append(generation_once(data, root, cache, f"timed-{run}")[0])
            floors.append(floor_once(data, files, root / f"floor-{run}"))
    paired = list(zip(generations, floors, strict=True))
    ratios = [generation / floor for generation, floor in paired]
    pairs = ", ".join(f"{g * 1000:.0f}/{f * 1000:.0f}" for g, f in paired)
    print(f"  [{data.domains}] pairs, generation/floor in ms: {pairs}", flush=True)
    ratio = statistics.median(ratios)
    figures.add(
        "1 full generation",
        f"med {statistics.median(generations) * 1000:.0f} ms ({len(files)} files)",
    )
    figures.add("1 floor (SELECTs + writes)", f"med {statistics.median(floors) * 1000:.0f} ms")
    figures.add(
        "1 ratio generation/floor",
        f"med {ratio:.2f} ({min(ratios):.2f}-{max(ratios):.2f}, {runs} pairs)",
        "<= 1.5 at 10,000",
        (ratio <= 1.5) if data.domains >= 10000 else None,
    )
    return files


def generation_once(
    data: ds.Dataset, root: Path, cache: Path, name: str
) -> tuple[float, dict[str, bytes]]:
    settings = settings_for(data, empty_with_cache(root, name, cache))
    # Nothing left for the kernel to write back from earlier steps while this one runs.
    os.sync()
    started = time.perf_counter()
    files = sync(settings).files
    return time.perf_counter() - started, files


def floor_once(data: ds.Dataset, files: dict[str, bytes], out: Path) -> float:
    (out / STAGING_DIR).mkdir(parents=True, exist_ok=True)
    os.sync()
    started = time.perf_counter()
    select_floor(data)
    write_floor(out, files)
    return time.perf_counter() - started


def select_floor(data: ds.Dataset) -> None:
    with psycopg.connect(data.dsn) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            statements = build_statements(probe_schema(conn), local=True)
            for statement in statements.all():
                if statement is not statements.server:
                    conn.execute(statement, {"server": None}).fetchall()


def write_floor(out: Path, files: dict[str, bytes]) -> None:
    staged = []
    for name, content in files.items():
        path = out / STAGING_DIR / (name + ".staged")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, content)
        os.fsync(fd)
        os.close(fd)
        staged.append((path, out / name))
    for path, target in staged:
        os.replace(path, target)
    fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)


# 2. regeneration with nothing changed


def regeneration(data: ds.Dataset, out: Path, runs: int) -> None:
    settings = settings_for(data, out)
    written = 0
    samples = []
    for _ in range(runs):
        elapsed, result = timed(lambda: sync(settings))
        samples.append(elapsed)
        written += len(result.write.written) + len(result.write.removed)  # type: ignore[attr-defined]
    best = min(samples)
    target = data.domains < 10000 or best <= 1.0
    figures.add("2 regeneration, unchanged", f"{best * 1000:.0f} ms", "<= 1 s at 10,000", target)
    figures.add("2 files written or removed", f"{written}", "0", written == 0)


# 3. one changed domain in the sidecar


def incremental(data: ds.Dataset, out: Path, trials: int) -> None:
    sidecar = Sidecar(settings_for(data, out))
    if not sidecar.poll():
        raise RuntimeError("the in-process sidecar could not sync")
    samples = []
    written = []
    incremental_before = sample(sidecar, "traefik_gen_incremental_syncs_total")
    with data.connect() as conn:
        for trial in range(trials):
            conn.execute(
                'UPDATE domain SET port = %s WHERE "domainId" = %s',
                (9000 + trial, data.compose_domain),
            )
            before = sample(sidecar, "traefik_gen_files_written_total")
            elapsed, _ = timed(sidecar.poll)
            samples.append(elapsed)
            written.append(int(sample(sidecar, "traefik_gen_files_written_total") - before))
    incremental = sample(sidecar, "traefik_gen_incremental_syncs_total") - incremental_before
    sidecar.close()
    median = statistics.median(samples)
    figures.add(
        "3 one changed domain, poll to rename",
        f"med {median * 1000:.1f} max {max(samples) * 1000:.1f} ms",
        "<= 50 ms",
        median <= 0.05,
    )
    figures.add("3 files written per change", f"{statistics.median(written):.0f}")
    figures.add("3 polls that took the incremental path", f"{incremental:.0f} of {trials}")


def sample(sidecar: Sidecar, name: str) -> float:
    return sidecar.metrics.registry.get_sample_value(name) or 0.0


# 4 and 6: the idle sidecar and peak memory


def idle_and_memory(data: ds.Dataset, out: Path, seconds: float) -> None:
    with live.watch_process(data.url, out, poll_interval=2.0) as watcher:
        sample = watcher.idle(seconds)
        hwm = watcher.peak_rss()
    per_poll = sample.cpu / max(1, sample.polls)
    figures.add(
        "4 idle watch CPU per poll",
        f"{per_poll * 1000:.2f} ms ({sample.polls} polls)",
        "<= 5 ms",
        per_poll <= 0.005,
    )
    figures.add("4 idle watch CPU per minute", f"{sample.cpu / sample.elapsed * 60 * 1000:.0f} ms")
    figures.add("4 idle watch files written", f"{sample.written}", "0", sample.written == 0)
    server = live.fingerprint_server_time(data.dsn)
    figures.add("4 database time per poll", f"{server * 1000:.2f} ms (EXPLAIN ANALYZE)")
    figures.add("6 peak RSS watch", f"{hwm / MB:.0f} MB", "<= 100 MB", hwm <= 100 * MB)


def generate_memory(data: ds.Dataset, root: Path, cache: Path, files: dict[str, bytes]) -> None:
    out = empty_with_cache(root, "memory", cache)
    elapsed, rss = live.generate_process(data.url, out)
    # The staging helper runs beside generate: its peak counts too, added, not maxed.
    helper = live.staging_helper_rss(files, root / "helper")
    total = rss + helper
    figures.add("6 generate process wall time", f"{elapsed * 1000:.0f} ms")
    figures.add(
        "6 peak RSS generate + staging helper",
        f"{rss / MB:.0f} + {helper / MB:.0f} = {total / MB:.0f} MB",
        "<= 100 MB",
        total <= 100 * MB,
    )


# 5. change latency in the real Traefik


def latency(data: ds.Dataset, root: Path, cache: Path, trials: int) -> None:
    traefik_dir = empty_with_cache(root, "traefik-dynamic", cache)
    sync(settings_for(data, traefik_dir))
    ours, floor = live.change_latency(data, root / "traefik", traefik_dir, trials)
    poll = 2.0
    bound = 1.2 * statistics.median(floor) + poll
    figures.add(
        "5 change to live (traefik-gen)",
        f"med {statistics.median(ours) * 1000:.0f} max {max(ours) * 1000:.0f} ms",
        f"<= {bound * 1000:.0f} ms",
        statistics.median(ours) <= bound,
    )
    figures.add(
        "5 Traefik floor (file renamed in)",
        f"med {statistics.median(floor) * 1000:.0f} max {max(floor) * 1000:.0f} ms",
    )


figures = Figures(0)


@contextmanager
def database(domains: int) -> Iterator[ds.Dataset]:
    elapsed, data = timed(lambda: ds.build(domains))
    print(f"[{domains}] database {data.name} built in {elapsed:.1f} s", flush=True)  # type: ignore[attr-defined]
    try:
        yield data  # type: ignore[misc]
    finally:
        ds.drop(data)  # type: ignore[arg-type]


def bench_size(domains: int, quick: bool, largest: bool, root: Path) -> Figures:
    global figures
    figures = Figures(domains)
    runs = 3 if quick else 5
    with database(domains) as data:
        cache = warm_cache(data, root)
        files = full_generation(data, root, cache, runs)
        regeneration(data, root / "full-0", runs)
        incremental(data, empty_with_cache(root, "incremental", cache), 5 if quick else 15)
        generate_memory(data, root, cache, files)
        idle_and_memory(data, root / "full-0", 10 if quick else 30)
        if largest:
            latency(data, root, cache, 3 if quick else 8)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", default="1000,10000", help="comma-separated sizes")
    parser.add_argument("--quick", action="store_true", help="fewer runs and trials")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    # SIGTERM unwinds like Ctrl-C, so the databases and processes are still cleaned up.
    signal.signal(signal.SIGTERM, lambda _number, _frame: sys.exit(143))
    sizes = [int(size) for size in args.domains.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="traefik-gen-bench-") as root:
        for size in sizes:
            results.append(bench_size(size, args.quick, size == max(sizes), Path(root) / str(size)))
    print_table(results)


def print_table(results: list[Figures]) -> None:
    print()
    print(f"{'figure':44} {'value':>34}  {'target':>22}")
    for figures_of in results:
        print(f"--- {figures_of.domains} domains")
        for name, row in figures_of.rows.items():
            print(f"{name:44} {row}")
    misses = [f"{f.domains}: {name}" for f in results for name in f.misses]
    print("\nmissed: " + (", ".join(misses) if misses else "none"))


if __name__ == "__main__":
    main()
