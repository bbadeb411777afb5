"""How fast a one-file change is live in the real Traefik, and Traefik's own floor beside it.

Three ways to put one changed file into the watched directory, each timed from just before
the write until the router answers 200 in Traefik's API (default 2 s throttle):

- traefik-gen: `writer.apply`, which stages in `.traefik-gen/` inside the directory;
- floor: a file renamed in from a sibling directory outside the watched tree;
- naive: a temporary file created inside the watched directory, then renamed (what
  traefik-gen avoids: the temporary file's own event starts the 2 s throttle).

    .venv/bin/python bench/latency.py [--trials 8] [--version 3.7.15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.traefik import TraefikProcess
from traefik_gen.render import render
from traefik_gen.writer import apply, scan

PREFIX = "zz-traefik-gen-"
QUIET = 2.5  # seconds between trials, so each starts outside the throttle window


def config(name: str) -> dict[str, object]:
    return {
        "http": {
            "routers": {name: {"rule": f'Host("{name}.bench.test")', "service": name}},
            "services": {name: {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:9"}]}}},
        }
    }


def with_traefik_gen(directory: Path, name: str) -> None:
    content = render(config(name), "yaml")
    apply(directory, {f"{PREFIX}bench.yml": content}, scan(directory, prefix=PREFIX))


def with_sibling_rename(directory: Path, name: str) -> None:
    sibling = directory.parent / "outside"
    sibling.mkdir(exist_ok=True)
    staged = sibling / "floor.yml"
    staged.write_bytes(render(config(name), "yaml"))
    os.replace(staged, directory / "floor.yml")


def with_temp_inside(directory: Path, name: str) -> None:
    staged = directory / ".naive.tmp"
    staged.write_bytes(render(config(name), "yaml"))
    os.replace(staged, directory / "naive.yml")


def measure(traefik: TraefikProcess, write: Callable[[Path, str], None], trial: int) -> float:
    name = f"{write.__name__.replace('_', '-')}-{trial}"
    started = time.perf_counter()
    write(traefik.dynamic_dir, name)
    while traefik.api(f"/api/http/routers/{name}@file").status != 200:
        if time.perf_counter() - started > 10:
            raise RuntimeError(f"router {name} never appeared")
        time.sleep(0.002)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--version", default="3.7.15")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        traefik = TraefikProcess(args.version, Path(root) / "traefik").start()
        try:
            print(f"Traefik {args.version}, default 2 s throttle, {args.trials} trials each")
            for write in (with_traefik_gen, with_sibling_rename, with_temp_inside):
                samples = []
                for trial in range(args.trials):
                    time.sleep(QUIET)
                    samples.append(measure(traefik, write, trial))
                print(
                    f"{write.__name__:20} median {statistics.median(samples):7.1f} ms  "
                    f"max {max(samples):7.1f} ms  all {' '.join(f'{s:.0f}' for s in samples)}"
                )
        finally:
            traefik.stop()


if __name__ == "__main__":
    main()
