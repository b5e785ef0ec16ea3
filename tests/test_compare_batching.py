"""Dynamic batching of concurrent requests (ftdag.compare.batching)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ftdag.compare.batching import GatheredCalls


class SlowModel:
    """Answers items in batches, taking a fixed time per batch; records what it ran."""

    def __init__(self, seconds=0.05):
        self.seconds, self.batches, self.running = seconds, [], 0
        self.lock = threading.Lock()
        self.overlapped = False

    def __call__(self, key, items):
        with self.lock:
            self.running += 1
            self.overlapped |= self.running > 1
        time.sleep(self.seconds)
        self.batches.append((key, list(items)))
        with self.lock:
            self.running -= 1
        return [f"{key}:{item}" for item in items]


def test_a_lone_call_runs_at_once_as_a_batch_of_one():
    model = SlowModel(0.0)
    gather = GatheredCalls(model)
    assert gather("k", 1) == "k:1"
    assert gather.batch_sizes == [1]


def test_concurrent_calls_are_batched_each_getting_its_own_answer():
    model = SlowModel()
    gather = GatheredCalls(model, max_batch=32)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: gather("k", i), range(40)))
    assert results == [f"k:{i}" for i in range(40)]
    assert sum(gather.batch_sizes) == 40
    assert max(gather.batch_sizes) > 1  # requests waiting on a busy model ran together
    assert len(gather.batch_sizes) < 40
    assert not model.overlapped  # never two batches at once


def test_batches_never_exceed_the_limit_nor_mix_keys():
    model = SlowModel()
    gather = GatheredCalls(model, max_batch=3)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: gather(i % 2, i), range(30)))
    assert results == [f"{i % 2}:{i}" for i in range(30)]
    assert max(gather.batch_sizes) <= 3
    for key, items in model.batches:
        assert all(item % 2 == key for item in items)


def test_a_failing_batch_fails_every_call_in_it_and_the_next_ones_still_run():
    calls = {"n": 0}

    def flaky(key, items):
        calls["n"] += 1
        time.sleep(0.02)
        if calls["n"] == 1:
            raise RuntimeError("out of memory")
        return list(items)

    gather = GatheredCalls(flaky)
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(gather, "k", i) for i in range(6)]
    outcomes = [f.exception() or f.result() for f in futures]
    failed = [o for o in outcomes if isinstance(o, RuntimeError)]
    assert len(failed) == gather.batch_sizes[0]  # the whole first batch, nobody else
    assert [o for o in outcomes if not isinstance(o, RuntimeError)] == [
        i for i, o in enumerate(outcomes) if not isinstance(o, RuntimeError)
    ]


def test_a_run_returning_the_wrong_number_of_results_is_an_error():
    gather = GatheredCalls(lambda key, items: [])
    with pytest.raises(RuntimeError, match="0 results for a batch of 1"):
        gather("k", 1)


def test_max_batch_must_be_positive():
    with pytest.raises(ValueError, match="max_batch"):
        GatheredCalls(lambda key, items: items, max_batch=0)
