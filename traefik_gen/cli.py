"""Commands only: parse the command line, call the library, print, exit with a documented code.

Exit status (the README has the same table):
  0  the directory matches the plan (rejected rows are reported)
  1  a source could not be read or the directory not written; nothing was changed
  2  bad settings or usage
  3  as 0, but --strict was given and at least one row was rejected
  4  the mass-removal guard refused the plan; nothing was changed
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from enum import IntEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from traefik_gen.errors import RemovalRefusedError, SettingsError, TraefikGenError
from traefik_gen.logs import configure_logging, mask
from traefik_gen.render import mask_secrets
from traefik_gen.settings import Mode, Settings, load_settings
from traefik_gen.sync import SyncResult, sync
from traefik_gen.writer import lock

# watch, check, verify and init import their modules when they run, so `generate` loads
# only what it uses (3 MB less, of the 100 MB it may take at 10,000 domains).

__all__ = ["ExitCode", "app", "main"]

logger = logging.getLogger(__name__)


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    REJECTED = 3
    REFUSED = 4


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Traefik file-provider configuration from a Dokploy database.",
)


@app.callback()
def _commands() -> None:
    """Traefik file-provider configuration from a Dokploy database."""


SourceOption = Annotated[
    list[str] | None,
    typer.Option(
        "--source",
        help="postgres:// URL or routes-file path; repeat for several "
        "[default: the Dokploy database from DATABASE_URL / POSTGRES_*]",
        show_default=False,
    ),
]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="Traefik's watched dynamic directory", show_default=False),
]
ModeOption = Annotated[
    Mode | None, typer.Option("--mode", help="complement or full", show_default=False)
]
ServerOption = Annotated[
    str | None, typer.Option("--server", help="'local' or a Dokploy serverId", show_default=False)
]
FormatOption = Annotated[
    str | None, typer.Option("--format", help="yaml or toml", show_default=False)
]
UpstreamOption = Annotated[
    str | None,
    typer.Option(
        "--upstream", help="backend URL template: {scheme}, {host}, {port}", show_default=False
    ),
]


AllowRemovalOption = Annotated[
    bool,
    typer.Option(
        "--allow-mass-removal", help="apply a plan that removes most of the owned routers"
    ),
]


@app.command()
def generate(
    source: SourceOption = None,
    out: OutOption = None,
    mode: ModeOption = None,
    server: ServerOption = None,
    output_format: FormatOption = None,
    upstream: UpstreamOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the plan, write nothing")
    ] = False,
    diff: Annotated[
        bool, typer.Option("--diff", help="print a unified diff, write nothing")
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="exit 3 when a row is rejected")] = False,
    allow_mass_removal: AllowRemovalOption = False,
    log_format: Annotated[str | None, typer.Option("--log-format", help="text or json")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="debug logs and tracebacks")] = False,
) -> None:
    """Write the routes the sources describe into the directory, once."""
    overrides = {
        **_where(source, out, mode, server, upstream),
        "format": output_format,
        "strict": strict or None,
        "allow_mass_removal": allow_mass_removal or None,
        "log_format": log_format,
        "log_level": "debug" if debug else None,
    }
    settings = _settings(overrides, debug)
    result = _run(lambda: _generate(settings, dry_run=dry_run, diff=diff), debug)
    _report(result, dry_run=dry_run)
    if settings.strict and result.plan.rejections:
        raise typer.Exit(ExitCode.REJECTED)


@app.command()
def watch(
    source: SourceOption = None,
    out: OutOption = None,
    mode: ModeOption = None,
    server: ServerOption = None,
    output_format: FormatOption = None,
    upstream: UpstreamOption = None,
    listen: Annotated[
        str | None, typer.Option("--listen", help="address of /healthz, /readyz, /metrics")
    ] = None,
    poll_interval: Annotated[
        float | None, typer.Option("--poll-interval", help="seconds between database polls")
    ] = None,
    docker: Annotated[
        bool | None, typer.Option("--docker/--no-docker", help="follow Docker events")
    ] = None,
    allow_mass_removal: AllowRemovalOption = False,
    verify_api: Annotated[
        str | None,
        typer.Option("--verify-api", help="Traefik's API: verify every write, in /readyz"),
    ] = None,
    log_format: Annotated[str | None, typer.Option("--log-format", help="text or json")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="debug logs and tracebacks")] = False,
) -> None:
    """Keep the directory converged with the sources: the sidecar."""
    overrides = {
        **_where(source, out, mode, server, upstream),
        "format": output_format,
        "listen": listen,
        "poll_interval": poll_interval,
        "docker": docker,
        "allow_mass_removal": allow_mass_removal or None,
        "verify_api": verify_api,
        "log_format": log_format,
        "log_level": "debug" if debug else None,
    }
    settings = _settings(overrides, debug)
    try:
        from traefik_gen.watch.loop import Sidecar, replica_source

        sidecar = Sidecar(settings, docker=replica_source(settings))
        code = sidecar.run()
    except SettingsError as exc:
        _fail(str(exc), ExitCode.USAGE)
    except TraefikGenError as exc:
        _fail(str(exc), ExitCode.FAILED)
    raise typer.Exit(code)


@app.command()
def check(
    source: SourceOption = None,
    out: OutOption = None,
    mode: ModeOption = None,
    server: ServerOption = None,
    upstream: UpstreamOption = None,
    traefik_api: Annotated[
        str | None, typer.Option("--traefik-api", help="a running Traefik's API, for labels")
    ] = None,
    traefik_binary: Annotated[
        Path | None, typer.Option("--traefik", help="a traefik binary: load a copy of the files")
    ] = None,
    report_format: Annotated[
        str, typer.Option("--format", help="text, or json for scripts")
    ] = "text",
) -> None:
    """Build the full plan, write nothing, and report every problem found."""
    settings = _settings(_where(source, out, mode, server, upstream), False)
    if report_format not in ("text", "json"):
        _fail("--format takes text or json", ExitCode.USAGE)
    try:
        from traefik_gen.check import run_check

        report = run_check(settings, traefik_api=traefik_api, traefik_binary=traefik_binary)
    except SettingsError as exc:
        _fail(str(exc), ExitCode.USAGE)
    except TraefikGenError as exc:
        _fail(str(exc), ExitCode.FAILED)
    text = report.to_json() if report_format == "json" else "\n".join(report.lines())
    if text:
        sys.stdout.write(text + "\n")
    raise typer.Exit(report.exit_code())


@app.command()
def verify(
    traefik_api: Annotated[
        str, typer.Option("--traefik-api", help="Traefik's API, e.g. http://127.0.0.1:8080")
    ],
    out: OutOption = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the generation")] = 5.0,
    traefik_log: Annotated[
        Path | None, typer.Option("--traefik-log", help="Traefik's log, to name a frozen file")
    ] = None,
    traefik_binary: Annotated[
        Path | None,
        typer.Option("--traefik", help="a traefik binary, to find a frozen file by loading"),
    ] = None,
) -> None:
    """Prove that Traefik loaded the generation in the directory, every router enabled."""
    settings = _settings({"out": out}, False)
    try:
        from traefik_gen.verify import verify_generation

        result = verify_generation(
            traefik_api,
            settings.out,
            settings,
            timeout=timeout,
            log_path=traefik_log,
            traefik_binary=traefik_binary,
        )
    except SettingsError as exc:
        _fail(str(exc), ExitCode.USAGE)
    except TraefikGenError as exc:
        _fail(str(exc), ExitCode.FAILED)
    for line in result.problems:
        logger.error("%s", line)
    if result.ok:
        logger.info("generation %s is loaded; every generated router is enabled", result.generation)
    raise typer.Exit(result.exit_code())


@app.command()
def init(
    dest: Annotated[
        Path, typer.Argument(help="directory to write the deployment files into")
    ] = Path("."),
    image: Annotated[str | None, typer.Option(help="the sidecar image, with its tag")] = None,
    dynamic_dir: Annotated[str | None, typer.Option(help="Traefik's dynamic directory")] = None,
    db_host: Annotated[str | None, typer.Option(help="Dokploy's PostgreSQL host")] = None,
    db_port: Annotated[int | None, typer.Option(help="Dokploy's PostgreSQL port")] = None,
    db_name: Annotated[str | None, typer.Option(help="database name")] = None,
    db_user: Annotated[str | None, typer.Option(help="database user (or a read-only role)")] = None,
    password_secret: Annotated[
        str | None, typer.Option(help="the Swarm secret holding the database password")
    ] = None,
    network: Annotated[str | None, typer.Option(help="Dokploy's overlay network")] = None,
    listen: Annotated[
        str | None, typer.Option(help="the sidecar's /healthz address in the container")
    ] = None,
    mode: ModeOption = None,
    server: ServerOption = None,
    placement: Annotated[str | None, typer.Option(help="Swarm placement constraint")] = None,
    docker_proxy: Annotated[
        bool | None, typer.Option("--docker-proxy/--no-docker-proxy", help="Docker API proxy")
    ] = None,
    docker_proxy_image: Annotated[
        str | None, typer.Option(help="the Docker API proxy's image")
    ] = None,
    uid: Annotated[int | None, typer.Option(help="the sidecar's uid")] = None,
    gid: Annotated[int | None, typer.Option(help="the sidecar's gid")] = None,
    venv: Annotated[str | None, typer.Option(help="host install: the venv")] = None,
    user: Annotated[str | None, typer.Option(help="host install: the system user")] = None,
    host_listen: Annotated[
        str | None, typer.Option(help="host install: the /healthz address")
    ] = None,
    tunnel_port: Annotated[
        int | None, typer.Option(help="host install: the database tunnel's port")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="overwrite existing files")] = False,
) -> None:
    """Render the Swarm stack, Traefik fragment, systemd unit and env file for this host."""
    configure_logging("text", "info")
    try:
        from traefik_gen.deploy import deploy_values, render_templates

        values = deploy_values(
            image=image,
            dynamic_dir=dynamic_dir,
            db_host=db_host,
            db_port=db_port,
            db_name=db_name,
            db_user=db_user,
            password_secret=password_secret,
            network=network,
            listen=listen,
            mode=mode,
            server=server,
            placement=placement,
            docker_proxy=docker_proxy,
            docker_proxy_image=docker_proxy_image,
            uid=uid,
            gid=gid,
            venv=venv,
            user=user,
            host_listen=host_listen,
            tunnel_port=tunnel_port,
        )
        written = render_templates(values, dest, overwrite=force)
    except SettingsError as exc:
        _fail(str(exc), ExitCode.USAGE)
    except TraefikGenError as exc:
        _fail(str(exc), ExitCode.FAILED)
    for path in written:
        sys.stdout.write(f"{path}\n")


def _where(
    source: list[str] | None,
    out: Path | None,
    mode: Mode | None,
    server: str | None,
    upstream: str | None,
) -> dict[str, object]:
    """The options every command shares: what to read and where to write."""
    return {
        "source": tuple(source) if source else None,
        "out": out,
        "mode": mode,
        "server": server,
        "upstream": upstream,
    }


def _settings(overrides: Mapping[str, object], debug: bool) -> Settings:
    configure_logging("text", "debug" if debug else "info")
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        _fail(str(exc), ExitCode.USAGE)
    configure_logging(settings.log_format, settings.log_level)
    return settings


def _generate(settings: Settings, *, dry_run: bool, diff: bool) -> SyncResult:
    if dry_run or diff:
        return sync(settings, dry_run=dry_run, diff=diff)
    # A one-shot run never queues behind a sidecar: it says who holds the directory.
    with lock(settings.out, blocking=False):
        return sync(settings)


def _run(action: Callable[[], SyncResult], debug: bool) -> SyncResult:
    try:
        return action()
    except SettingsError as exc:
        _fail(str(exc), ExitCode.USAGE)
    except RemovalRefusedError as exc:
        _fail(str(exc), ExitCode.REFUSED)
    except TraefikGenError as exc:
        if debug:
            logger.exception("failed")
        _fail(str(exc), ExitCode.FAILED)


def _report(result: SyncResult, *, dry_run: bool) -> None:
    for rejection in result.plan.rejections:
        logger.warning("%s", rejection.line())
    for notice in result.plan.notices:
        logger.warning("%s", notice)
    if dry_run:
        _print_plan(result)
    if result.diff is not None:
        sys.stdout.write(result.diff)
    write = result.write
    preview = dry_run or result.diff is not None
    logger.info(
        "%s %d files, %s %d, %d unchanged; %d routers; %d rows rejected",
        "would write" if preview else "wrote",
        len(write.written),
        "would remove" if preview else "removed",
        len(write.removed),
        len(write.unchanged),
        result.plan.routers,
        len(result.plan.rejections),
    )


def _print_plan(result: SyncResult) -> None:
    for name in result.write.written:
        sys.stdout.write(f"--- write {name}\n")
        sys.stdout.write(mask_secrets(result.files[name].decode()))
    for name in result.write.removed:
        sys.stdout.write(f"--- remove {name}\n")


def _fail(message: str, code: ExitCode) -> NoReturn:
    sys.stderr.write(f"traefik-gen: {mask(message)}\n")
    raise typer.Exit(code)


def main() -> None:
    """The console-script entry point; usage errors exit 2 as click's do."""
    app()
