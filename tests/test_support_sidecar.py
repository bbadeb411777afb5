"""The sidecar's test support works: an own PostgreSQL cluster, a TCP proxy, a sidecar process.

The sidecar fixture is exercised with a stand-in script (below) that serves the same
endpoints on TRAEFIK_GEN_LISTEN, so these tests do not depend on `traefik-gen watch`.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.support.own_postgres import (
    ClusterFactory,
    OwnPostgres,
    OwnPostgresError,
    require_postgres_binaries,
)
from tests.support.sidecar import Sidecar, SidecarExitedError, SidecarFactory, parse_metrics
from tests.support.tcp_proxy import ProxyFactory
from tests.support.traefik import free_ports

# The size of a result that cannot fit a proxy budget of _BUDGET bytes: ~2 MB of rows.
_LARGE_QUERY = "SELECT repeat('x', 1000) FROM generate_series(1, 2000)"
_BUDGET = 64 * 1024

# A stand-in for `traefik-gen watch`: the same endpoints on TRAEFIK_GEN_LISTEN, metrics
# from prometheus_client like the real one, and switches for the behaviours under test.
STAND_IN = r"""
import json, os, signal, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

args = sys.argv[1:]
print("stand-in args:", " ".join(args), flush=True)

def option(name, default):
    return args[args.index(name) + 1] if name in args else default

if "--exit" in args:
    sys.exit(int(option("--exit", "1")))

registry = CollectorRegistry()
syncs = Counter("traefik_gen_syncs", "syncs", ["outcome"], registry=registry)
syncs.labels(outcome="ok").inc(3)
syncs.labels(outcome="failed")
Gauge("traefik_gen_routers_rendered", "routers", registry=registry).set(7)
odd = Gauge("standin_odd_label", "escapes", ["path"], registry=registry)
odd.labels(path='a "quoted"\\path\nline').set(1.5)
duration = Histogram("traefik_gen_sync_duration_seconds", "d", buckets=(0.1,), registry=registry)
duration.observe(0.05)
duration.observe(0.5)
hups = Counter("standin_sighups", "SIGHUPs received", registry=registry)
ready_at = time.monotonic() + float(option("--ready-after", "0"))
stop = threading.Event()

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            self.reply(200, b"ok\n")
        elif self.path == "/readyz":
            ready = time.monotonic() >= ready_at
            self.reply(200 if ready else 503, b"ok\n" if ready else b"starting\n")
        elif self.path == "/metrics":
            self.reply(200, generate_latest(registry))
        elif self.path == "/env":
            self.reply(200, json.dumps(dict(os.environ)).encode())
        else:
            self.reply(404, b"not found\n")

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass

def on_term(signum, frame):
    print("received SIGTERM", flush=True)
    stop.set()

