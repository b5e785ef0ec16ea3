"""Training records before they are tokens: what the data steps and the loop agree on, without
importing torch (data preparation runs in an environment without it)."""

from __future__ import annotations

STAGE = "stage"  # a record field: the index of its training stage (`ftdag.core.schedule.Stage`)


def stage_sizes(records: list[dict]) -> list[int]:
    """How many records each stage has: stage 0's come first, then stage 1's, and so on, as
    the loop trains on them. [] when the records have no stages (one plain stage)."""
    if not any(STAGE in r for r in records):
        return []
    sizes: list[int] = []
    for i, record in enumerate(records):
        stage = record.get(STAGE)
        if stage == len(sizes) - 1:
            sizes[-1] += 1
        elif stage == len(sizes):
            sizes.append(1)
        else:
            raise ValueError(
                f"record {i} is of stage {stage!r} after records of stage {len(sizes) - 1}: "
                "every record needs a stage, and stage k's records come after stage k-1's"
            )
    return sizes
