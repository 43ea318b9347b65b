"""Approval requests as notebook widgets: Approve, Reject or Edit a waiting tool call.

Every decision goes through :meth:`ApprovalManager.decide` with ``channel="widget"``, so a
widget is one front end among several (the CLI, the Python API): whichever decides first
wins, and a widget that comes second shows the refusal instead of its own outcome.

An agent that asks through :class:`WidgetApprover` must run off the cell's thread (a thread
started with ``contextvars.copy_context().run``): while a cell blocks, the kernel cannot
deliver the click. Asked from the kernel's own thread, the approver fails at once (the call
is denied with a message that shows the fix) instead of waiting, unanswerable, until the
request expires.
"""

from __future__ import annotations

import difflib
import getpass
import html
import json
import os
import threading
from typing import Any, Literal

import ipywidgets as widgets  # type: ignore[import-untyped]
from IPython import get_ipython
from IPython.display import display

from agentlab.approval import ApprovalManager
from agentlab.errors import AgentlabError, ApprovalError
from agentlab.identity import resolve_secret
from agentlab.model import ApprovalRequest
from agentlab.store import RunStore

__all__ = ["ApprovalInbox", "ApprovalWidget", "WidgetApprover", "pending_approvals"]

CHANNEL = "widget"
_RED = "#b42318"
_GREEN = "#067647"


def _default_decider(by: str | None) -> str:
    if by:
        return by
    env = os.environ.get("AGENTLAB_USER")
    if env:
        return env
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (some containers): the user types one
        return ""


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _line(text: str, color: str) -> str:
    return f'<span style="color:{color}">{html.escape(text)}</span>'


def _diff_html(original: dict[str, Any], edited_text: str) -> str:
    """A line diff of the edited arguments against the original ones (both pretty JSON
    when the edit parses, so layout changes alone show no difference)."""
    try:
        edited_lines = _pretty(json.loads(edited_text)).splitlines()
    except ValueError:
        edited_lines = edited_text.splitlines()
    lines = list(difflib.unified_diff(_pretty(original).splitlines(), edited_lines,
                                      "original", "edited", lineterm=""))
    if not lines:
        return "<i>no change from the original arguments yet</i>"
    shown = []
    for text in lines:
        if text.startswith(("+++", "---")):
            shown.append(_line(text, "#667085"))
        elif text.startswith("+"):
            shown.append(_line(text, _GREEN))
        elif text.startswith("-"):
            shown.append(_line(text, _RED))
        else:
            shown.append(html.escape(text))
    return "<pre style='margin:0'>" + "\n".join(shown) + "</pre>"


def _details_html(request: ApprovalRequest) -> str:
    rows = [("grant", request.grant), ("scope", request.scope), ("rule", request.rule),
            ("phase", request.phase),
            ("expires", f"{request.expires_at:%Y-%m-%d %H:%M:%S} UTC"),
            ("run", request.run_id), ("request", request.id)]
    cells = "".join(
        f"<tr><td style='padding-right:1em;color:#667085'>{name}</td>"
        f"<td><code>{html.escape(str(value)) if value is not None else '—'}</code></td></tr>"
        for name, value in rows
    )
    return (f"<b>Approval needed:</b> <code>{html.escape(request.tool)}</code>"
            f"<table style='margin:0.3em 0'>{cells}</table>"
            f"<pre style='margin:0'>{html.escape(_pretty(request.arguments))}</pre>")


