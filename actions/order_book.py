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


# Each status an order can have, with the fields its response `utter_order_<status>`
# (domain.yml) states besides the order number.
STATUS_FIELDS: dict[str, tuple[str, ...]] = {
    "processing": (),
    "shipped": ("carrier", "tracking_number"),
    "delivered": ("carrier",),
    "cancelled": (),
}


@dataclass(frozen=True)
class Order:
    order_id: str
    status: str
    carrier: str | None = None
    tracking_number: str | None = None

    def response(self) -> tuple[str, dict[str, str]]:
        """The domain response that says where the order is (`utter_order_<status>`, in the
        customer's language) and the values that fill its {order_id}, {carrier}, ... slots."""
        fields = STATUS_FIELDS.get(self.status)
        if fields is None:
            raise ValueError(f"order {self.order_id}: unknown status {self.status!r}")
        values = {"order_id": self.order_id}
        values.update((name, str(getattr(self, name))) for name in fields)
        return f"utter_order_{self.status}", values


def load_order_book(path: Path | None = None) -> dict[str, Order]:
    """Orders by number, read from `path`, `$KEFU_ORDER_BOOK` or `data/orders.yml`."""
    path = Path(path or os.environ.get(ORDER_BOOK_ENV) or DEFAULT_ORDER_BOOK)
    with path.open(encoding="utf-8") as handle:
        entries = yaml.safe_load(handle) or {}
    orders = {}
    for number, fields in (entries.get("orders") or {}).items():
        order = Order(order_id=str(number), **fields)
        order.response()  # fail at load time, naming the order, on an unknown status
        orders[order.order_id] = order
    return orders
