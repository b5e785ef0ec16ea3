"""Training records before they are tokens: what the data steps and the loop agree on, without
importing torch (data preparation runs in an environment without it)."""

from __future__ import annotations

LEAD_IN = "lead_in"  # a record field: true on lead-in samples, which come first


def count_lead_in(records: list[dict]) -> int:
    """How many records at the start are lead-in samples; there are none after them."""
    n = 0
    while n < len(records) and records[n].get(LEAD_IN):
        n += 1
    if any(r.get(LEAD_IN) for r in records[n:]):
        raise ValueError("lead-in samples must all come before the other training samples")
    return n