class ApprovalWidget(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """One approval request with Approve, Reject and Edit buttons.

    ``key_from`` (env:VAR or file:PATH) is where the decider's approver key is read, for a
    decider the store holds a key for: each decision is signed with it.

    >>> ApprovalWidget(manager.pending()[0], manager, by="ana")   # doctest: +SKIP
    """

    def __init__(self, request: ApprovalRequest, manager: ApprovalManager, *,
                 by: str | None = None, key_from: str | None = None) -> None:
        self.request = request
        self.manager = manager
        self.key_from = key_from
        self.details = widgets.HTML(_details_html(request))
        self.decider = widgets.Text(value=_default_decider(by), description="Decide as")
        self.reason = widgets.Text(description="Reason",
                                   placeholder="why (required to reject)")
        self.approve_button = widgets.Button(description="Approve", button_style="success")
        self.reject_button = widgets.Button(description="Reject", button_style="danger")
        self.edit_button = widgets.Button(description="Edit", button_style="warning")
        self.edit_area = widgets.Textarea(value=_pretty(request.arguments),
                                          layout=widgets.Layout(width="100%", height="8em"))
        self.diff = widgets.HTML(_diff_html(request.arguments, self.edit_area.value))
        self.submit_button = widgets.Button(description="Submit edit",
                                            button_style="warning")
        self.edit_box = widgets.VBox([self.edit_area, self.diff, self.submit_button],
                                     layout=widgets.Layout(display="none"))
        self.message = widgets.HTML("")
        self.approve_button.on_click(lambda _b: self._decide("approve"))
        self.reject_button.on_click(lambda _b: self._decide("reject"))
        self.edit_button.on_click(lambda _b: self.show_edit())
        self.submit_button.on_click(lambda _b: self._submit_edit())
        self.edit_area.observe(self._on_edit_change, names="value")
        self.buttons = widgets.HBox([self.approve_button, self.reject_button, self.edit_button])
        super().__init__([
            self.details, self.decider, self.reason, self.buttons, self.edit_box,
            self.message,
        ])
        if request.status != "pending":
            self._finish(request)

    def __repr__(self) -> str:
        return f"<ApprovalWidget {self.request.id} {self.request.tool} {self.request.status}>"

    # -- actions ----------------------------------------------------------------------------

    def show_edit(self) -> None:
        """Reveal the arguments editor with its diff against the original."""
        self.edit_box.layout.display = ""

    def _on_edit_change(self, change: dict[str, Any]) -> None:
        self.diff.value = _diff_html(self.request.arguments, str(change["new"]))

    def _submit_edit(self) -> None:
        text = self.edit_area.value
        try:
            edited = json.loads(text)
        except ValueError as exc:
            self._error(f"the edited arguments are not valid JSON: {exc}; fix them and "
                        "submit again")
            return
        if not isinstance(edited, dict):
            self._error(f"the edited arguments must be a JSON object like "
                        f"{{\"name\": value}}, not {type(edited).__name__} {text.strip()[:60]}")
            return
        if edited == self.request.arguments:
            self._error("nothing was changed: edit the arguments first, or press Approve to "
                        "let the call run as the agent asked")
            return
        self._decide("edit", edited)

    def _decide(self, action: Literal["approve", "reject", "edit"],
                arguments: dict[str, Any] | None = None) -> None:
        by = self.decider.value.strip()
        reason = self.reason.value.strip() or None
        if not by:
            self._error("say who decides: type a name in 'Decide as'")
            return
        if action == "reject" and not reason:
            self._error("a rejection needs a reason: type it in 'Reason', then Reject")
            return
        try:
            key = resolve_secret(self.key_from) if self.key_from is not None else None
            decided = self.manager.decide(self.request.id, action, by=by, channel=CHANNEL,
                                          reason=reason, arguments=arguments, key=key)
        except AgentlabError as exc:  # ApprovalError above all: decided elsewhere, expired
            self._error(str(exc))
            try:
                latest = self.manager.get(self.request.id)
            except AgentlabError:
                return
            if latest.status != "pending":
                self._disable()
            return
        self._finish(decided)

    # -- display ----------------------------------------------------------------------------

    def _error(self, text: str) -> None:
        self.message.value = _line(text, _RED)

    def _disable(self) -> None:
        for control in (self.approve_button, self.reject_button, self.edit_button,
                        self.submit_button, self.decider, self.reason, self.edit_area):
            control.disabled = True
        # decided: the controls go, the outcome line below says what happened
        for box in (self.buttons, self.edit_box, self.decider, self.reason):
            box.layout.display = "none"

    def _finish(self, decided: ApprovalRequest) -> None:
        self.request = decided
        self._disable()
        text = f"{decided.status} by {decided.decided_by or 'nobody'}"
        if decided.channel:
            text += f" via {decided.channel}"
        if decided.reason:
            text += f": {decided.reason}"
        if decided.status == "edited" and decided.edited_arguments is not None:
            text += f"; the tool runs with {_pretty(decided.edited_arguments)}"
        color = _RED if decided.status in ("rejected", "expired") else _GREEN
        self.message.value = _line(text, color)


class WidgetApprover:
    """An :class:`~agentlab.approval.Approver` that shows each request as an
    :class:`ApprovalWidget` in the cell that created the approver.

    >>> approver = WidgetApprover(by="ana")                         # doctest: +SKIP
    >>> threading.Thread(target=contextvars.copy_context().run, args=(agent,)).start()
    """

    def __init__(self, *, by: str | None = None, show: bool = True,
                 key_from: str | None = None) -> None:
        self.by = by
        self.key_from = key_from
        self.container = widgets.VBox([])
        self._lock = threading.Lock()
        if show:  # else the caller places ``container`` (``%%agentlab record`` does)
            display(self.container)  # type: ignore[no-untyped-call]  # IPython: untyped

    def __repr__(self) -> str:
        return f"<WidgetApprover by={self.by!r} shown={len(self.container.children)}>"

    def __call__(self, request: ApprovalRequest, manager: ApprovalManager) -> None:
        if _blocks_the_kernel():
            raise ApprovalError(
                f"{request.tool} needs approval, but the agent runs on the notebook kernel's "
                "own thread: while this cell runs, the widget's click cannot reach the kernel, "
                "so nobody could approve. Run the agent in a thread: "
                "threading.Thread(target=contextvars.copy_context().run, args=(agent,))"
                ".start() (see docs/governance.md, 'Approving from a notebook')")
        widget = ApprovalWidget(request, manager, by=self.by, key_from=self.key_from)
        with self._lock:  # several agent threads may ask at once
            self.container.children = (*self.container.children, widget)


def _blocks_the_kernel() -> bool:
    """Whether this code runs on an IPython kernel's main thread (the one running cells)."""
    shell = get_ipython()
    return (shell is not None and getattr(shell, "kernel", None) is not None
            and threading.current_thread() is threading.main_thread())


def pending_approvals(store_or_manager: RunStore | ApprovalManager, *,
                      by: str | None = None, run_id: str | None = None,
                      key_from: str | None = None) -> widgets.VBox:
    """A widget for every pending request in the store, whichever process asked.

    >>> pending_approvals(al.open_store("agentlab.db"), by="ana")   # doctest: +SKIP
    """
    manager = (store_or_manager if isinstance(store_or_manager, ApprovalManager)
               else ApprovalManager(store_or_manager))
    pending = manager.pending(run_id=run_id)
    if not pending:
        return widgets.VBox([widgets.HTML("<i>no pending approvals</i>")])
    return widgets.VBox([ApprovalWidget(req, manager, by=by, key_from=key_from)
                         for req in pending])


class ApprovalInbox(widgets.VBox):  # type: ignore[misc]  # ipywidgets is untyped
    """The store's pending approvals as widgets, with new requests added as they arrive.

    Whichever process asked (an agent in a thread of this kernel, a worker elsewhere), a new
    pending request shows up within ``interval`` seconds; a decided one keeps its widget with
    the outcome. :meth:`stop` ends the watching (it also ends with the kernel).

    >>> inbox = ApprovalInbox(al.open_store("agentlab.db"), by="ana")   # doctest: +SKIP
    """

    def __init__(self, store_or_manager: RunStore | ApprovalManager, *,
                 by: str | None = None, run_id: str | None = None,
                 interval: float = 1.0, watch: bool = True,
                 key_from: str | None = None) -> None:
        self.manager = (store_or_manager if isinstance(store_or_manager, ApprovalManager)
                        else ApprovalManager(store_or_manager))
        self.by = by
        self.key_from = key_from
        self.run_id = run_id
        self.interval = interval
        self.widgets: dict[str, ApprovalWidget] = {}
        self._empty = widgets.HTML("<i>no pending approvals</i>")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        super().__init__([self._empty])
        self.refresh()
        if watch:
            self._thread = threading.Thread(target=self._watch, daemon=True,
                                            name="agentlab-approval-inbox")
            self._thread.start()

    def __repr__(self) -> str:
        return f"<ApprovalInbox {len(self.widgets)} request(s) shown>"

    def refresh(self) -> list[ApprovalWidget]:
        """Add a widget for each pending request not shown yet; the widgets added."""
        added = [ApprovalWidget(request, self.manager, by=self.by, key_from=self.key_from)
                 for request in self.manager.pending(run_id=self.run_id)
                 if request.id not in self.widgets]
        if added:
            self.widgets.update((w.request.id, w) for w in added)
            self.children = tuple(self.widgets.values())
        return added

    def stop(self) -> None:
        """Stop watching for new requests (the widgets shown stay usable)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception as exc:  # the store went away: say so here, stop watching
                self.children = (*self.children,
                                 widgets.HTML(_line(f"stopped watching: {exc}", _RED)))
                return
