"""Every database session of traefik-gen is bounded: no read can hang on a lock forever."""

from __future__ import annotations

from tests.support.postgres import DokployDb
from traefik_gen.sources.dokploy import open_snapshot
from traefik_gen.sources.dokploy.changes import ChangeDetector


def test_snapshots_carry_a_statement_timeout_and_keepalives(dokploy_db: DokployDb) -> None:
    with open_snapshot(dokploy_db.url) as conn:
        timeout = conn.execute("SHOW statement_timeout").fetchone()
        idle = conn.execute("SHOW idle_in_transaction_session_timeout").fetchone()

    assert timeout == ("30s",)
    assert idle == ("1min",)


def test_change_detection_moves_on_insert_update_and_delete(dokploy_db: DokployDb) -> None:
    detector = ChangeDetector(dokploy_db.url, password=None, connect_timeout=5)
    compose = dokploy_db.add_compose("fingerprinted")
    empty = detector.fingerprint()

    domain = dokploy_db.add_domain(compose, "a.example.test")
    inserted = detector.fingerprint()
    dokploy_db.update("domain", domain.id, host="b.example.test")
    updated = detector.fingerprint()
    dokploy_db.delete("domain", domain.id)
    deleted = detector.fingerprint()
    detector.close()

    # Each step moves the fingerprint away from the one before (the sidecar's last one).
    assert empty != inserted != updated != deleted
    assert detector_is_stable(dokploy_db)


def detector_is_stable(db: DokployDb) -> bool:
    detector = ChangeDetector(db.url, password=None, connect_timeout=5)
    try:
        return detector.fingerprint() == detector.fingerprint()
    finally:
        detector.close()
