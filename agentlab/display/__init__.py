"""Notebook front ends: the only layer that imports ipywidgets and IPython.display.

>>> approver = WidgetApprover(by="ana")                       # doctest: +SKIP
>>> with al.record_run("triage", agent="bot", policy=policy, approver=approver) as run:
...     ...   # in a thread: each call that needs a human shows Approve / Reject / Edit here
"""

from agentlab.display._approval import ApprovalWidget, WidgetApprover, pending_approvals

__all__ = ["ApprovalWidget", "WidgetApprover", "pending_approvals"]
