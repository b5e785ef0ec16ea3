"""Dynamic batching for a model that answers one request per HTTP thread: requests that arrive
while the model is busy wait, and the next one to get the model answers all of them (up to a
batch size) in one batch. No timer: a lone request runs at once, and under load the batch grows
by itself, as in serving engines that batch continuously.

    gather = GatheredCalls(lambda key, items: model.answer_batch(key, items), max_batch=32)
    text = gather(("prompt", 8), image)   # from any number of threads

Only calls with the same key (e.g. prompt and generation settings) are batched together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class _Call:
    key: Hashable
    item: Any
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


class GatheredCalls:
    """`run(key, items) -> results` (one per item, in order) called for batches of concurrent
    calls with the same key; never two runs at once."""

    def __init__(self, run: Callable[[Hashable, Sequence], Sequence], max_batch: int = 32):
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self._run, self.max_batch = run, max_batch
        self._queue: list[_Call] = []
        self._queue_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self.batch_sizes: list[int] = []  # every batch run, for measurements and tests

    def __call__(self, key: Hashable, item):
        call = _Call(key, item)
        with self._queue_lock:
            self._queue.append(call)
        with self._model_lock:
            if not call.done.is_set():  # nobody took it into their batch while we waited
                self._run_batch(self._take_batch(call))
        if call.error is not None:
            raise call.error
        return call.result

    def _take_batch(self, own: _Call) -> list[_Call]:
        """`own` and the oldest waiting calls with its key, removed from the queue."""
        with self._queue_lock:
            same = [c for c in self._queue if c.key == own.key and c is not own]
            batch = [own, *same[: self.max_batch - 1]]
            taken = set(map(id, batch))
            self._queue = [c for c in self._queue if id(c) not in taken]
        return batch

    def _run_batch(self, batch: list[_Call]) -> None:
        self.batch_sizes.append(len(batch))
        try:
            results = list(self._run(batch[0].key, [c.item for c in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for a batch of {len(batch)}")
            for call, result in zip(batch, results, strict=True):
                call.result = result
        except BaseException as error:  # every caller in the batch sees the failure
            for call in batch:
                call.error = error
        finally:
            for call in batch:
                call.done.set()
