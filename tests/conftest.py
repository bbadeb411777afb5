"""Shared test configuration: the support plugins that start real services."""

pytest_plugins = [
    "tests.support.options",
    "tests.support.postgres",
    "tests.support.backends",
    "tests.support.traefik",
    "tests.support.own_postgres",
    "tests.support.tcp_proxy",
    "tests.support.sidecar",
    "tests.support.fake_docker",
]
