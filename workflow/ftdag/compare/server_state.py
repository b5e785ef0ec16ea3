"""What ftdag's local OpenAI-compatible server (server.py) remembers, kept in its state directory
so that a restarted server answers as the stopped one did:

- state.json: the files, jobs and fine-tuned models, one document rewritten atomically on every
  change (ftdag.core.io.write_json), so that a job and the model it produced never disagree on
  disk and a crash never leaves half a document;
- files/<id>: an uploaded file's bytes, written atomically before its record names it;
- events/<job id>.jsonl: a job's events, appended (an atomic rewrite per event would cost
  quadratic time over a long job's steps); a line torn by a crash is skipped when read;
- .lock: an flock held while a server runs, so that two servers never share a directory.

Records are kept exactly as the API returns them (OpenAI's shapes), with no private fields.
"""

from __future__ import annotations

import copy
import fcntl
import json
import secrets
import threading
import time
from pathlib import Path

from ftdag.core.io import atomic_path, write_json

TERMINAL = ("succeeded", "failed", "cancelled")
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data")


class ApiError(Exception):
    """An answer in OpenAI's error shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict:
        error = {"message": self.message, "type": self.type, "param": self.param}
        return {"error": {**error, "code": self.code}}


class StoreClosed(RuntimeError):
    """The server stopped: what a late thread would write belongs to the next server."""


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def now() -> int:
    return int(time.time())


class Store:
    """Files, jobs, events and fine-tuned models, thread-safe; returned records are copies."""

    def __init__(self, state_dir):
        self.dir = Path(state_dir)
        (self.dir / "files").mkdir(parents=True, exist_ok=True)
        (self.dir / "events").mkdir(exist_ok=True)
        self._lock_file = open(self.dir / ".lock", "a")  # noqa: SIM115 (held until close())
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise RuntimeError(f"another server is using the state directory {self.dir}") from None
        self._lock = threading.RLock()
        self.closed = False
        path = self.dir / "state.json"
        state = json.loads(path.read_text()) if path.exists() else {}
        # Lists on disk, dicts in memory: write_json sorts keys, and the order is the API's.
        self._files = {r["id"]: r for r in state.get("files", [])}
        self._jobs = {r["id"]: r for r in state.get("jobs", [])}
        self._models = {r["id"]: r for r in state.get("models", [])}

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self._lock_file.close()  # releases the flock

    def _save(self) -> None:
        if self.closed:
            raise StoreClosed("the server has stopped")
        state = {name: list(records.values()) for name, records in self._collections()}
        write_json(self.dir / "state.json", state)

    def _collections(self):
        return (("files", self._files), ("jobs", self._jobs), ("models", self._models))

    # Files.

    def add_file(self, filename: str, purpose: str, data: bytes) -> dict:
        record = {
            "id": new_id("file"),
            "object": "file",
            "bytes": len(data),
            "created_at": now(),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "status_details": None,
            "expires_at": None,
        }
        with atomic_path(self.file_path(record["id"])) as tmp:
            tmp.write_bytes(data)
        with self._lock:
            self._files[record["id"]] = record
            self._save()
        return dict(record)

    def file(self, file_id: str) -> dict:
        with self._lock:
            if file_id not in self._files:
                raise ApiError(404, f"No such File object: {file_id}", param="id")
            return dict(self._files[file_id])

    def file_path(self, file_id: str) -> Path:
        return self.dir / "files" / file_id

    def files(self) -> list[dict]:
        """Oldest first."""
        with self._lock:
            return [dict(r) for r in self._files.values()]

    # Models (fine-tuned ones; base models come from the backends).

    def models(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._models.values()]

    # Jobs.

    def add_job(self, job: dict) -> dict:
        with self._lock:
            self._jobs[job["id"]] = copy.deepcopy(job)
            self._save()
        return copy.deepcopy(job)

    def job(self, job_id: str) -> dict:
        with self._lock:
            if job_id not in self._jobs:
                message = f"Could not find fine-tuning job {job_id}"
                raise ApiError(404, message, param="fine_tune_id", code="fine_tune_not_found")
            return copy.deepcopy(self._jobs[job_id])

    def jobs(self) -> list[dict]:
        """Oldest first."""
        with self._lock:
            return [copy.deepcopy(r) for r in self._jobs.values()]

    def update_job(self, job_id: str, model: dict | None = None, **changes) -> dict | None:
        """Apply `changes` (and register `model`) unless the job has ended meanwhile (a cancel
        from another thread wins over the runner's late news); None then."""
        with self._lock:
            job = self._jobs[job_id]
            if job["status"] in TERMINAL:
                return None
            job.update(changes)
            if model is not None:
                self._models[model["id"]] = model
            self._save()
            return copy.deepcopy(job)

    # Events.

    def _events_path(self, job_id: str) -> Path:
        return self.dir / "events" / f"{job_id}.jsonl"

    def add_event(
        self, job_id: str, message: str, level: str = "info", type: str = "message", data=None
    ) -> dict:
        event = {
            "id": new_id("ftevent"),
            "object": "fine_tuning.job.event",
            "created_at": now(),
            "level": level,
            "message": message,
            "type": type,
            "data": data if data is not None else {},
        }
        line = json.dumps(event) + "\n"
        with self._lock:
            if self.closed:
                raise StoreClosed("the server has stopped")
            with open(self._events_path(job_id), "a") as f:
                f.write(line)
        return event

    def events(self, job_id: str) -> list[dict]:
        """Oldest first; a line torn by a crash while it was appended is skipped."""
        self.job(job_id)  # 404 for an unknown job
        path = self._events_path(job_id)
        if not path.exists():
            return []
        events = []
        with self._lock, open(path) as f:
            for line in f:
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return events
