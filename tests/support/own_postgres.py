"""PostgreSQL clusters a test owns: its own postmaster, port and data, to stop, start or kill.

The machine's shared server (tests/support/postgres.py) cannot be stopped by a test; a
sidecar's outage behaviour needs a server that can. Each cluster here lives in a private
directory (in /dev/shm when it is roomy, else /tmp) on a free 127.0.0.1 port, runs
Debian's binaries as the ``postgres`` OS user when the tests run as root (PostgreSQL
refuses to run as root), and holds one database, ``dokploy``, owned by the superuser
``dokploy`` as in a Dokploy install. It never touches the machine's server on port 5432.

``initdb`` and the schema load run once per session and schema level into a template
cluster; each test's cluster is a file copy of it, a fraction of initdb's second. The
postmaster is the fixture's own child rather than pg_ctl's, so :meth:`OwnPostgres.kill`
can reap it at once: a zombie postmaster keeps its ``postmaster.pid`` lock and blocks the
restart until this machine's init reaps it, seconds later.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from tests.support.postgres import _CURRENT, _V0_13, _V0_24, DokployDb, _Variant
from tests.support.traefik import free_ports, wait_for

__all__ = [
    "ClusterFactory",
    "OwnPostgres",
    "OwnPostgresError",
    "find_bindir",
    "own_postgres",
    "own_postgres_factory",
    "own_postgres_module",
    "require_postgres_binaries",
]

logger = logging.getLogger(__name__)

Auth = Literal["scram-sha-256", "md5"]
Schema = Literal["current", "v0_24", "v0_13"]

ENV_BINDIR = "TRAEFIK_GEN_TEST_PG_BINDIR"
ENV_TMPDIR = "TRAEFIK_GEN_TEST_PG_TMPDIR"
# tmpfs makes the per-test copy of a template ~10 times faster than a disk; a container's
# default /dev/shm (64 MB) is too small for a few clusters, hence the free-space floor.
MEMORY_DIR = Path("/dev/shm")
_MEMORY_DIR_FLOOR = 1 << 30
DEBIAN_ROOT = Path("/usr/lib/postgresql")
SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
SUPERUSER = "dokploy"
DATABASE = "dokploy"
HOST = "127.0.0.1"
# The machine's shared server: a cluster here must never end up on its port.
SHARED_PORT = 5432
OS_USER = "postgres"
SETTINGS_FILE = "traefik_gen_test.conf"

_VARIANTS: dict[str, _Variant] = {"current": _CURRENT, "v0_24": _V0_24, "v0_13": _V0_13}
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 30.0
_PORT_ATTEMPTS = 3
_PORT_TAKEN = "could not bind"
_LOG_TAIL_LINES = 20
# Speed over durability against a host crash, which a test never has. synchronous_commit
# stays on: with it off, kill() would lose the last commits, which a real server keeps.
_SPEED_SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "logging_collector": "off",
}

# Every postmaster still running and every directory not yet removed, so that an
# interpreter exit that skips teardown (an interrupted session) leaves nothing behind:
# the directories may sit in memory (/dev/shm).
_RUNNING: set[subprocess.Popen[bytes]] = set()
_DIRECTORIES: set[Path] = set()


@atexit.register
def _remove_leftovers() -> None:
    for process in list(_RUNNING):
        if process.poll() is None:
            process.kill()
            process.wait()
    for path in list(_DIRECTORIES):
        shutil.rmtree(path, ignore_errors=True)


class OwnPostgresError(RuntimeError):
    """A cluster could not be created, started or stopped; the message has its log tail."""


# --- binaries and OS user ---------------------------------------------------------------


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.name)) or (0,)


def find_bindir() -> Path | None:
    """PostgreSQL's bin directory: $TRAEFIK_GEN_TEST_PG_BINDIR, Debian's newest, or PATH."""
    override = os.environ.get(ENV_BINDIR)
    if override:
        return Path(override) if (Path(override) / "initdb").is_file() else None
    versions = sorted(DEBIAN_ROOT.glob("*/bin/initdb"), key=lambda p: _version_key(p.parents[1]))
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _as_root() -> bool:
    return os.geteuid() == 0


def _missing_prerequisite(bindir: Path | None) -> str | None:
    if bindir is None:
        return f"no initdb found (set {ENV_BINDIR} or install postgresql)"
    if _as_root() and not _os_user_exists():
        return f"running as root needs the '{OS_USER}' os user, which does not exist"
    return None


def _os_user_exists() -> bool:
    try:
        pwd.getpwnam(OS_USER)
    except KeyError:
        return False
    return True


def require_postgres_binaries() -> Path:
    """The bin directory, or skip the test (fail it on CI, where CI=true) with the reason."""
    bindir = find_bindir()
    reason = _missing_prerequisite(bindir)
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    assert bindir is not None
    return bindir


def _process_user() -> dict[str, Any]:
    """Popen keywords that drop root to the postgres OS user (nothing when not root)."""
    if not _as_root():
        return {}
    return {"user": OS_USER, "group": OS_USER, "extra_groups": []}


def _server_env() -> dict[str, str]:
    # Nothing of the runner's PG* variables: a stray PGHOST or PGPORT must not leak in.
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "TZ": "UTC",
    }


def _clusters_root() -> Path:
    """Where clusters live: $TRAEFIK_GEN_TEST_PG_TMPDIR, a roomy /dev/shm, else /tmp."""
    override = os.environ.get(ENV_TMPDIR)
    if override:
        return Path(override)
    try:
        roomy = shutil.disk_usage(MEMORY_DIR).free >= _MEMORY_DIR_FLOOR
    except OSError:
        roomy = False
    # Not tempfile.gettempdir(): pytest's own tmp dirs are 0700 root, closed to postgres.
    return MEMORY_DIR if roomy else Path("/tmp")


def _private_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=_clusters_root()))
    _DIRECTORIES.add(path)
    _give_to_server(path)
    return path


def _remove_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    _DIRECTORIES.discard(path)


def _give_to_server(path: Path) -> None:
    if _as_root():
        shutil.chown(path, user=OS_USER, group=OS_USER)


# --- one data directory's configuration ---------------------------------------------------


def _conf_line(name: str, value: str) -> str:
    escaped = value.replace("'", "''")
    return f"{name} = '{escaped}'\n"


def _write_settings(data_dir: Path, port: int, socket_dir: Path) -> None:
    settings = {
        "listen_addresses": HOST,
        "port": str(port),
        "unix_socket_directories": str(socket_dir),
        **_SPEED_SETTINGS,
    }
    path = data_dir / SETTINGS_FILE
    path.write_text("".join(_conf_line(k, v) for k, v in settings.items()), encoding="utf-8")
    _give_to_server(path)


def _write_hba(data_dir: Path, auth: str) -> None:
    # The unix socket stays trusted: it lives in the cluster's private directory and is how
    # the fixture itself sets the password and loads data. Only TCP is under test.
    lines = f"local all all trust\nhost all all {HOST}/32 {auth}\n"
    (data_dir / "pg_hba.conf").write_text(lines, encoding="utf-8")


def _include_settings(data_dir: Path) -> None:
    with (data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(f"\ninclude_if_exists '{SETTINGS_FILE}'\n")


# --- the postmaster -----------------------------------------------------------------------


class _Server:
    """One data directory and, while it runs, its postmaster (a child of this process)."""

    def __init__(self, bindir: Path, base_dir: Path, port: int) -> None:
        self.bindir = bindir
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.log_path = base_dir / "server.log"
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def admin_dsn(self) -> str:
        """Superuser over the unix socket in the private directory (trusted)."""
        return make_conninfo(
            host=str(self.base_dir), port=self.port, user=SUPERUSER, dbname=DATABASE
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self) -> str:
        return "\n".join(self.log_text().splitlines()[-_LOG_TAIL_LINES:])

    def initdb(self) -> None:
        command = [
            str(self.bindir / "initdb"),
            f"--pgdata={self.data_dir}",
            f"--username={SUPERUSER}",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
            # 1 MB WAL segments instead of 16: each test's copy of the cluster is smaller.
            "--wal-segsize=1",
        ]
        done = subprocess.run(
            command,
            cwd=self.base_dir,
            env=_server_env(),
            capture_output=True,
            check=False,
            **_process_user(),
        )
        if done.returncode != 0:
            output = done.stderr.decode(errors="replace").strip()
            raise OwnPostgresError(f"initdb failed in {self.data_dir}: {output}")

    def start(self) -> None:
        if self.running:
            return
        self.process = self._spawn()
        _RUNNING.add(self.process)
        self._wait_accepting()
        logger.debug("postgresql %s accepts connections on port %d", self.data_dir, self.port)

    def _spawn(self) -> subprocess.Popen[bytes]:
        log = self.log_path.open("ab")
        try:
            return subprocess.Popen(
                [str(self.bindir / "postgres"), "-D", str(self.data_dir)],
                cwd=self.base_dir,
                env=_server_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                **_process_user(),
            )
        finally:
            log.close()

    def _wait_accepting(self) -> None:
        accepting = wait_for(self._accepts_or_exited, _START_TIMEOUT)
        if accepting and self.running:
            return
        self._reap(signal.SIGKILL)
        raise OwnPostgresError(
            f"postgresql in {self.data_dir} did not start on port {self.port}; "
            f"log tail:\n{self.log_tail()}"
        )

    def _accepts_or_exited(self) -> bool:
        if not self.running:
            return True
        try:
            # The maintenance database: "dokploy" is yet to be created in a template.
            with psycopg.connect(self.admin_dsn, dbname="postgres", connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        """Fast shutdown (SIGINT, what ``pg_ctl stop -m fast`` sends): clients are cut."""
        if not self.running:
            self._reap(signal.SIGKILL)
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            self._reap(signal.SIGKILL)
            raise OwnPostgresError(
                f"postgresql in {self.data_dir} ignored a fast shutdown; "
                f"log tail:\n{self.log_tail()}"
            ) from exc
        self._reap(signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the postmaster and its children at once, as ``docker kill`` would."""
        if self.process is None:
            return
        # Frozen first: a backend that outlived its postmaster by a moment would send its
        # clients "unexpected postmaster exit", a courtesy no crashed container extends.
        self.process.send_signal(signal.SIGSTOP)
        children = _children_of(self.process.pid)
        for pid in children:
            _signal_quietly(pid, signal.SIGSTOP)
        self.process.kill()
        for pid in children:
            _signal_quietly(pid, signal.SIGKILL)
        self._reap(signal.SIGKILL)
        wait_for(lambda: all(_gone(pid) for pid in children), _STOP_TIMEOUT)

    def _reap(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait()
        _RUNNING.discard(self.process)
        self.process = None


def _children_of(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie (its memory, shared segments included, freed)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


def _signal_quietly(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _copy_data(template: Path, data_dir: Path) -> None:
    # cp -a keeps the owner (postgres) and the 0700 mode the postmaster insists on.
    subprocess.run(["cp", "-a", str(template), str(data_dir)], check=True)


# --- templates: initdb and the schema, once per session -----------------------------------


class _Templates:
    """Shut-down template clusters, one per schema level, built on first use."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = _private_dir("tg-pg-templates-")
        self._built: dict[str, Path] = {}

    def data_dir(self, schema: Schema | None) -> Path:
        key = schema or "empty"
        if key not in self._built:
            self._built[key] = self._build(key, schema)
        return self._built[key]

    def _build(self, key: str, schema: Schema | None) -> Path:
        base = self.root / key
        base.mkdir()
        _give_to_server(base)
        server = _Server(self.bindir, base, _free_port())
        server.initdb()
        _include_settings(server.data_dir)
        _write_settings(server.data_dir, server.port, base)
        server.start()
        try:
            _create_dokploy_database(server)
            if schema is not None:
                _load_variant(server.admin_dsn, _VARIANTS[schema])
        finally:
            server.stop()
        logger.debug("built template cluster %s", server.data_dir)
        return server.data_dir

    def close(self) -> None:
        _remove_dir(self.root)


def _create_dokploy_database(server: _Server) -> None:
    dsn = make_conninfo(server.admin_dsn, dbname="postgres")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))


def _load_variant(dsn: str, variant: _Variant) -> None:
    script = (SQL_DIR / variant.sql_file).read_text(encoding="utf-8")
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Without parameters psycopg uses the simple protocol: the whole script in one go.
        conn.execute(script.encode())
        for statement in variant.chain:
            conn.execute(statement.encode())


# --- what a test gets ---------------------------------------------------------------------


class OwnPostgres:
    """A running cluster of the test's own, with the Dokploy schema (unless asked otherwise).

    ``dsn`` and ``url`` reach it over TCP on 127.0.0.1 as the superuser ``dokploy``; the
    DSN carries the password when there is one, the URL never does (give a sidecar
    ``password_file`` or PGPASSWORD). ``db`` is a :class:`DokployDb` on the cluster;
    re-read the attribute after a stop or kill, as its connection does not survive one.
    """

    def __init__(
        self, server: _Server, schema: Schema | None, password: str | None, auth: Auth
    ) -> None:
        self._server = server
        self.schema = schema
        self.password = password
        self.auth = auth
        self.user = SUPERUSER
        self.dbname = DATABASE
        self.password_file: Path | None = None
        self._db: DokployDb | None = None
        self._db_conn: psycopg.Connection[Any] | None = None

    # --- addresses ------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def host(self) -> str:
        return HOST

    @property
    def dsn(self) -> str:
        """Keyword-form DSN over TCP, with the password if the cluster has one."""
        return self.dsn_with()

    @property
    def url(self) -> str:
        """``postgresql://dokploy@127.0.0.1:<port>/dokploy``: no password in it."""
        return self.url_via(self.port)

    @property
    def admin_dsn(self) -> str:
        """Superuser over the cluster's unix socket: trusted even on a password cluster."""
        return self._server.admin_dsn

    def dsn_with(self, **params: str | int) -> str:
        """The TCP DSN with some parameters replaced, e.g. ``port=proxy.port``."""
        base: dict[str, str | int] = {
            "host": HOST,
            "port": self.port,
            "user": self.user,
            "dbname": self.dbname,
        }
        if self.password is not None:
            base["password"] = self.password
        return make_conninfo("", **(base | params))

    def url_via(self, port: int) -> str:
        """The URL with another port: a proxy in front of this cluster."""
        return f"postgresql://{self.user}@{HOST}:{port}/{self.dbname}"

    # --- files ----------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self._server.data_dir

    @property
    def log_path(self) -> Path:
        return self._server.log_path

    def log_text(self) -> str:
        return self._server.log_text()

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._server.running

    def start(self) -> None:
        """Start again on the same port with the same data (crash recovery after kill)."""
        # Limitation: the port is not held while stopped; if something takes it, start()
        # fails with the server's log rather than move (a sidecar's DSN names the port).
        self._server.start()

    def stop(self) -> None:
        """Fast shutdown: live connections are closed, new ones refused."""
        self._forget_db()
        self._server.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL the postmaster (and its backends): a crash, recovered by :meth:`start`."""
        self._forget_db()
        self._server.kill()

    def close(self) -> None:
        """Stop for good and delete the files."""
        self._forget_db()
        try:
            self._server.stop()
        finally:
            _remove_dir(self._server.base_dir)

    # --- data -----------------------------------------------------------------------------

    def connect(self, **params: str | int) -> psycopg.Connection[Any]:
        """A new autocommit connection over TCP (the caller closes it)."""
        return psycopg.connect(self.dsn_with(**params), autocommit=True, connect_timeout=5)

    def apply_sql(self, path: Path | str) -> None:
        """Run a SQL script file in the ``dokploy`` database as the superuser."""
        script = Path(path).read_text(encoding="utf-8")
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(script.encode())

    @property
    def db(self) -> DokployDb:
        """Dokploy row factories (tests/support/postgres.py) on this cluster's database."""
        if self.schema is None:
            raise OwnPostgresError("this cluster was created without a dokploy schema")
        if self._db is None:
            self._db_conn = psycopg.connect(self.admin_dsn, autocommit=True)
            self._db = DokployDb(self.dsn, _VARIANTS[self.schema], self._db_conn)
        return self._db

    def _forget_db(self) -> None:
        if self._db_conn is not None:
            self._db_conn.close()
        self._db_conn = None
        self._db = None

    def store_password(self) -> None:
        """Store the password (hashed per ``auth``) and write it to ``password_file``."""
        if self.password is None:
            return
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("SET password_encryption = {}").format(sql.Literal(self.auth)))
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(self.user), sql.Literal(self.password)
                )
            )
        self.password_file = self._server.base_dir / "password"
        self.password_file.write_text(self.password, encoding="utf-8")
        self.password_file.chmod(0o600)


