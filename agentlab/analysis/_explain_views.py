"""Text and HTML views of an :class:`~agentlab.analysis.Explanation` (plain strings, no
third-party imports, so the CLI and a notebook show the same content)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agentlab.analysis._explain import Explanation
    from agentlab.model import Change

__all__ = ["explanation_html", "explanation_text"]


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _failed(ex: Explanation) -> bool:
    return ex.run.success is False or (ex.run.success is not True
                                       and ex.run.status in ("failed", "errored"))


def _culprits_heading(ex: Explanation) -> str:
    """What the first section answers: the cause of a failure, or, for a run that did not
    fail, what went wrong on the way (a successful run has no bad branch)."""
    if _failed(ex):
        return "Which step caused the failure (ranked culprits, with their evidence)"
    if ex.run.status == "running":
        return "The run has not ended: steps that went wrong so far, if any"
    return "The run did not fail: steps that went wrong on the way, if any"


def _change(ch: Change) -> str:
    """One state change with its values: ``change /plan: 'enterprise' -> 'standard'``."""
    if ch.op == "add":
        return f"add {ch.path} = {_short(ch.new, 40)}"
    if ch.op == "remove":
        return f"remove {ch.path} (was {_short(ch.old, 30)})"
    return f"change {ch.path}: {_short(ch.old, 30)} -> {_short(ch.new, 30)}"


def explanation_text(ex: Explanation) -> str:
    r = ex.run
    lines = [f"run {r.run_id}  {r.workflow}/{r.agent_name}  {r.status}"
             f"{'' if r.success is None else f' success={r.success}'}  task {r.task_id or '-'}"]
    if ex.counts is not None:
        lines.append(ex.counts.phrase())
    lines.append("")
    lines.append(f"1. {_culprits_heading(ex)}")
    if not ex.culprits:
        lines.append("   no candidate: no check found evidence against any step"
                     if _failed(ex) else "   none")
    for i, c in enumerate(ex.culprits, 1):
        who = f" by {c.agent}" if c.agent and c.agent != r.agent_name else ""
        where = f" ({c.source})" if c.source else ""
        lines.append(f"   #{i} seq {c.seq}{where} {c.kind} {c.name}{who}  score {c.score:g}")
        for ev in c.evidence:
            lines.append(f"        - [{ev.kind} +{ev.weight:g}] {_short(ev.detail, 110)}")
    if ex.sibling is not None and ex.sibling_run_id and ex.sibling.a_seq is None \
            and ex.sibling.b is None:
        lines.append(f"   compared with successful run {ex.sibling_run_id[:12]}: the same calls "
                     f"throughout; {len(ex.sibling.differing_results)} returned other results")
    elif ex.sibling is not None and ex.sibling_run_id:
        d = ex.sibling
        lines.append(f"   compared with successful run {ex.sibling_run_id[:12]}: they part at "
                     f"call #{d.index + 1} (seq {d.a_seq}): "
                     f"{d.a.name if d.a else '-'}({_short(d.a.arguments, 40) if d.a else ''}) "
                     f"vs {d.b.name if d.b else '-'}({_short(d.b.arguments, 40) if d.b else ''})")
    for note in ex.notes:
        lines.append(f"   note: {note}")
    lines.append("")
    lines.append("2. Which credential made each call")
    for call in ex.calls:
        how = call.denial or call.status
        extra = f"  {call.approval}" if call.approval else ""
        lines.append(f"   seq {call.seq:>4} {call.tool:<22} grant {call.grant or '-':<14} "
                     f"key {call.credential or '-':<16} rule {call.rule or '-'}  "
                     f"{_short(how, 50)}{extra}")
    lines.append("")
    lines.append("3. What state was carried (changes per checkpoint, with values)")
    if not ex.state:
        lines.append("   the run recorded no state checkpoints")
    for s in ex.state:
        lines.append(f"   seq {s.seq:>4} by {s.writer}: " + ("; ".join(
            _change(ch) for ch in s.changes[:4]) or "no change")
            + (f" (+{len(s.changes) - 4} more)" if len(s.changes) > 4 else ""))
    lines.append("")
    lines.append("4. Can it be replayed")
    if ex.replay is not None:
        lines.append(f"   {'yes' if ex.replay.ready else 'not safely'}: "
                     + "; ".join(ex.replay.reasons))
    lines.extend(f"   {line}" for line in _counterfactual_lines(ex))
    return "\n".join(lines)


def _counterfactual_lines(ex: Explanation) -> list[str]:
    cf = ex.counterfactual
    if cf is None:
        return []
    head = (f"counterfactuals: {len(cf.trials)} forks in {cf.seconds:.2f} s"
            + (" (budget exhausted)" if cf.exhausted else ""))
    if not cf.flipping:
        return [head + "; no single substitution flips the outcome"]
    return [head + "; these flip the outcome:"] + [
        f"  seq {t.seq} {t.name} answered from {t.source} (fork run {t.fork_run_id})"
        for t in cf.flipping]


def explanation_html(ex: Explanation) -> str:
    r = ex.run
    e = escape
    parts = [
        "<div class='agentlab-explain'>",
        f"<h3>Run {e(r.run_id[:12])}: {e(r.workflow)} / {e(r.agent_name)} — {e(r.status)}</h3>",
        f"<p>{e(ex.counts.phrase())}</p>" if ex.counts is not None else "",
        f"<h4>{e(_culprits_heading(ex))}</h4><ol>",
    ]
    for c in ex.culprits:
        items = "".join(f"<li><code>{e(ev.kind)}</code> +{ev.weight:g}: {e(ev.detail)}</li>"
                        for ev in c.evidence)
        parts.append(f"<li><b>seq {c.seq} {e(c.name)}</b> (score {c.score:g})<ul>{items}</ul></li>")
    parts.append("</ol><h4>Which credential made each call</h4><table><tr><th>seq</th>"
                 "<th>tool</th><th>grant</th><th>key</th><th>rule</th><th>approval</th>"
                 "<th>outcome</th></tr>")
    for call in ex.calls:
        parts.append(
            f"<tr><td>{call.seq}</td><td>{e(call.tool)}</td><td>{e(call.grant or '-')}</td>"
            f"<td><code>{e(call.credential or '-')}</code></td><td>{e(call.rule or '-')}</td>"
            f"<td>{e(call.approval or '')}</td><td>{e(call.denial or call.status)}</td></tr>")
    parts.append("</table><h4>What state was carried</h4><ul>")
    for s in ex.state:
        changes = "; ".join(f"<code>{e(_change(ch))}</code>" for ch in s.changes[:8])
        parts.append(f"<li>seq {s.seq} by {e(s.writer)}: {changes or 'no change'}</li>")
    parts.append("</ul><h4>Can it be replayed</h4>")
    if ex.replay is not None:
        parts.append(f"<p>{'Yes' if ex.replay.ready else 'Not safely'}: "
                     f"{e('; '.join(ex.replay.reasons))}</p>")
    cf_lines = _counterfactual_lines(ex)
    if cf_lines:
        parts.append(f"<p>{e(cf_lines[0])}</p><ul>"
                     + "".join(f"<li>{e(line.strip())}</li>" for line in cf_lines[1:]) + "</ul>")
    parts.append("</div>")
    return "".join(parts)
