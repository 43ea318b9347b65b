"""The sample systems on their own: cache provenance and expiry, idempotent issues."""

from __future__ import annotations

from datetime import timedelta

import pytest

from agentlab.demo.systems import NOW, ApiTokens, Issue, build_systems
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


def test_systems_with_tokens_refuse_calls_without_the_right_bearer() -> None:
    tokens = ApiTokens(crm="crm-token-0123456789", jira="jira-token-0123456789",
                       helpdesk="helpdesk-token-0123456789")
    systems = build_systems("fresh", tokens=tokens)
    with pytest.raises(PermissionError, match="no Authorization header"):
        systems.cache.lookup("ACME-1042")
    with pytest.raises(PermissionError, match="not accepted") as refused:
        systems.helpdesk.ticket("T-1001", auth=tokens.bearer("jira"))
    assert "jira-token" not in str(refused.value)  # what was sent is never echoed
    assert systems.cache.lookup("ACME-1042", auth="Bearer crm-token-0123456789").plan == (
        "enterprise")
    assert systems.entitlements.lookup("standard", auth=tokens.bearer("crm")).sla_hours == 24
    assert systems.bearer("jira") == "Bearer jira-token-0123456789"
    assert "0123456789" not in repr(tokens) + repr(systems)


def test_set_priority_refuses_a_change_decided_on_an_old_reading() -> None:
    helpdesk = build_systems("fresh").helpdesk
    with pytest.raises(ValueError, match="has priority 'high', not 'normal'"):
        helpdesk.set_priority("T-1004", "low", current="normal")
    change = helpdesk.set_priority("T-1004", "urgent", current="high")
    assert (change.previous, change.priority) == ("high", "urgent")
