"""Who may approve: approvers, their groups and their keys, kept as an append-only history.

A rule's ``approvers=`` may name people and groups. A group is defined in the store by its
members (``add_approver(store, "ana", group="support-leads")``); an approver may hold a key
(``issue_key=True``), whose private half is returned once and never stored: the store keeps
its public half, which checks a signature but cannot make one. Every change is an entry in
the history (who, when, why), each under agentlab's MAC; nothing is edited or deleted, and an
approver's current state is read from their entries in order.

>>> added = add_approver(store, "ana", group="support-leads", issue_key=True, by="lee")
>>> added.key        # shown once: give it to ana         # doctest: +SKIP
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from agentlab.errors import ApprovalError
from agentlab.identity import keyed_hash, new_approver_key
from agentlab.model import ApproverChange, canonical
from agentlab.store import RunStore

__all__ = [
    "ApproverAdded",
    "ApproverState",
    "add_approver",
    "approver_history",
    "approver_state",
    "approver_states",
    "revoke_approver",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$")


@dataclass(frozen=True, slots=True)
class ApproverState:
    """An approver as their history leaves them now."""

    name: str
    active: bool
    """Added and not revoked since."""
    groups: tuple[str, ...]
    public_key: str | None
    """Their key's public half (hex), if they hold a key: their decisions must be signed."""
    since: datetime | None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None
    tampered: bool = False
    """An entry of theirs lacks agentlab's MAC (written into the database by hand, or under
    another signing key): they are refused until an administrator looks."""

    @property
    def status(self) -> str:
        if self.tampered:
            return "tampered"
        return "active" if self.active else "revoked"


@dataclass(frozen=True, slots=True)
class ApproverAdded:
    """What :func:`add_approver` did: the history entry, and the new key if one was issued
    (its only copy: it is not stored)."""

    change: ApproverChange
    key: str | None = None


def _mac(approver: str, action: str, group: str | None, public_key: str | None, at_us: int,
         by: str | None, reason: str | None) -> str:
    data, _ = canonical([approver, action, group, public_key, at_us, by, reason])
    return keyed_hash("approver-change", data)


def _us(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


def _authentic(c: ApproverChange) -> bool:
    want = _mac(c.approver, c.action, c.group, c.public_key, _us(c.at), c.by, c.reason)
    return hmac.compare_digest(c.mac, want)


@dataclass
class _Fold:
    name: str
    active: bool = False
    groups: list[str] = field(default_factory=list)
    public_key: str | None = None
    since: datetime | None = None
    revoked: ApproverChange | None = None
    tampered: bool = False

    def take(self, c: ApproverChange) -> None:
        if not _authentic(c):
            self.tampered = True
            return
        if c.action == "add":
            if not self.active:
                self.active, self.since, self.revoked = True, c.at, None
            if c.group is not None and c.group not in self.groups:
                self.groups.append(c.group)
            if c.public_key is not None:
                self.public_key = c.public_key
        elif c.group is not None:
            if c.group in self.groups:
                self.groups.remove(c.group)
        else:  # revoked altogether: out of every group, key void
            self.active, self.groups, self.public_key, self.revoked = False, [], None, c

    def state(self) -> ApproverState:
        r = self.revoked
        return ApproverState(
            name=self.name, active=self.active and not self.tampered,
            groups=tuple(sorted(self.groups)), public_key=self.public_key, since=self.since,
            revoked_at=r.at if r else None, revoked_by=r.by if r else None,
            revoke_reason=r.reason if r else None, tampered=self.tampered)


def _fold(changes: Iterable[ApproverChange]) -> dict[str, ApproverState]:
    folds: dict[str, _Fold] = {}
    for c in changes:
        folds.setdefault(c.approver, _Fold(c.approver)).take(c)
    return {name: f.state() for name, f in sorted(folds.items())}


def approver_state(store: RunStore, name: str) -> ApproverState | None:
    """One approver now (None: never added)."""
    return _fold(store.approver_changes(approver=name.strip())).get(name.strip())


def approver_states(store: RunStore) -> list[ApproverState]:
    """Every approver ever added, by name, with their groups, key and standing now."""
    return list(_fold(store.approver_changes()).values())


def approver_history(store: RunStore, name: str | None = None, *,
                     group: str | None = None) -> list[ApproverChange]:
    """The history of changes, oldest first: all of it, one approver's or one group's."""
    return store.approver_changes(approver=name, group=group)


def _check_name(what: str, name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name.strip()):
        raise ApprovalError(f"{what} {name!r} is not usable: 1-200 letters, digits and ._:@- "
                            "(starting with a letter or digit)")
    return name.strip()


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _append(store: RunStore, approver: str, action: Literal["add", "revoke"],
            group: str | None, public_key: str | None, at: datetime, by: str | None,
            reason: str | None) -> ApproverChange:
    at_us = _us(at)
    row: dict[str, Any] = {
        "approver": approver, "action": action, "group_name": group,
        "public_key": public_key, "at_us": at_us, "by": by, "reason": reason,
        "mac": _mac(approver, action, group, public_key, at_us, by, reason),
    }
    return store.add_approver_change(row)


def add_approver(store: RunStore, name: str, *, group: str | None = None,
                 issue_key: bool = False, by: str | None = None, reason: str | None = None,
                 now: datetime | None = None) -> ApproverAdded:
    """Add ``name`` as an approver, to ``group`` if given, with a new key if ``issue_key``
    (replacing any key they held). A revoked approver is taken back by adding them again
    (their old key stays void). Adding what is already so is an ApprovalError."""
    name = _check_name("approver name", name)
    if group is not None:
        group = _check_name("group name", group)
    before = approver_state(store, name)
    if before is not None and before.tampered:
        raise ApprovalError(f"approver {name}'s history holds an entry without agentlab's MAC "
                            "(written into the database by hand, or under another signing "
                            "key); look into it before changing them")
    if (before is not None and before.active and not issue_key
            and (group is None or group in before.groups)):
        raise ApprovalError(
            f"{name} is already an approver" + (f" in {group}" if group else "")
            + "; to give them a new key add --issue-key (issue_key=True)")
    key, public = new_approver_key() if issue_key else (None, None)
    change = _append(store, name, "add", group, public, _now(now), by, reason)
    return ApproverAdded(change, key)


def revoke_approver(store: RunStore, name: str, *, group: str | None = None,
                    by: str | None = None, reason: str | None = None,
                    now: datetime | None = None) -> ApproverChange:
    """Take ``name`` out of ``group``, or (without a group) revoke them altogether: out of
    every group, their key void, every later decision of theirs refused, in every process,
    including one they already made that has not run yet."""
    name = _check_name("approver name", name)
    before = approver_state(store, name)
    if before is None:
        raise ApprovalError(f"no approver named {name!r}; list them with "
                            "`agentlab approver list`")
    if group is not None:
        group = _check_name("group name", group)
        if group not in before.groups:
            raise ApprovalError(f"{name} is not in group {group} (their groups: "
                                f"{', '.join(before.groups) or 'none'})")
    elif not before.active and not before.tampered:
        raise ApprovalError(
            f"{name} is already revoked (at {before.revoked_at:%Y-%m-%d %H:%M:%S} UTC"
            + (f" by {before.revoked_by}" if before.revoked_by else "") + ")")
    return _append(store, name, "revoke", group, None, _now(now), by, reason)
