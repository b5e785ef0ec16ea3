"""The backends of ftdag's local OpenAI-compatible server (server.py), and its fine-tuning jobs.

A job goes validating_files → queued → running → succeeded / failed / cancelled, as OpenAI's
do. Files are validated in a short thread per job; jobs then train one at a time in one worker
thread, in the order they were queued: a local machine has one accelerator to train on, and a
second job waits, "queued", as it would at OpenAI.

A fine-tune backend learns that its job was cancelled, or that the server is stopping, when its
`report` raises JobInterrupted; it should let it propagate. A job the server stopped stays
"running" on disk and is resumed when a server starts on the same state directory: the backend
is called again with the same job (same id), so a backend that checkpoints under the job's id
continues where it stopped. A backend that never reports is not interrupted: the server stops
without it, and a result it returns later is dropped (the next server runs the job again).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ftdag.compare.server_state import TERMINAL, ApiError, Store, StoreClosed, now

log = logging.getLogger(__name__)

EVENT_LEVELS = ("info", "warn", "error")
EVENT_TYPES = ("message", "metrics")


class JobInterrupted(Exception):
    """Raised by `report`: the job was cancelled or the server is stopping."""


@dataclass(frozen=True)
class Backends:
    """What answers behind the API: plain callables, so that tests plug in trivial ones.

    chat(model, messages, settings) -> str, or a mapping with "content" and optionally
        "prompt_tokens", "completion_tokens" (else estimated) and "finish_reason" ("stop");
        settings are the request's other fields (temperature, max_tokens, seed, ...).
    fine_tune(job, training_path, validation_path or None, report) -> the new model's id (see
        fine_tuned_model_id), or a mapping with "fine_tuned_model" and "trained_tokens";
        report(message, level="info", type="message", data=None) adds a job event.
    base_models: the models that answer chats and can be fine-tuned, besides fine-tuned ones.
    """

    chat: Callable | None = None
    fine_tune: Callable | None = None
    base_models: tuple[str, ...] = ()

    @classmethod
    def coerce(cls, value) -> Backends:
        if isinstance(value, cls):
            return value
        if isinstance(value, Mapping):
            value = dict(value)
            value["base_models"] = tuple(value.get("base_models", ()))
            return cls(**value)
        raise TypeError(f"backends must be a Backends or a mapping, not {type(value).__name__}")


def fine_tuned_model_id(job: dict, organization: str = "ftdag") -> str:
    """OpenAI's form, ft:<base>:<organization>:<suffix>:<id>, the id from the job's: a resumed
    job names the same model."""
    suffix = job.get("user_provided_suffix") or ""
    return f"ft:{job['model']}:{organization}:{suffix}:{job['id'][-8:]}"


def training_file_problem(path: Path) -> str | None:
    """A light check, every line a JSON object with a "messages" list: ftdag's thorough one
    (compare.chat_format) runs before upload, and a server must not depend on the family."""
    count = 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                return f"line {number} is not JSON"
            if not isinstance(record, dict) or not isinstance(record.get("messages"), list):
                return f'line {number} is not an object with a "messages" list'
            count += 1
    return None if count else "the file holds no examples"


class JobRunner:
    def __init__(self, store: Store, backends: Backends, organization_id: str):
        self.store = store
        self.backends = backends
        self.organization_id = organization_id
        self.stopping = threading.Event()
        self._queue: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._worker = threading.Thread(target=self._work, name="ftdag-fine-tune", daemon=True)

    def start(self) -> None:
        """Resume the jobs a stopped server left unfinished, oldest first, then start working."""
        for job in self.store.jobs():
            if job["status"] in TERMINAL:
                continue
            self.store.add_event(job["id"], "The server restarted; the job is resumed")
            if job["status"] == "validating_files":
                self.submit(job["id"])
            else:
                self.store.update_job(job["id"], status="queued")
                self._queue.put(job["id"])
        self._worker.start()

    def submit(self, job_id: str) -> None:
        thread = threading.Thread(target=self._guard, args=(self._validate, job_id), daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self, timeout: float) -> None:
        self.stopping.set()
        self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in [self._worker, *self._threads]:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    def cancel(self, job_id: str) -> dict:
        status = self.store.job(job_id)["status"]  # 404 first
        job = self.store.update_job(job_id, status="cancelled", finished_at=now())
        if job is None:
            message = f"Job {job_id} has already {status}; it cannot be cancelled"
            raise ApiError(400, message, param="fine_tuning_job_id")
        self.store.add_event(job_id, "Fine-tuning job cancelled")
        return job

    def _guard(self, function, job_id: str) -> None:
        try:
            function(job_id)
        except StoreClosed:
            pass  # stopped meanwhile; the next server resumes the job
        except Exception:
            log.exception("fine-tuning job %s", job_id)

    def _validate(self, job_id: str) -> None:
        job = self.store.job(job_id)
        self.store.add_event(job_id, f"Validating training file: {job['training_file']}")
        for param in ("training_file", "validation_file"):
            if job[param] is None:
                continue
            problem = training_file_problem(self.store.file_path(job[param]))
            if problem is not None:
                message = f"Invalid {param.replace('_', ' ')} {job[param]}: {problem}"
                self._fail(job_id, f"invalid_{param}", message, param)
                return
        if self.stopping.is_set() or self.store.update_job(job_id, status="queued") is None:
            return
        self.store.add_event(job_id, "Files validated, moving job to queued state")
        self._queue.put(job_id)

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None or self.stopping.is_set():
                return
            self._guard(self._run, job_id)

    def _run(self, job_id: str) -> None:
        job = self.store.update_job(job_id, status="running")
        if job is None:
            return  # cancelled while queued
        self.store.add_event(job_id, "Fine-tuning job started")
        training = self.store.file_path(job["training_file"])
        validation = job["validation_file"] and self.store.file_path(job["validation_file"])
        try:
            result = self.backends.fine_tune(job, training, validation, self._reporter(job_id))
        except JobInterrupted:
            return  # a cancel is recorded already; a stopped job stays running, to resume
        except Exception as error:
            if self.stopping.is_set():
                return  # likely the shutdown's doing: the next server runs it again
            log.exception("fine-tune backend, job %s", job_id)
            self._fail(job_id, "training_failed", f"{type(error).__name__}: {error}")
            return
        self._succeed(job_id, result)

    def _succeed(self, job_id: str, result) -> None:
        tokens = None
        if isinstance(result, Mapping):
            result, tokens = result.get("fine_tuned_model"), result.get("trained_tokens")
        if not isinstance(result, str) or not result:
            message = f"the fine-tune backend returned no model id (got {result!r})"
            self._fail(job_id, "training_failed", message)
            return
        owner = self.organization_id
        model = {"id": result, "object": "model", "created": now(), "owned_by": owner}
        self.store.add_event(job_id, f"New fine-tuned model created: {result}")
        changes = {"fine_tuned_model": result, "finished_at": now(), "trained_tokens": tokens}
        if self.store.update_job(job_id, model=model, status="succeeded", **changes) is None:
            self.store.add_event(job_id, "The job ended before training did; its model is dropped")
            return
        self.store.add_event(job_id, "The job has successfully completed")

    def _fail(self, job_id: str, code: str, message: str, param: str | None = None) -> None:
        self.store.add_event(job_id, message, level="error")
        error = {"code": code, "message": message, "param": param}
        self.store.update_job(job_id, status="failed", finished_at=now(), error=error)

    def _reporter(self, job_id: str) -> Callable:
        def report(message, level="info", type="message", data=None) -> None:
            if self.stopping.is_set():
                raise JobInterrupted("the server is stopping")
            if self.store.job(job_id)["status"] == "cancelled":
                raise JobInterrupted("the job was cancelled")
            if level not in EVENT_LEVELS or type not in EVENT_TYPES:
                raise ValueError(
                    f"an event's level is one of {EVENT_LEVELS}, its type one of "
                    f"{EVENT_TYPES}; got {level!r}, {type!r}"
                )
            self.store.add_event(job_id, str(message), level=level, type=type, data=data)

        return report