signal.signal(signal.SIGTERM, signal.SIG_IGN if "--ignore-term" in args else on_term)
signal.signal(signal.SIGHUP, lambda signum, frame: hups.inc())
host, _, port = os.environ["TRAEFIK_GEN_LISTEN"].rpartition(":")
server = ThreadingHTTPServer((host, int(port)), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
while not stop.wait(0.05):
    pass
server.shutdown()
sys.exit(int(option("--term-code", "0")))
"""


@pytest.fixture
def stand_in(tmp_path: Path) -> list[str]:
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN, encoding="utf-8")
    return [sys.executable, str(script)]


@pytest.fixture
def source_env(tmp_path: Path) -> dict[str, str]:
    return {"TRAEFIK_GEN_SOURCE": str(tmp_path / "routes.yml")}


def _app_names(cluster: OwnPostgres) -> list[str]:
    with cluster.connect() as conn:
        rows = conn.execute('SELECT "appName" FROM application ORDER BY "appName"').fetchall()
    return [row[0] for row in rows]


# --- own PostgreSQL ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_own_cluster_accepts_tcp_connections_on_its_own_loopback_port(
    own_postgres_module: OwnPostgres,
) -> None:
    with own_postgres_module.connect() as conn:
        row = conn.execute(
            "SELECT current_setting('port')::int, host(inet_server_addr()), current_user"
        ).fetchone()

    assert row == (own_postgres_module.port, "127.0.0.1", "dokploy")
    assert own_postgres_module.port != 5432


@pytest.mark.postgres
def test_own_cluster_url_has_no_password_and_connects(own_postgres_module: OwnPostgres) -> None:
    url = own_postgres_module.url

    with psycopg.connect(url, connect_timeout=5) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("dokploy",)
    assert url == f"postgresql://dokploy@127.0.0.1:{own_postgres_module.port}/dokploy"


@pytest.mark.postgres
def test_own_cluster_offers_dokploys_row_factories(own_postgres_module: OwnPostgres) -> None:
    app = own_postgres_module.db.add_application("factory-made")
    own_postgres_module.db.add_domain(app, host="made.example.com")

    with own_postgres_module.connect() as conn:
        row = conn.execute(
            'SELECT d.host FROM domain d JOIN application a USING ("applicationId") '
            'WHERE a."appName" = %s',
            ("factory-made",),
        ).fetchone()
    assert row == ("made.example.com",)


@pytest.mark.postgres
def test_stopped_cluster_refuses_connections_and_keeps_its_data_and_port_on_start(
    own_postgres: OwnPostgres,
) -> None:
    own_postgres.db.add_application("survivor")
    port = own_postgres.port
    live = own_postgres.connect()

    own_postgres.stop()

    with pytest.raises(psycopg.OperationalError):
        live.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError, match="refused"):
        own_postgres.connect()
    own_postgres.start()
    assert own_postgres.port == port
    assert _app_names(own_postgres) == ["survivor"]
    live.close()


@pytest.mark.postgres
def test_killed_cluster_recovers_committed_rows_when_started(own_postgres: OwnPostgres) -> None:
    own_postgres.db.add_application("committed")
    live = own_postgres.connect()

    own_postgres.kill()

    assert not own_postgres.running
    with pytest.raises(psycopg.OperationalError) as dropped:
        live.execute("SELECT 1")
    # A crash says nothing: no backend was left alive to report its postmaster's death.
    assert "postmaster" not in str(dropped.value)
    with pytest.raises(psycopg.OperationalError):
        own_postgres.connect()
    own_postgres.start()
    assert _app_names(own_postgres) == ["committed"]
    assert "automatic recovery in progress" in own_postgres.log_text()
    live.close()


@pytest.mark.postgres
def test_restart_serves_again_on_the_same_port(own_postgres: OwnPostgres) -> None:
    port = own_postgres.port

    own_postgres.restart()

    assert own_postgres.running
    with own_postgres.connect() as conn:
        assert conn.execute("SELECT current_setting('port')::int").fetchone() == (port,)


@pytest.mark.postgres
def test_password_cluster_refuses_a_wrong_or_missing_password(
    own_postgres_factory: ClusterFactory,
) -> None:
    cluster = own_postgres_factory(password="right-horse-battery")

    with cluster.connect() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        cluster.connect(password="wrong-horse")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(cluster.url, connect_timeout=5)
    assert cluster.password_file is not None
    assert cluster.password_file.read_text(encoding="utf-8") == "right-horse-battery"


@pytest.mark.postgres
def test_md5_cluster_stores_an_md5_hash_and_accepts_the_password(
    own_postgres_factory: ClusterFactory,
) -> None:
    cluster = own_postgres_factory(password="md5-pass", auth="md5")

    with cluster.connect() as conn:
        row = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'dokploy'").fetchone()
    assert row is not None
    assert row[0].startswith("md5")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        cluster.connect(password="not-it")


@pytest.mark.postgres
def test_cluster_without_schema_has_an_empty_database(
    own_postgres_factory: ClusterFactory,
) -> None:
    cluster = own_postgres_factory(schema=None)

    with cluster.connect() as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
    assert tables == (0,)
    with pytest.raises(OwnPostgresError, match="without a dokploy schema"):
        _ = cluster.db


@pytest.mark.postgres
def test_older_schema_level_gets_its_own_ownership_chain(
    own_postgres_factory: ClusterFactory,
) -> None:
    cluster = own_postgres_factory(schema="v0_13")

    cluster.db.add_application("old-install")

    with cluster.connect() as conn:
        row = conn.execute('SELECT "adminId" FROM project').fetchone()
    assert row == ("admin-fixture",)
    assert _app_names(cluster) == ["old-install"]


@pytest.mark.postgres
def test_apply_sql_runs_a_script_file(own_postgres_module: OwnPostgres, tmp_path: Path) -> None:
    script = tmp_path / "extra.sql"
    script.write_text(
        "CREATE TABLE applied_here (n int);\nINSERT INTO applied_here VALUES (1), (2);\n",
        encoding="utf-8",
    )

    own_postgres_module.apply_sql(script)

    with own_postgres_module.connect() as conn:
        assert conn.execute("SELECT sum(n) FROM applied_here").fetchone() == (3,)


@pytest.mark.postgres
def test_start_fails_with_the_servers_log_when_its_port_was_taken_meanwhile(
    own_postgres: OwnPostgres,
) -> None:
    own_postgres.stop()

    squatter = socket.create_server(("127.0.0.1", own_postgres.port))
    with (
        squatter,
        pytest.raises(OwnPostgresError, match=r"(?s)did not start on port.*could not bind"),
    ):
        own_postgres.start()
    own_postgres.start()
    assert own_postgres.running


@pytest.mark.postgres
def test_a_new_cluster_moves_to_another_port_when_its_first_is_taken(
    own_postgres_factory: ClusterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    own_postgres_factory()  # the template exists before the port lottery is rigged
    taken = socket.create_server(("127.0.0.1", 0))
    taken_port = taken.getsockname()[1]
    offers = iter([[taken_port]])
    monkeypatch.setattr(
        "tests.support.own_postgres.free_ports",
        lambda count: next(offers, None) or free_ports(count),
    )

    with taken:
        cluster = own_postgres_factory()

    assert next(offers, None) is None  # the taken port was offered, and refused
    assert cluster.port != taken_port
    assert cluster.running


def test_missing_initdb_skips_locally_and_fails_on_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRAEFIK_GEN_TEST_PG_BINDIR", str(tmp_path))

    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no initdb found"):
        require_postgres_binaries()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no initdb found"):
        require_postgres_binaries()


# --- TCP proxy ----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_proxy_forwards_queries_to_its_target(
    own_postgres_module: OwnPostgres, tcp_proxy: ProxyFactory
) -> None:
    proxy = tcp_proxy(own_postgres_module.port)

    with own_postgres_module.connect(port=proxy.port) as conn:
        assert conn.execute("SELECT 41 + 1").fetchone() == (42,)
    assert proxy.port != own_postgres_module.port
    assert proxy.accepted == 1


@pytest.mark.postgres
def test_cut_breaks_live_connections_and_refuses_new_ones_until_restored(
    own_postgres_module: OwnPostgres, tcp_proxy: ProxyFactory
) -> None:
    proxy = tcp_proxy(own_postgres_module.port)
    live = own_postgres_module.connect(port=proxy.port)

    proxy.cut()

    with pytest.raises(psycopg.OperationalError):
        live.execute("SELECT 1")
    with pytest.raises(psycopg.OperationalError, match="refused"):
        own_postgres_module.connect(port=proxy.port)
    proxy.restore()
    with own_postgres_module.connect(port=proxy.port) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    live.close()


@pytest.mark.postgres
def test_drop_after_fails_a_large_result_midway_and_lets_small_ones_through(
    own_postgres_module: OwnPostgres, tcp_proxy: ProxyFactory
) -> None:
    proxy = tcp_proxy(own_postgres_module.port)
    with own_postgres_module.connect(port=proxy.port) as conn:
        assert len(conn.execute(_LARGE_QUERY).fetchall()) == 2000

    proxy.drop_after(_BUDGET)

    with own_postgres_module.connect(port=proxy.port) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(psycopg.OperationalError):
            conn.execute(_LARGE_QUERY).fetchall()
    proxy.restore()
    with own_postgres_module.connect(port=proxy.port) as conn:
        assert len(conn.execute(_LARGE_QUERY).fetchall()) == 2000


@pytest.mark.postgres
def test_drop_after_also_cuts_a_connection_already_open(
    own_postgres_module: OwnPostgres, tcp_proxy: ProxyFactory
) -> None:
    proxy = tcp_proxy(own_postgres_module.port)
    live = own_postgres_module.connect(port=proxy.port)

    proxy.drop_after(_BUDGET)

    with pytest.raises(psycopg.OperationalError):
        live.execute(_LARGE_QUERY).fetchall()
    live.close()


@pytest.fixture
def talker() -> Iterator[int]:
    """A server on 127.0.0.1 that sends 10,000 bytes to each client, then closes."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            with client:
                client.sendall(b"x" * 10_000)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(timeout=5)


def _receive_all(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        chunks = []
        while chunk := client.recv(4096):
            chunks.append(chunk)
    return b"".join(chunks)


def test_drop_after_passes_exactly_the_budget_of_server_bytes(
    talker: int, tcp_proxy: ProxyFactory
) -> None:
    proxy = tcp_proxy(talker)
    assert len(_receive_all(proxy.port)) == 10_000

    proxy.drop_after(1234)

    assert len(_receive_all(proxy.port)) == 1234


def test_proxy_to_a_dead_target_closes_the_client(tcp_proxy: ProxyFactory) -> None:
    dead_port = free_ports(1)[0]
    proxy = tcp_proxy(dead_port)

    assert _receive_all(proxy.port) == b""


# --- sidecar process ----------------------------------------------------------------------------


def test_the_default_command_is_traefik_gen_watch_under_this_interpreter(
    tmp_path: Path, source_env: dict[str, str]
) -> None:
    sidecar = Sidecar(["--mode", "full"], workdir=tmp_path, env=source_env)

    assert sidecar.command == [sys.executable, "-m", "traefik_gen", "watch", "--mode", "full"]


def test_sidecar_runs_the_command_with_its_args_and_waits_until_ready(
    sidecar_factory: SidecarFactory, stand_in: list[str], source_env: dict[str, str]
) -> None:
    sidecar = sidecar_factory("--ready-after", "0.3", env=source_env, command=stand_in)

    sidecar.wait_ready(timeout=10)

    assert sidecar.readyz() == (200, "ok\n")
    assert sidecar.healthz() == (200, "ok\n")
    assert sidecar.get("/nope")[0] == 404
    assert "stand-in args: --ready-after 0.3" in sidecar.log_text()


def test_wait_ready_fails_with_the_last_answer_when_never_ready(
    sidecar_factory: SidecarFactory, stand_in: list[str], source_env: dict[str, str]
) -> None:
    sidecar = sidecar_factory("--ready-after", "600", env=source_env, command=stand_in)

    with pytest.raises(AssertionError, match=r"not ready within 0\.5s; last /readyz: \(503"):
        sidecar.wait_ready(timeout=0.5)
    assert sidecar.healthz()[0] == 200


def test_wait_ready_fails_at_once_when_the_process_exits(
    sidecar_factory: SidecarFactory, stand_in: list[str], source_env: dict[str, str]
) -> None:
    sidecar = sidecar_factory("--exit", "3", env=source_env, command=stand_in)
    started = time.monotonic()

    with pytest.raises(SidecarExitedError, match="exited with status 3"):
        sidecar.wait_ready(timeout=30)
    assert time.monotonic() - started < 10


def test_metrics_are_read_by_name_and_exact_labels(
    sidecar_factory: SidecarFactory, stand_in: list[str], source_env: dict[str, str]
) -> None:
    sidecar = sidecar_factory(env=source_env, command=stand_in)
    sidecar.wait_ready(timeout=10)

    assert sidecar.metric("traefik_gen_syncs_total", outcome="ok") == 3.0
    assert sidecar.metric("traefik_gen_syncs_total", outcome="failed") == 0.0
    assert sidecar.metric("traefik_gen_routers_rendered") == 7.0
    assert sidecar.metric("standin_odd_label", path='a "quoted"\\path\nline') == 1.5
    assert sidecar.metric("traefik_gen_sync_duration_seconds_bucket", le="0.1") == 1.0
    assert sidecar.metric("traefik_gen_sync_duration_seconds_bucket", le="+Inf") == 2.0
    assert sidecar.metric("traefik_gen_syncs_total") is None
    assert sidecar.metric("traefik_gen_no_such_metric") is None
    assert "traefik_gen_sync_duration_seconds_count" in sidecar.metrics()


def test_parse_metrics_reads_escapes_special_values_and_timestamps() -> None:
    text = (
        "# HELP up whether it is up\n"
        "# TYPE up gauge\n"
        "up 1\n"
        'latency{quantile="0.5",path="/a,b}"} NaN 1712345678000\n'
        'limit{kind="upper"} +Inf\n'
        'limit{kind="lower"} -Inf\n'
        'weird{b="2", a="x\\"y\\\\z\\n"} 4.5e-3\n'
    )

    samples = parse_metrics(text)

    assert samples["up"] == 1.0
    nan = samples['latency{path="/a,b}",quantile="0.5"}']
    assert nan != nan
    assert samples['limit{kind="upper"}'] == float("inf")
    assert samples['limit{kind="lower"}'] == float("-inf")
    assert samples['weird{a="x\\"y\\\\z\\n",b="2"}'] == 0.0045
    assert len(samples) == 5


@pytest.mark.parametrize("line", ["up", "up one", 'up{kind="x} 1', "up{kind=x} 1"])
def test_parse_metrics_rejects_a_line_that_is_not_a_sample(line: str) -> None:
    with pytest.raises(ValueError, match="line 2 of the metrics is not a sample"):
        parse_metrics(f"ok 1\n{line}\n")


def test_sidecar_environment_drops_the_runners_configuration(
    sidecar_factory: SidecarFactory,
    stand_in: list[str],
    source_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRAEFIK_GEN_MODE", "full")
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere.invalid/x")
    monkeypatch.setenv("PGHOST", "elsewhere.invalid")
    monkeypatch.setenv("POSTGRES_PASSWORD_FILE", "/run/secrets/nope")
    monkeypatch.setenv("DOCKER_HOST", "tcp://elsewhere.invalid:2375")

    sidecar = sidecar_factory(env=source_env | {"TRAEFIK_GEN_X": "1"}, command=stand_in)
    sidecar.wait_ready(timeout=10)
    env = json.loads(sidecar.get("/env")[1])

    prefixes = ("TRAEFIK_GEN_", "PG", "POSTGRES_", "DOCKER_")
    ours = {key: env[key] for key in env if key.startswith(prefixes)}
    assert ours == {
        "TRAEFIK_GEN_SOURCE": source_env["TRAEFIK_GEN_SOURCE"],
        "TRAEFIK_GEN_X": "1",
        "TRAEFIK_GEN_LISTEN": f"127.0.0.1:{sidecar.port}",
        "TRAEFIK_GEN_OUT": str(sidecar.out_dir),
        "TRAEFIK_GEN_DOCKER": "false",
    }
    assert "DATABASE_URL" not in env
    assert sidecar.out_dir.is_dir()
    assert sidecar.url == f"http://127.0.0.1:{sidecar.port}"


def test_a_sidecar_given_a_docker_host_keeps_docker_on(tmp_path: Path) -> None:
    env = {"TRAEFIK_GEN_SOURCE": "routes.yml", "TRAEFIK_GEN_DOCKER_HOST": "unix:///x.sock"}

    sidecar = Sidecar(workdir=tmp_path, env=env)

    assert "TRAEFIK_GEN_DOCKER" not in sidecar.env
    assert sidecar.env["TRAEFIK_GEN_DOCKER_HOST"] == "unix:///x.sock"


def test_terminate_sends_sigterm_and_returns_the_exit_status(
    sidecar_factory: SidecarFactory, stand_in: list[str], source_env: dict[str, str]
) -> None:
    sidecar = sidecar_factory("--term-code", "4", env=source_env, command=stand_in)
    sidecar.wait_ready(timeout=10)

    assert sidecar.terminate(timeout=10) == 4
    assert "received SIGTERM" in sidecar.log_text()


def test_terminate_kills_and_fails_a_sidecar_that_ignores_sigterm(
    sidecar_factory: SidecarFactory, stand_in: list[str], source_env: dict[str, str]
) -> None:
    sidecar = sidecar_factory("--ignore-term", env=source_env, command=stand_in)
    sidecar.wait_ready(timeout=10)

    with pytest.raises(AssertionError, match=r"did not exit within 0\.5s of SIGTERM"):
        sidecar.terminate(timeout=0.5)
    assert sidecar.returncode == -signal.SIGKILL


def test_signal_reaches_the_sidecar(
    sidecar_factory: SidecarFactory, stand_in: list[str], source_env: dict[str, str]
) -> None:
    sidecar = sidecar_factory(env=source_env, command=stand_in)
    sidecar.wait_ready(timeout=10)

    sidecar.signal(signal.SIGHUP)

    assert sidecar.wait_for(lambda: sidecar.metric("standin_sighups_total") == 1.0, timeout=5)


def test_sidecar_without_a_source_is_refused_before_it_starts(
    sidecar_factory: SidecarFactory, stand_in: list[str]
) -> None:
    with pytest.raises(ValueError, match="needs a source"):
        sidecar_factory(command=stand_in)


def test_factory_close_kills_every_sidecar_left_running(
    tmp_path: Path, stand_in: list[str], source_env: dict[str, str]
) -> None:
    factory = SidecarFactory(tmp_path / "sidecars")
    sidecar = factory(env=source_env, command=stand_in)
    sidecar.wait_ready(timeout=10)

    factory.close()

    assert sidecar.returncode == -signal.SIGKILL
    with pytest.raises(OSError):
        sidecar.healthz()
