"""The price table for LLM calls: USD per million input and output tokens.

A cost the provider reports always wins (``cost_source="provider"``); otherwise the table
gives it (``"price_table"``); a model missing from the table records no cost
(``"unknown"``), never a guess. Override or extend with :func:`set_prices`, or per run with
``record_run(prices=...)``. Figures are list prices as published by the providers and
change over time: teams should pin their own. A per-run table is layered over the
process-wide one.
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Mapping
from typing import Literal

__all__ = ["DEFAULT_PRICES", "Price", "price_call", "set_prices"]

Price = tuple[float, float]
"""(USD per 1M input tokens, USD per 1M output tokens)."""

DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "scripted-policy": (0.0, 0.0),
}

_prices: dict[str, Price] = dict(DEFAULT_PRICES)


def set_prices(prices: Mapping[str, Price], *, replace: bool = False) -> None:
    """Add or change entries of the process-wide price table (``replace`` drops the rest)."""
    for model, price in prices.items():
        if len(price) != 2 or any(p < 0 for p in price):
            raise ValueError(
                f"price for {model!r} must be (input_usd_per_1M, output_usd_per_1M) >= 0, "
                f"not {price!r}"
            )
    if replace:
        _prices.clear()
    _prices.update(prices)


_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


def _lookup(model: str, table: Mapping[str, Price]) -> Price | None:
    if model in table:
        return table[model]
    # A dated snapshot ("gpt-4o-2024-08-06", "-20241022", "-latest") has its family's price;
    # any other variant ("gpt-4.1-nano") is a different model, priced only if listed.
    family = _SNAPSHOT.sub("", model)
    return table.get(family) if family != model else None


def price_call(
    model: str,
    input_tokens: int | None,
    output_tokens: int | None,
    reported_usd: float | None,
    table: Mapping[str, Price] | None = None,
) -> tuple[float | None, Literal["provider", "price_table", "unknown"]]:
    """The call's cost in USD and where the figure came from."""
    if reported_usd is not None:
        return float(reported_usd), "provider"
    price = _lookup(model, ChainMap(dict(table), _prices) if table is not None else _prices)
    if price is None or (input_tokens is None and output_tokens is None):
        return None, "unknown"
    cost = ((input_tokens or 0) * price[0] + (output_tokens or 0) * price[1]) / 1_000_000
    return cost, "price_table"
