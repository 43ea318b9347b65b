"""Policies: per tool call, from tool, scope, phase and arguments, allow, ask, or refuse.

Rules are checked in order and the first that matches decides. The run's phase then sets a
floor no rule can lower: in phase ``read`` a side-effecting call is refused, in ``draft``
it needs approval, in ``act`` the rules alone decide. The decision names its rule, so every
recorded call says why it ran, waited or was refused.

>>> policy = Policy([
...     Rule("jira-create-needs-human", "approve", tool="create_issue"),
...     Rule("no-priority-drop", "approve", tool="set_priority",
...          when=lambda a: a["priority"] in ("low", "normal")),
...     Rule("no-deletes", "deny", tool="delete_*"),
... ])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal

from agentlab.errors import ConfigError
from agentlab.identity import scope_matches
from agentlab.model import Phase

__all__ = ["Policy", "PolicyAction", "PolicyDecision", "Rule"]

PolicyAction = Literal["allow", "approve", "deny"]
_SEVERITY: dict[str, int] = {"allow": 0, "approve": 1, "deny": 2}


@dataclass(frozen=True, slots=True)
class Rule:
    """One policy rule; every field given must match for the rule to apply.

    ``tool`` is a glob over tool names, ``scope`` a scope pattern over the scope the call
    needs, ``phases`` the phases it applies in, ``side_effect`` restricts it to (or away
    from) side-effecting tools, and ``when`` is a predicate on the call's arguments.
    """

    name: str
    action: PolicyAction
    tool: str = "*"
    scope: str | None = None
    phases: tuple[Phase, ...] | None = None
    side_effect: bool | None = None
    when: Callable[[Mapping[str, Any]], bool] | None = None
    reason: str | None = None
    approvers: tuple[str, ...] | None = None
    """For an ``approve`` rule: the people who may decide its requests (None: anyone but
    the agent that asked). Stored on each request, under its MAC."""

    def __post_init__(self) -> None:
        if self.action not in _SEVERITY:
            raise ConfigError(
                f"rule {self.name!r}: action must be 'allow', 'approve' or 'deny', "
                f"not {self.action!r}"
            )
        if self.approvers is not None:
            if self.action != "approve":
                raise ConfigError(f"rule {self.name!r}: approvers= goes with action "
                                  f"'approve', not {self.action!r}")
            if isinstance(self.approvers, str) or not self.approvers or not all(
                    isinstance(a, str) and a.strip() for a in self.approvers):
                raise ConfigError(f"rule {self.name!r}: approvers= is a non-empty list of "
                                  f"names, not {self.approvers!r}")
            object.__setattr__(self, "approvers", tuple(self.approvers))


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """What the policy said about one call, and which rule said it."""

    action: PolicyAction
    rule: str
    reason: str
    approvers: tuple[str, ...] | None = None


class Policy:
    """An ordered list of rules plus the phase floor; see the module docstring."""

    def __init__(self, rules: Iterable[Rule] = (), *, default: PolicyAction = "allow") -> None:
        self.rules = tuple(rules)
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ConfigError(f"policy rule names must be unique; got {names}")
        if default not in _SEVERITY:
            raise ConfigError(f"default must be 'allow', 'approve' or 'deny', not {default!r}")
        self.default = default

    def __repr__(self) -> str:
        return f"Policy({len(self.rules)} rules, default={self.default!r})"

    def _rule_decision(self, tool: str, scope: str | None, phase: Phase | None,
                       side_effect: bool, arguments: Mapping[str, Any]) -> PolicyDecision:
        for rule in self.rules:
            if not fnmatchcase(tool, rule.tool):
                continue
            if rule.scope is not None and (scope is None or not scope_matches(rule.scope, scope)):
                continue
            if rule.phases is not None and phase not in rule.phases:
                continue
            if rule.side_effect is not None and rule.side_effect != side_effect:
                continue
            if rule.when is not None:
                try:
                    hit = bool(rule.when(arguments))
                except Exception as exc:  # a broken predicate must not let a call through
                    return PolicyDecision(
                        "deny", rule.name,
                        f"rule {rule.name}'s condition raised {type(exc).__name__}: {exc}",
                    )
                if not hit:
                    continue
            return PolicyDecision(rule.action, rule.name,
                                  rule.reason or f"rule {rule.name} says {rule.action}",
                                  rule.approvers)
        return PolicyDecision(self.default, "default", f"no rule matched; default {self.default}")

    def decide(self, *, tool: str, scope: str | None, phase: Phase | None,
               side_effect: bool, arguments: Mapping[str, Any]) -> PolicyDecision:
        """The decision for one call: the first matching rule, raised to the phase floor."""
        decision = self._rule_decision(tool, scope, phase, side_effect, arguments)
        floor: PolicyDecision | None = None
        if side_effect and phase == "read":
            floor = PolicyDecision("deny", "phase:read",
                                   "phase read/classify: side-effecting tools do not run")
        elif side_effect and phase == "draft":
            floor = PolicyDecision("approve", "phase:draft",
                                   "phase draft/recommend: side effects need a human's approval")
        if floor is not None and _SEVERITY[floor.action] > _SEVERITY[decision.action]:
            return floor
        return decision


PHASE_ONLY = Policy()
"""The policy of a run given none: only the phase floor applies."""
