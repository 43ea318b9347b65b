"""The run explorer: a notebook widget to find a run, walk its steps, open one, see its
timeline, and put two runs side by side at their first divergence.

The page asks for what it shows, one bounded page at a time (custom widget messages
answered by :class:`~agentlab.display._explorer_pages.ExplorerPages`), so it stays quick
on a store of 100,000 runs and a run of 10,000 steps. Its front end (``explorer.js``,
``explorer.css``) ships in the package: no build step, nothing loaded from the network.

>>> explore()                                      # doctest: +SKIP
>>> explore(run_id="01a2", compare="01a3")         # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from agentlab.display._explorer_pages import ExplorerPages
from agentlab.errors import AgentlabError, ConfigError
from agentlab.store import SqlStore, open_store

__all__ = ["RunExplorer", "explore"]

_HERE = Path(__file__).parent


class RunExplorer(anywidget.AnyWidget):
    """The explorer over one store. Each message from the page is ``{"id", "type", ...}``
    and is answered with ``{"id", "type", "ok", "data"}`` (or ``"error"``: a message that
    says what was wrong)."""

    _esm = _HERE / "explorer.js"
    _css = _HERE / "explorer.css"

    run_id = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    """The run opened first (None: the run list alone)."""
    compare_id = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    """A second run to compare with ``run_id`` as soon as the page opens."""
    page_size = traitlets.Int(50).tag(sync=True)
    store_label = traitlets.Unicode("").tag(sync=True)

    def __init__(self, store: SqlStore, *, run_id: str | None = None,
                 compare: str | None = None, page_size: int = 50) -> None:
        if compare is not None and run_id is None:
            raise ConfigError("compare= needs run_id= too: the run to compare it with")
        run_id = store.resolve(run_id) if run_id is not None else None
        compare = store.resolve(compare) if compare is not None else None
        super().__init__(run_id=run_id, compare_id=compare, page_size=page_size,
                         store_label=repr(store))
        self._pages = ExplorerPages(store)
        self.on_msg(self._on_message)

    @property
    def pages(self) -> ExplorerPages:
        """What answers the page's requests (callable from Python too)."""
        return self._pages

    def _on_message(self, _widget: Any, content: Any, _buffers: Sequence[Any]) -> None:
        self.send(self.answer(content))

    def answer(self, content: Any) -> dict[str, Any]:
        """The reply to one request from the page."""
        if not isinstance(content, Mapping):
            return {"id": None, "ok": False, "error": f"not a request: {content!r}"}
        reply: dict[str, Any] = {"id": content.get("id"), "type": content.get("type")}
        try:
            reply.update(ok=True, data=self._pages.handle(content))
        except (AgentlabError, KeyError, ValueError, TypeError) as exc:
            reply.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        return reply

    def __repr__(self) -> str:
        return f"<RunExplorer {self.store_label}>"


def explore(store: SqlStore | str | os.PathLike[str] | None = None,
            run_id: str | None = None, *, compare: str | None = None) -> RunExplorer:
    """The run explorer over ``store`` (a store, a path or URL; default: the project's
    store as :func:`agentlab.open_store` finds it), opened on ``run_id`` and, with
    ``compare``, side by side with that run. Run ids may be unique prefixes.

    >>> explore("agentlab.db", "01a2", compare="01a3")        # doctest: +SKIP
    """
    if not isinstance(store, SqlStore):
        store = open_store(store, create=False)
    return RunExplorer(store, run_id=run_id, compare=compare)
