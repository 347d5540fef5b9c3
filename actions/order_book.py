"""The shop's orders, as the order-status action sees them.

A real shop points `KEFU_ORDER_BOOK` at an export of its order system; the
project ships `data/orders.yml` so the assistant can be tried end to end.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.text import DEFAULT_ORDER_ID_PATTERN

ORDER_BOOK_ENV = "KEFU_ORDER_BOOK"
DEFAULT_ORDER_BOOK = Path(__file__).resolve().parent.parent / "data" / "orders.yml"

# Order numbers have 5 to 8 digits and may be written with a leading "#": the same
# pattern the corpus pipeline masks as [ORDER_ID].
ORDER_ID_PATTERN = re.compile(DEFAULT_ORDER_ID_PATTERN)


def parse_order_id(text: Any) -> str | None:
    """The order number in `text` without its "#", or None if there is none."""
    if isinstance(text, list):
        text = " ".join(str(part) for part in text)
    if not isinstance(text, str):
        return None
    match = ORDER_ID_PATTERN.search(text)
    return match.group(0).lstrip("#") if match else None


@dataclass(frozen=True)
class Order:
    order_id: str
    status: str
    carrier: str | None = None
    tracking_number: str | None = None

    def describe(self) -> str:
        if self.status == "processing":
            return (
                f"Order {self.order_id} is being prepared and will ship within 24 hours "
                "on a business day. Until then you can still cancel it or change the address."
            )
        if self.status == "shipped":
            return (
                f"Order {self.order_id} has shipped with {self.carrier} and is on its way "
                f"(tracking number {self.tracking_number}). Standard delivery takes "
                "3-5 business days, express 1-2."
            )
        if self.status == "delivered":
            return (
                f"Order {self.order_id} was delivered by {self.carrier}. If you can't find "
                "it, please check with neighbours or ask me for a human agent."
            )
        if self.status == "cancelled":
            return (
                f"Order {self.order_id} was cancelled. If you paid for it, the refund goes "
                "back to your original payment method within 5-7 business days."
            )
        raise ValueError(f"order {self.order_id}: unknown status {self.status!r}")


def load_order_book(path: Path | None = None) -> dict[str, Order]:
    """Orders by number, read from `path`, `$KEFU_ORDER_BOOK` or `data/orders.yml`."""
    path = Path(path or os.environ.get(ORDER_BOOK_ENV) or DEFAULT_ORDER_BOOK)
    with path.open(encoding="utf-8") as handle:
        entries = yaml.safe_load(handle) or {}
    orders = {}
    for number, fields in (entries.get("orders") or {}).items():
        order = Order(order_id=str(number), **fields)
        order.describe()  # fail at load time, naming the order, on an unknown status
        orders[order.order_id] = order
    return orders
