"""Notebook front ends: the only layer that imports ipywidgets, IPython.display and altair
(altair only when a chart is built).

>>> approver = WidgetApprover(by="ana")                       # doctest: +SKIP
>>> with al.record_run("triage", agent="bot", policy=policy, approver=approver) as run:
...     ...   # in a thread: each call that needs a human shows Approve / Reject / Edit here
"""

from agentlab.display._approval import (
    ApprovalInbox,
    ApprovalWidget,
    WidgetApprover,
    pending_approvals,
)
from agentlab.display._cell_run import CellRun
from agentlab.display._explorer import RunExplorer, explore
from agentlab.display._metrics_charts import HEADLINE_METRICS, metrics_chart, metrics_charts
from agentlab.display._timeline import timeline_chart
from agentlab.display._timeline_view import StaticTimeline, TimelineChart, save_timeline

__all__ = [
    "HEADLINE_METRICS",
    "ApprovalInbox",
    "ApprovalWidget",
    "CellRun",
    "RunExplorer",
    "StaticTimeline",
    "TimelineChart",
    "WidgetApprover",
    "explore",
    "metrics_chart",
    "metrics_charts",
    "pending_approvals",
    "save_timeline",
    "timeline_chart",
]
