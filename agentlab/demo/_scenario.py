"""The sample scenario: the triage agent at work for two weeks, recorded deterministically.

:func:`record_scenario` runs the real agent (versions 1.0.0 and 1.1.0) over a few hundred
generated tickets from the accounts in :mod:`agentlab.demo._scenario_data`, in time order,
and over the seed story's runs (:data:`STORY`). Every run gets its own small world, but the
account cache is one simulation across them: a lookup caches what the CRM says, nothing
invalidates an entry when a plan changes, so accounts that change plan are served stale
records for days (1.0.0 trusts them; 1.1.0 reads the CRM again). Seeded randomness decides
the rest: 503s that are retried (and a CRM incident day when retries run out), the support
leads' checks, edits, rejections and response times, who answers at night. On the
Friday, operations cut the cache's TTL to minutes: stale lookups stop.

Deterministic: a scenario clock (simulated latencies of the systems and of the model, the
leads' minutes) and ids derived from it and the seed, fixed demo tokens and signing key,
no git commit in the code reference. The same seed records the same runs, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from agentlab.approval import ApprovalManager, Approver
from agentlab.demo._agent import APPROVAL_WAIT, FIXED_VERSION, task_id_for, triage, triage_fixed
from agentlab.demo._governance import TOKEN_ENV, demo_tokens, ensure_grants
from agentlab.demo._lead import ScriptedLead
from agentlab.demo._names import AGENT, AGENT_VERSION, WORKFLOW
from agentlab.demo._policy import MODEL
from agentlab.demo._scenario_data import (
    ACCOUNTS,
    DAYS,
    ON_CALL,
    PICKUP,
    ROLLOUT,
    SHORT_TTL,
    START,
    TEAMS,
    TEMPLATE_WEIGHTS,
    TEMPLATES,
    THINGS,
    AccountHistory,
    Team,
)
from agentlab.demo.systems import (
    Account,
    CacheSeed,
    Category,
    Systems,
    Ticket,
    TransientError,
    WorldSpec,
    build_world,
    story_world,
)
from agentlab.model import ApprovalRequest
from agentlab.record import Agent, agent
from agentlab.store import RunStore

__all__ = [
    "PRICES",
    "SEED",
    "STORY",
    "WAITING",
    "PlannedRun",
    "ScenarioClock",
    "ScenarioIds",
    "pinned_environment",
    "plan_runs",
    "record_run_of",
    "record_scenario",
    "scenario_agents",
]

SEED = 20240603

PRICES = {MODEL: (2.50, 10.00)}
"""The scripted model's calls are priced as a GPT-4o-class hosted model's would be (USD
per million input and output tokens), so costs per run and per success are realistic."""

_SAMPLE_KEY = "agentlab-sample-scenario-signing-key"
"""The signing key the sample is recorded under: its credential fingerprints are then the
same on every machine (they identify the demo's throwaway tokens, nothing else)."""

_INCIDENT = (datetime(2024, 6, 6, 9, tzinfo=UTC), datetime(2024, 6, 6, 15, tzinfo=UTC))
"""The CRM's bad day: most lookups get a 503, some runs run out of retries."""

Say = Callable[[str], None]


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class ScenarioClock:
    """Scenario time in nanoseconds: each reading moves it on by a fraction of a
    millisecond (the agent's own work); :meth:`advance` adds what a system, the model or a
    human took; :meth:`at` jumps to a later moment (the next ticket)."""

    def __init__(self, start: datetime, *, seed: int) -> None:
        self._ns = int(start.timestamp() * 1_000_000_000)
        self._rng = random.Random(f"{seed}:clock")

    def __call__(self) -> int:
        self._ns += self._rng.randint(150_000, 1_500_000)
        return self._ns

    def peek(self) -> int:
        """The time now, without moving it."""
        return self._ns

    def advance(self, seconds: float) -> None:
        self._ns += int(seconds * 1_000_000_000)

    def at(self, when: datetime) -> None:
        """Move to ``when`` unless the clock is already past it (the agent was busy)."""
        self._ns = max(self._ns, int(when.timestamp() * 1_000_000_000))


class ScenarioIds:
    """Time-ordered ids (UUIDv7 layout, like :func:`agentlab.model.new_id`) from the
    scenario clock and a counter over a base derived from the seed."""

    def __init__(self, clock: ScenarioClock, *, seed: int) -> None:
        self._clock = clock
        self._n = 0
        self._base = int.from_bytes(hashlib.sha256(f"{seed}:ids".encode()).digest()[:10])

    def __call__(self) -> str:
        self._n += 1
        r = (self._base + self._n) & ((1 << 74) - 1)
        ms = self._clock.peek() // 1_000_000
        return "%032x" % ((ms << 80) | (0x7 << 76) | ((r >> 62) << 64) | (0b10 << 62)
                          | (r & ((1 << 62) - 1)))


@dataclass(frozen=True, slots=True)
class PlannedRun:
    """One run of the scenario: its ticket and world, when it starts, the version that
    runs, the team it works for, who answers its approval requests, and its part in the
    seed story (``story``), if any."""

    ticket_id: str
    world: WorldSpec | None
    """None: a generated ticket whose world is made when the run starts (the cache then)."""
    account: AccountHistory | None
    start: datetime
    version: str
    team: Team
    approver: Team
    checks: bool | None = None
    """Whether the approver checks (None: the approver's habit decides)."""
    story: str | None = None
    scenario: str | None = None
    """The seed story's world (``fresh`` or ``stale``), rebuilt by name in a replay."""


def _story_ticket(ticket_id: str, account: Account, subject: str, body: str,
                  created: str) -> Ticket:
    return Ticket(ticket_id=ticket_id, account_id=account.account_id, requester="Alex Moreau",
                  subject=subject, body=body, priority="normal", created_at=_t(created))


_UMBRELLA = Account(account_id="UMB-4410", name="Umbrella Freight", plan="enterprise",
                    region="us-east", updated_at=_t("2024-06-02T10:00:00"))
_EDITED_WORLD = WorldSpec(
    now=_t("2024-06-03T11:05:00"), accounts=[_UMBRELLA],
    cache=[CacheSeed(account=_UMBRELLA.model_copy(update={
        "plan": "business", "updated_at": _t("2023-08-14T12:00:00")}),
        cached_at=_t("2024-06-01T18:00:00"))],
    tickets=[_story_ticket("T-1005", _UMBRELLA, "Tracking webhooks down since 07:00",
                           "Our tracking webhooks are down: no delivery since 07:00 UTC.",
                           "2024-06-03T10:52:00")],
    categories={"T-1005": "outage"}, next_numbers={"ENG": 102, "SUP": 58},
)
"""Umbrella upgraded to enterprise on Sunday; the cache still holds its business record."""

_CONTOSO = next(a for a in ACCOUNTS if a.account_id == "CTS-2202").at(START)
WAITING_WORLD = WorldSpec(
    now=_t("2024-06-10T08:55:00"), accounts=[_CONTOSO],
    tickets=[_story_ticket("T-1006", _CONTOSO, "Checkout down for all requests",
                           "Checkout has been down since 08:40 UTC; every payment fails.",
                           "2024-06-10T08:48:00")],
    categories={"T-1006": "outage"}, next_numbers={"ENG": 480, "SUP": 620},
)
"""The Monday after: Contoso's checkout outage, which 1.1.0 escalates; the lead has not
answered yet (recorded live by ``agentlab demo``, so it waits in the store)."""

_DANA = TEAMS["support-ops"]
STORY = (
    PlannedRun("T-1001", story_world("stale"), None, _t("2024-06-03T09:02:00"), AGENT_VERSION,
               _DANA, ON_CALL, checks=False, story="bad", scenario="stale"),
    PlannedRun("T-1001", story_world("fresh"), None, _t("2024-06-03T09:48:00"), AGENT_VERSION,
               _DANA, _DANA, checks=True, story="good", scenario="fresh"),
    PlannedRun("T-1004", story_world("fresh"), None, _t("2024-06-03T10:15:00"), AGENT_VERSION,
               _DANA, _DANA, checks=True, story="rejected", scenario="fresh"),
    PlannedRun("T-1005", _EDITED_WORLD, None, _t("2024-06-03T11:05:00"), AGENT_VERSION,
               _DANA, _DANA, checks=True, story="edited"),
    PlannedRun("T-1001", story_world("stale"), None, _t("2024-06-03T16:30:00"), FIXED_VERSION,
               _DANA, _DANA, checks=True, story="fixed", scenario="stale"),
)
"""The seed story on Monday 2024-06-03: the on-call engineer approves the bad run's Jira
issue as shown (the stale record gives the wrong issue, priority and reply); Dana flushes
Acme's cache entry and the ticket is triaged again (the good run); she rejects T-1004's
priority drop, edits Umbrella's issue (stale too, so its reply is still wrong), and tries
the fix, 1.1.0, on the bad run's world (the fixed run)."""

WAITING = PlannedRun("T-1006", WAITING_WORLD, None, WAITING_WORLD.now, FIXED_VERSION, _DANA,
                     _DANA, story="waiting")


def _in_hours(when: datetime) -> bool:
    minutes = when.hour * 60 + when.minute
    return when.weekday() < 5 and 9 * 60 + 30 <= minutes < 18 * 60


def _version_at(when: datetime, rng: random.Random) -> str:
    share = 0.0
    for since, later in ROLLOUT:
        if when >= since:
            share = later
    return FIXED_VERSION if rng.random() < share else AGENT_VERSION


def _ticket_times(rng: random.Random) -> Iterator[datetime]:
    for day in range(DAYS):
        date = START + timedelta(days=day)
        weekend = date.weekday() >= 5
        n = rng.randint(10, 16) if weekend else rng.randint(30, 38)
        # Mostly in European and American working hours, some at night.
        minutes = sorted(int(rng.triangular(0, 24 * 60, 13 * 60)) for _ in range(n))
        for m in minutes:
            yield date + timedelta(minutes=m, seconds=rng.randint(0, 59))


def plan_runs(seed: int = SEED) -> list[PlannedRun]:
    """Every run of the scenario (generated tickets and the story), in start order."""
    rng = random.Random(f"{seed}:plan")
    planned: list[PlannedRun] = []
    weights = [a.weight for a in ACCOUNTS]
    for n, created in enumerate(_ticket_times(rng)):
        account = rng.choices(ACCOUNTS, weights)[0]
        start = created + PICKUP[0] + (PICKUP[1] - PICKUP[0]) * rng.random()
        team = TEAMS[account.team]
        planned.append(PlannedRun(
            f"T-{2001 + n}", None, account, start, _version_at(start, rng), team,
            team if _in_hours(start) else ON_CALL))
    planned.extend(STORY)
    return sorted(planned, key=lambda p: p.start)


def _generated_ticket(plan: PlannedRun, rng: random.Random) -> tuple[Ticket, Category]:
    assert plan.account is not None
    template = rng.choices(TEMPLATES, TEMPLATE_WEIGHTS)[0]
    thing = rng.choice(THINGS)
    created = plan.start - PICKUP[0] - (PICKUP[1] - PICKUP[0]) * rng.random()
    hour = (created - timedelta(minutes=rng.randint(5, 90))).strftime("%H:%M")
    priority = template.priority if rng.random() < 0.8 else rng.choice(("normal", "high"))
    ticket = Ticket(
        ticket_id=plan.ticket_id, account_id=plan.account.account_id,
        requester=rng.choice(("Ana Souza", "Ben Okafor", "Chloé Martin", "Dev Patel",
                              "Emma Larsen", "Farid Haddad", "Grace Kim", "Hugo Weber")),
        subject=template.subject.format(thing=thing),
        body=template.body.format(thing=thing, hour=hour),
        priority=priority, created_at=created.replace(microsecond=0),
    )
    return ticket, template.category


def _faults(start: datetime, rng: random.Random) -> dict[str, int]:
    """The 503s a run meets: a few retried here and there; on the incident day most
    lookups fail, and some more often than a tool retries (the run errs)."""
    incident = _INCIDENT[0] <= start < _INCIDENT[1]
    faults: dict[str, int] = {}
    if rng.random() < (0.7 if incident else 0.07):
        faults["cache.lookup"] = 3 if rng.random() < (0.25 if incident else 0.1) else 1
    if rng.random() < 0.04:
        faults["entitlements.lookup"] = 1
    if rng.random() < 0.04:
        faults["tracker.create"] = 1
    if incident and rng.random() < 0.3:
        faults["cache.refresh"] = 1
    return faults


_LATENCY_S = {
    "cache.lookup": (0.03, 0.25), "cache.refresh": (0.15, 0.6),
    "entitlements.lookup": (0.04, 0.16), "tracker.create": (0.3, 1.2),
}


def _paced(clock: ScenarioClock, rng: random.Random) -> tuple[Callable[[str], None],
                                                              Callable[[int, int], None]]:
    """How long the systems and the model take, as the scenario clock sees it."""

    def system(call: str) -> None:
        low, high = _LATENCY_S.get(call, (0.08, 0.4))
        clock.advance(rng.uniform(low, high))

    def model(input_tokens: int, output_tokens: int) -> None:
        clock.advance(0.35 + input_tokens * 0.0002 + output_tokens * rng.uniform(0.012, 0.025))

    return system, model


def _approver(plan: PlannedRun, systems: Systems, clock: ScenarioClock,
              rng: random.Random) -> Approver:
    """The person answering the run's requests, taking a human's minutes; now and then
    nobody answers before the request expires."""
    checks = plan.checks if plan.checks is not None else rng.random() < plan.approver.checks
    lead = ScriptedLead(systems, by=plan.approver.lead, checks=checks)
    slow = plan.approver is ON_CALL
    wait_s = APPROVAL_WAIT.total_seconds()

    def answer(request: ApprovalRequest, manager: ApprovalManager) -> None:
        if plan.story is None and rng.random() < 0.03:
            clock.advance(wait_s + 5)  # nobody answered: the call is refused, expired
            return
        clock.advance(rng.uniform(60, 540) if slow else rng.uniform(15, 240))
        lead(request, manager)

    return answer


def scenario_agents() -> dict[str, Agent[..., Any]]:
    """The two versions of the triage agent as the scenario records them: the same code,
    declared without a git commit (so the sample does not change with every commit)."""
    with _no_git():
        found = {}
        for code in (triage, triage_fixed):
            a = agent(WORKFLOW, version=code.version, name=AGENT, **code.options)(code.fn)
            a.code  # noqa: B018 - computed now, while git is out of the picture
            found[str(code.version)] = a
    return found


@contextmanager
def _no_git() -> Iterator[None]:
    with _environment({"AGENTLAB_NO_GIT": "1"}):
        yield


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def pinned_environment() -> Iterator[None]:
    """Fixed demo tokens and signing key while the scenario records: credential
    fingerprints (keyed hashes of the tokens) come out the same on every machine."""
    values = {env: f"sample-{system}-token-not-a-secret" for system, env in TOKEN_ENV.items()}
    values["AGENTLAB_KEY"] = _SAMPLE_KEY
    with _environment(values):
        yield


class _Cache:
    """The account cache across the scenario: what it holds for each account, and since
    when (a lookup that reads the CRM, or a refresh, updates it; a plan change does not)."""

    def __init__(self, rng: random.Random) -> None:
        self._entries: dict[str, CacheSeed] = {}
        for account in ACCOUNTS:
            cached_at = START - timedelta(hours=rng.uniform(2, 150))
            self._entries[account.account_id] = CacheSeed(account=account.at(cached_at),
                                                           cached_at=cached_at)

    def seeds(self, account_id: str) -> list[CacheSeed]:
        return [self._entries[account_id]]

    def update(self, systems: Systems, account_id: str) -> None:
        entry = systems.cache.entry(account_id)
        if entry is not None:
            self._entries[account_id] = CacheSeed(account=entry.account,
                                                  cached_at=entry.cached_at)


def _world(plan: PlannedRun, cache: _Cache, numbers: dict[str, int],
           rng: random.Random) -> WorldSpec:
    if plan.world is not None:
        return plan.world
    assert plan.account is not None
    ticket, category = _generated_ticket(plan, rng)
    return WorldSpec(
        now=plan.start.replace(microsecond=0), accounts=[plan.account.at(plan.start)],
        cache=cache.seeds(plan.account.account_id), tickets=[ticket],
        categories={ticket.ticket_id: category}, next_numbers=dict(numbers),
        faults=_faults(plan.start, rng),
        **({"cache_ttl": SHORT_TTL[1]} if plan.start >= SHORT_TTL[0] else {}),
    )


def record_run_of(store: RunStore, plan: PlannedRun, *, agents: dict[str, Agent[..., Any]],
                  clock: ScenarioClock | None, ids: ScenarioIds | None,
                  rng: random.Random, world: WorldSpec, approver: Approver | None = None,
                  approval_timeout: timedelta = APPROVAL_WAIT, run_id: str | None = None,
                  resumable: bool = False, out: Say | None = None) -> tuple[str, Systems]:
    """Record one planned run in ``world``: its id and the systems it worked on.

    Without ``clock`` and ``ids`` the run is recorded in real time (the waiting run).
    """
    pace = _paced(clock, rng) if clock is not None else (None, None)
    systems = build_world(world, tokens=demo_tokens(), on_call=pace[0], on_model_call=pace[1])
    if clock is not None:
        clock.at(plan.start)
    metadata: dict[str, Any] = {"demo_scenario": plan.scenario or _cache_state(world)}
    if plan.scenario is None:
        metadata["demo_world"] = world.model_dump(mode="json")
    if plan.story is not None:
        metadata["demo_story"] = plan.story
    options: dict[str, Any] = {}
    if clock is not None and ids is not None:
        options = {"clock": clock, "id_factory": ids, "prices": PRICES}
    run_id = run_id or (ids() if ids is not None else None)
    try:
        result = agents[plan.version].run(
            {"ticket_id": plan.ticket_id}, store=store, run_id=run_id, resume=resumable,
            task_id=task_id_for(plan.ticket_id), metadata=metadata, team=plan.team.name,
            owner=plan.team.owner, tags=["demo", "sample-scenario"],
            approver=approver or (_approver(plan, systems, clock, rng) if clock else None),
            approval_timeout=approval_timeout, kwargs={"systems": systems, "out": out},
            **options,
        )
        run_id = result.run_id
    except TransientError:  # out of retries: the run is recorded as errored
        assert run_id is not None
    return run_id, systems


def _cache_state(world: WorldSpec) -> str:
    """``stale`` when the cache holds an account record the CRM has since changed."""
    current = {a.account_id: a for a in world.accounts}
    for seed in world.cache:
        now = current.get(seed.account.account_id)
        if now is not None and now.plan != seed.account.plan:
            return "stale"
    return "fresh"


def record_scenario(store: RunStore, *, seed: int = SEED, out: Say | None = None
                    ) -> list[str]:
    """Record every run of :func:`plan_runs` into ``store``; their ids, in start order.

    >>> run_ids = record_scenario(open_store("scenario.db"))   # doctest: +SKIP
    """
    say = out or (lambda line: None)
    done: list[str] = []
    with pinned_environment():
        ensure_grants(store)
        agents = scenario_agents()
        clock = ScenarioClock(START, seed=seed)
        ids = ScenarioIds(clock, seed=seed)
        cache = _Cache(random.Random(f"{seed}:cache"))
        numbers = {"ENG": 201, "SUP": 301}
        day = None
        for i, plan in enumerate(plan_runs(seed)):
            if plan.start.date() != day:
                if day is not None:
                    say(f"  {day}: {len(done)} runs so far")
                day = plan.start.date()
            rng = random.Random(f"{seed}:run:{i}")
            world = _world(plan, cache, numbers, rng)
            run_id, systems = record_run_of(store, plan, agents=agents, clock=clock, ids=ids,
                                            rng=rng, world=world)
            done.append(run_id)
            if plan.world is None and plan.account is not None:
                cache.update(systems, plan.account.account_id)
                for issue in systems.tracker.issues(auth=systems.bearer("jira")):
                    project, number = issue.key.split("-")
                    numbers[project] = max(numbers[project], int(number) + 1)
        say(f"  {day}: {len(done)} runs")
    return done
