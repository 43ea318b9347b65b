"""Fixtures of the notebook views' tests: a recording stand-in for the kernel's comm."""

from __future__ import annotations

from typing import Any

import pytest


class FakeComm:
    """Stands in for a kernel comm: records what the widget sends, replays front-end messages."""

    def __init__(self, comm_id: str, data: dict[str, Any]) -> None:
        self.comm_id = comm_id
        self.opened = data
        self.sent: list[dict[str, Any]] = []
        self._handlers: list[Any] = []

    def on_msg(self, callback: Any) -> None:
        self._handlers.append(callback)

    def send(self, data: Any = None, metadata: Any = None, buffers: Any = None) -> None:
        self.sent.append(data)

    def close(self, *args: Any, **kwargs: Any) -> None:
        pass

    def from_frontend(self, data: dict[str, Any]) -> None:
        for handler in self._handlers:
            handler({"content": {"comm_id": self.comm_id, "data": data}, "buffers": []})


@pytest.fixture
def comms(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeComm]:
    """Every widget made in the test gets a :class:`FakeComm` (by its model id)."""
    opened: dict[str, FakeComm] = {}

    def create_comm(**kwargs: Any) -> FakeComm:
        fake = FakeComm(kwargs.get("comm_id") or f"comm-{len(opened)}", kwargs.get("data", {}))
        opened[fake.comm_id] = fake
        return fake

    import comm

    monkeypatch.setattr(comm, "create_comm", create_comm)
    return opened
