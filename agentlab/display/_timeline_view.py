"""How a timeline shows itself: interactive in a notebook with no network, static for CI.

A :class:`TimelineChart` wraps the altair chart. In a notebook it renders as HTML that
carries its own copy of Vega, Vega-Lite and vega-embed (from vl-convert, about 0.9 MB) and
its data, so tooltips work offline and without switching altair's global renderer (whose
default loads Vega from a CDN). :meth:`TimelineChart.static` gives the SVG or PNG form
for CI, nbval and exports; :meth:`TimelineChart.save` writes ``.html``, ``.svg`` or
``.png`` by extension.

The bundle runs inside a function of its own (its top-level names stay there; it only sets
``window.vegaEmbed``), so any number of charts live on one page.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agentlab.analysis import TimelineRow
from agentlab.model import RunCounts

if TYPE_CHECKING:
    import altair as alt

__all__ = [
    "StaticTimeline", "TimelineChart", "html_fragment", "save_timeline", "spec_to_png",
    "spec_to_svg",
]

StaticFormat = Literal["svg", "png"]

_EMBED_OPTIONS = {"mode": "vega-lite", "renderer": "svg", "actions": False,
                  "tooltip": {"theme": "light"}}
_serial = itertools.count(1)

_SCRIPT = """<script type="module">
(() => {{
{bundle}
}})();
(() => {{
  const agentlabId = {element_id};
  const agentlabSpec = {spec};
  const agentlabShow = (tries) => {{
    const el = document.getElementById(agentlabId);
    if (el === null || window.vegaEmbed === undefined) {{
      if (tries < 200) setTimeout(() => agentlabShow(tries + 1), 50);
      return;
    }}
    window.vegaEmbed(el, agentlabSpec, {options}).catch((err) => {{
      el.textContent = "The timeline could not be drawn: " + err;
    }});
  }};
  agentlabShow(0);
}})();
</script>"""

_PAGE = """<!DOCTYPE html>
<html>
<head><meta charset="UTF-8"><title>{title}</title></head>
<body>
{fragment}
</body>
</html>
"""


def _vl_version() -> str | None:
    """The Vega-Lite version altair writes specs for, if vl-convert has it (else its own)."""
    import altair as alt
    import vl_convert

    wanted = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return wanted if wanted in vl_convert.get_vegalite_versions() else None


@functools.cache
def _bundle() -> str:
    """Vega, Vega-Lite and vega-embed in one script with no imports (built once a process,
    about a second); it sets ``window.vegaEmbed``."""
    import vl_convert

    return vl_convert.javascript_bundle("window.vegaEmbed = vegaEmbed;",
                                        vl_version=_vl_version())


def _script_json(value: Any) -> str:
    # Inside <script>, "</script>" (or "<!--") in a summary would change how the page is
    # parsed: no "<" is left as it is (JSON reads "\u003c" back as "<").
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def html_fragment(spec: dict[str, Any]) -> str:
    """A ``<div>`` and the module script that draws ``spec`` into it, Vega inline."""
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode(),
                          usedforsecurity=False).hexdigest()[:12]
    element_id = f"agentlab-timeline-{digest}-{next(_serial)}"
    return (f'<div class="agentlab-timeline" id="{element_id}"></div>\n'
            + _SCRIPT.format(bundle=_bundle(), element_id=json.dumps(element_id),
                             spec=_script_json(spec), options=json.dumps(_EMBED_OPTIONS)))


def spec_to_svg(spec: dict[str, Any]) -> str:
    """SVG through vl-convert: no browser, and no data URL may be fetched."""
    import vl_convert

    svg: str = vl_convert.vegalite_to_svg(spec, vl_version=_vl_version(),
                                          allowed_base_urls=[])
    return svg


def spec_to_png(spec: dict[str, Any], scale: float = 1.0) -> bytes:
    """PNG through vl-convert, like :func:`spec_to_svg`."""
    import vl_convert

    png: bytes = vl_convert.vegalite_to_png(spec, vl_version=_vl_version(), scale=scale,
                                            allowed_base_urls=[])
    return png


def _save(spec: dict[str, Any], title: str, path: str | os.PathLike[str],
          scale: float) -> Path:
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in (".html", ".svg", ".png"):
        raise ValueError(f"a timeline is saved as .html, .svg or .png, not {out.name!r}; "
                         "rename the target")
    if suffix == ".html":
        from html import escape

        out.write_text(_PAGE.format(title=escape(title), fragment=html_fragment(spec)),
                       encoding="utf-8")
    elif suffix == ".svg":
        out.write_text(spec_to_svg(spec), encoding="utf-8")
    else:
        out.write_bytes(spec_to_png(spec, scale))
    return out


class StaticTimeline:
    """A timeline as one SVG or PNG image: what a notebook shows when its outputs must be
    stable (nbval) or viewable without JavaScript."""

    def __init__(self, data: str | bytes, fmt: StaticFormat, title: str) -> None:
        self.data = data
        self.format = fmt
        self.title = title

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None
                          ) -> dict[str, Any]:
        if isinstance(self.data, str):
            return {"image/svg+xml": self.data, "text/plain": repr(self)}
        return {"image/png": base64.b64encode(self.data).decode(), "text/plain": repr(self)}

    def __repr__(self) -> str:
        return f"<StaticTimeline {self.format}: {self.title}>"


class TimelineChart:
    """A run's timeline: the altair chart, its data, and the counts in its title.

    Shows itself as an interactive chart in a notebook (offline, tooltips on hover);
    ``static()`` for an image, ``save(path)`` for a file, ``chart`` for the altair object
    (to restyle or combine it), ``to_dict()`` for the Vega-Lite spec.
    """

    def __init__(self, chart: alt.LayerChart, *, rows: Sequence[TimelineRow],
                 values: list[dict[str, Any]], title: str, counts: RunCounts,
                 aggregated: bool) -> None:
        self.chart = chart
        self.rows = rows
        """The timeline rows drawn (before any aggregation)."""
        self.values = values
        """The chart's inline data: one dict a row (or a time bucket, when aggregated)."""
        self.title = title
        self.counts = counts
        self.aggregated = aggregated

    def __repr__(self) -> str:
        return f"<TimelineChart {self.title}>"

    def to_dict(self) -> dict[str, Any]:
        """The Vega-Lite spec, data inline."""
        spec: dict[str, Any] = self.chart.to_dict()
        return spec

    def to_html(self, *, full_page: bool = False) -> str:
        """HTML that draws the chart with no network: Vega and the data are inline, and no
        script, style or data is fetched from any URL. ``full_page`` wraps it in a document
        (what ``save("x.html")`` writes)."""
        fragment = html_fragment(self.to_dict())
        if not full_page:
            return fragment
        from html import escape

        return _PAGE.format(title=escape(self.title), fragment=fragment)

    def to_svg(self) -> str:
        """The chart as SVG, through vl-convert."""
        return spec_to_svg(self.to_dict())

    def to_png(self, *, scale: float = 1.0) -> bytes:
        """The chart as PNG, through vl-convert."""
        return spec_to_png(self.to_dict(), scale)

    def static(self, fmt: StaticFormat = "svg", *, scale: float = 1.0) -> StaticTimeline:
        """The chart as an image a notebook shows without JavaScript (stable for nbval)."""
        if fmt == "svg":
            return StaticTimeline(self.to_svg(), "svg", self.title)
        if fmt == "png":
            return StaticTimeline(self.to_png(scale=scale), "png", self.title)
        raise ValueError(f"a static timeline is 'svg' or 'png', not {fmt!r}")

    def save(self, path: str | os.PathLike[str], *, scale: float = 1.0) -> Path:
        """Write ``.html`` (interactive, self-contained), ``.svg`` or ``.png``, by the
        path's extension; returns the path written."""
        return _save(self.to_dict(), self.title, path, scale)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None
                          ) -> dict[str, Any]:
        return {"text/html": self.to_html(), "text/plain": repr(self)}


def save_timeline(chart: TimelineChart | alt.TopLevelMixin, path: str | os.PathLike[str],
                  *, scale: float = 1.0) -> Path:
    """Write a timeline (or any altair chart) to ``.html``, ``.svg`` or ``.png`` by the
    path's extension, offline: Vega inline, no data URL fetched, no browser. Returns the
    path written.

    >>> save_timeline(timeline_chart(events), "run.svg")     # doctest: +SKIP
    """
    if isinstance(chart, TimelineChart):
        return chart.save(path, scale=scale)
    spec: dict[str, Any] = chart.to_dict()
    title = spec.get("title")
    return _save(spec, title if isinstance(title, str) else "chart", path, scale)
