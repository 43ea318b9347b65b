"""The sample systems on their own: cache provenance and expiry, idempotent issues."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agentlab.demo.systems import NOW, Issue, build_systems
from agentlab.demo.systems._data import ACME_BEFORE_UPGRADE


def test_stale_cache_serves_the_pre_upgrade_record_until_the_ttl() -> None:
    systems = build_systems("stale")
    hit = systems.cache.lookup("ACME-1042")
    assert (hit.source, hit.plan) == ("cache", "standard")
    assert systems.crm.get("ACME-1042").plan == "enterprise"
    systems.cache.seed(ACME_BEFORE_UPGRADE, cached_at=NOW - timedelta(days=8))
    expired = systems.cache.lookup("ACME-1042")
    assert (expired.source, expired.plan, expired.as_of) == ("crm", "enterprise", NOW)
    assert systems.cache.lookup("ACME-1042").source == "cache"  # now cached, fresh


def test_fresh_scenario_reads_through_to_the_crm() -> None:
    lookup = build_systems("fresh").cache.lookup("ACME-1042")
    assert (lookup.source, lookup.plan, lookup.cached_at) == ("crm", "enterprise", None)


def test_issue_creation_is_idempotent_on_its_key() -> None:
    tracker = build_systems("fresh").tracker

    def create(project: str, key: str) -> Issue:
        return tracker.create(project=project, title="t", priority="urgent", description="d",
                              ticket_id="T-1", idempotency_key=key)

    first, again = create("ENG", "k"), create("ENG", "k")
    assert first == again and first.key == "ENG-101"
    assert len(tracker.issues()) == 1
    with pytest.raises(ValueError, match="no project 'OPS'"):
        create("OPS", "k2")


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(ValueError, match="scenario must be"):
        build_systems("warm")  # type: ignore[arg-type]