class ClusterFactory:
    """Creates clusters from the session's templates and closes every one it made."""

    def __init__(self, templates: _Templates) -> None:
        self._templates = templates
        self._clusters: list[OwnPostgres] = []

    def __call__(
        self,
        *,
        password: str | None = None,
        auth: Auth = "scram-sha-256",
        schema: Schema | None = "current",
    ) -> OwnPostgres:
        """A started cluster; with ``password``, TCP logins need it (``auth`` method)."""
        template = self._templates.data_dir(schema)
        base = _private_dir("tg-pg-")
        try:
            server = self._start_on_free_port(template, base, auth if password else "trust")
        except BaseException:
            _remove_dir(base)
            raise
        cluster = OwnPostgres(server, schema, password, auth)
        self._clusters.append(cluster)
        cluster.store_password()
        return cluster

    def _start_on_free_port(self, template: Path, base: Path, hba_auth: str) -> _Server:
        server = _Server(self._templates.bindir, base, 0)
        _copy_data(template, server.data_dir)
        _write_hba(server.data_dir, hba_auth)
        attempts_left = _PORT_ATTEMPTS
        while True:
            attempts_left -= 1
            server.port = _free_port()
            _write_settings(server.data_dir, server.port, base)
            server.log_path.unlink(missing_ok=True)
            try:
                server.start()
            except OwnPostgresError:
                # Another process may take the port between our probe and the bind.
                if attempts_left == 0 or _PORT_TAKEN not in server.log_text():
                    raise
                continue
            return server

    def close(self) -> None:
        for cluster in reversed(self._clusters):
            cluster.close()
        self._clusters.clear()


def _free_port() -> int:
    port = free_ports(1)[0]
    if port == SHARED_PORT:
        raise OwnPostgresError(f"refusing port {SHARED_PORT}: it belongs to the shared server")
    return port


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _own_postgres_templates() -> Iterator[_Templates]:
    templates = _Templates(require_postgres_binaries())
    yield templates
    templates.close()


@pytest.fixture
def own_postgres_factory(_own_postgres_templates: _Templates) -> Iterator[ClusterFactory]:
    """Make clusters: ``own_postgres_factory(password="...", auth="md5", schema=None)``."""
    factory = ClusterFactory(_own_postgres_templates)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
def own_postgres(own_postgres_factory: ClusterFactory) -> OwnPostgres:
    """A cluster for this test only: trust auth, the current Dokploy schema."""
    return own_postgres_factory()


@pytest.fixture(scope="module")
def own_postgres_module(_own_postgres_templates: _Templates) -> Iterator[OwnPostgres]:
    """One trust cluster shared by a module's tests that neither stop it nor need it empty."""
    factory = ClusterFactory(_own_postgres_templates)
    try:
        yield factory()
    finally:
        factory.close()
