"""The API fine-tune of the compare family, through an OpenAI-compatible fine-tuning API, never
paid twice.

`run_fine_tune` uploads the training and validation files, creates one supervised job, waits
for it and returns the state: the file ids, the job id, the fine-tuned model's id, trained
tokens and the final status. Each step is recorded in a JSON state file (written atomically,
never holding the API key) before the next one starts, so that a rerun after a kill resumes:

- a state naming a job resumes polling it: no upload, no new job;
- a job created by a run killed before it wrote the job's id is found again, by the run's hash
  in the job's metadata (`ftdag_run`) or in its suffix, before any new job is created;
- the create is sent once, without the client's retries: the `openai` client retries a POST
  without an idempotency key, so a create that timed out, but reached the API, would be sent
  again and make a second paid job. After a timeout, a lost connection or a 5xx, the job is
  looked for (for `settle_seconds`, as a stalled request may still land) before trying again;
- a failed or cancelled job raises FineTuneError, and the state keeps it: every rerun raises the
  same error, rather than silently paying for a new job, until the state file is deleted.

Polls, uploads and look-ups survive transient errors (429, 5xx, timeouts) with backoff.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from functools import partial
from pathlib import Path

import openai

from ftdag.core.io import write_json

log = logging.getLogger(__name__)

RUN_KEY = "ftdag_run"  # the metadata key naming the run that created a job
HYPERPARAMETERS = ("n_epochs", "batch_size", "learning_rate_multiplier")
TERMINAL = ("succeeded", "failed", "cancelled")
MAX_SUFFIX = 64  # OpenAI's limit on a job's suffix
MAX_BACKOFF = 60.0  # seconds; a longer outage is waited out 60 s at a time
RETRIES = 8  # transient failures in a row tolerated by an upload or a look-up


class FineTuneError(RuntimeError):
    """The job failed or was cancelled at the API; its state file keeps it."""


def run_fine_tune(
    client,
    training_path,
    validation_path,
    settings: dict,
    run_hash: str,
    state_path,
    poll_seconds: float = 30.0,
    timeout: float | None = 48 * 3600.0,
    progress: bool = True,
    *,
    retry_seconds: float = 1.0,
    settle_seconds: float = 120.0,
    create_attempts: int = 4,
) -> dict:
    """Fine-tune `settings["model"]` on the files and return the final state (see the module).

    settings: "model", optionally "n_epochs", "batch_size", "learning_rate_multiplier" (absent
    or None: "auto"), "seed", "suffix" (default "ftdag"; the run's hash is appended). timeout:
    seconds to wait for the job (None: no limit); on TimeoutError the job goes on at the API and
    a rerun resumes waiting. retry_seconds: the first backoff after a transient error.
    """
    state_path = Path(state_path)
    state = read_state(state_path, run_hash)
    if state.get("status") == "succeeded" and state.get("fine_tuned_model"):
        return state  # done before: nothing to ask the API
    if not state.get("job_id"):
        if not state.get("training_file"):
            state.update(upload_files(client, training_path, validation_path, retry_seconds))
            write_json(state_path, state)  # a rerun reuses the uploads
        suffix = job_suffix(settings, run_hash)
        job = find_job(client, run_hash, suffix, retry_seconds)
        if job is None:
            request = job_request(state, settings, run_hash, suffix)
            pacing = {"retry": retry_seconds, "settle": settle_seconds, "poll": poll_seconds}
            job = create_job(client, request, run_hash, suffix, create_attempts, pacing)
        state.update(job_id=job.id, status=job.status)
        write_json(state_path, state)  # before waiting: a kill from here on resumes this job
    return wait_for_job(client, state, state_path, poll_seconds, timeout, progress, retry_seconds)


def read_state(state_path: Path, run_hash: str) -> dict:
    """The state a previous run left, or a new one; a state of another run is an error, as
    resuming its job would return a model trained with other data or settings."""
    if not state_path.exists():
        return {"run_hash": run_hash}
    state = json.loads(state_path.read_text())
    if state.get("run_hash") != run_hash:
        raise ValueError(
            f"{state_path} is the state of run {state.get('run_hash')!r}, not {run_hash!r}: "
            "delete it to start this run (its job, if any, stays at the API)"
        )
    return state


def job_suffix(settings: dict, run_hash: str) -> str:
    """The model's suffix, ending in (part of) the run's hash: a second way to find the job,
    should an API not keep or filter metadata."""
    tag = run_hash[:16]
    base = str(settings.get("suffix") or "ftdag")[: MAX_SUFFIX - len(tag) - 1]
    return f"{base}-{tag}"


def job_request(state: dict, settings: dict, run_hash: str, suffix: str) -> dict:
    """The create's arguments: the supervised method with the given hyperparameters."""
    if not settings.get("model"):
        raise ValueError("settings name no base model ('model')")
    given = {k: settings[k] for k in HYPERPARAMETERS if settings.get(k) is not None}
    request = {
        "model": settings["model"],
        "training_file": state["training_file"],
        "method": {"type": "supervised", "supervised": {"hyperparameters": given}},
        "suffix": suffix,
        "metadata": {RUN_KEY: run_hash},
    }
    if state.get("validation_file"):
        request["validation_file"] = state["validation_file"]
    if settings.get("seed") is not None:
        request["seed"] = int(settings["seed"])
    return request


def is_transient(error: Exception) -> bool:
    """Worth trying again: a timeout, a lost connection, a rate limit or a server's error."""
    if isinstance(error, openai.APIConnectionError):  # includes APITimeoutError
        return True
    status = getattr(error, "status_code", None)
    return isinstance(error, openai.APIStatusError) and (status in (408, 409, 429) or status >= 500)


def backoff(retry_seconds: float, failures: int) -> float:
    """Seconds to wait after `failures` transient errors in a row (1, 2, ...)."""
    return min(MAX_BACKOFF, retry_seconds * 2 ** (failures - 1))


def with_retries(call, what: str, retry_seconds: float, attempts: int = RETRIES):
    """call(), tried again after transient errors (on top of the client's own retries). Only
    for requests that are harmless to repeat: reads, and uploads (a duplicate file costs
    nothing but storage)."""
    for failures in range(1, attempts + 1):
        try:
            return call()
        except openai.APIError as error:
            if not is_transient(error) or failures == attempts:
                raise
            delay = backoff(retry_seconds, failures)
            log.warning("%s: %s; trying again in %.1f s", what, describe(error), delay)
            time.sleep(delay)


def describe(error: Exception) -> str:
    status = getattr(error, "status_code", None)
    return f"{type(error).__name__}" + (f" ({status})" if status else "") + f": {error}"


def upload_files(client, training_path, validation_path, retry_seconds: float) -> dict:
    """Upload the training and (if given) validation files; their ids, for the state."""
    ids = {"training_file": None, "validation_file": None}
    for key, path in (("training_file", training_path), ("validation_file", validation_path)):
        if path is None:
            continue
        path = Path(path)
        upload = partial(client.files.create, file=path, purpose="fine-tune")
        ids[key] = with_retries(upload, f"upload {path.name}", retry_seconds).id
        log.info("uploaded %s as %s", path, ids[key])
    return ids


def find_job(client, run_hash: str, suffix: str, retry_seconds: float):
    """The job this run created before, if any and neither failed nor cancelled (a failed one a
    state no longer names was deleted from it on purpose, to try again)."""

    def listing():
        return client.fine_tuning.jobs.list(metadata={RUN_KEY: run_hash}, limit=100).data

    jobs = with_retries(listing, "look for this run's job", retry_seconds)
    # Checked here too: an API that ignores the filter answers every job.
    mine = [
        job
        for job in jobs
        if job.status not in ("failed", "cancelled")
        and (
            (job.metadata or {}).get(RUN_KEY) == run_hash
            or getattr(job, "user_provided_suffix", None) == suffix
        )
    ]
    if not mine:
        return None
    # A succeeded job first, then the oldest: the one furthest along.
    mine.sort(key=lambda job: (job.status != "succeeded", job.created_at))
    if len(mine) > 1:
        log.warning("run %s has %d jobs: %s", run_hash, len(mine), [job.id for job in mine])
    log.info("found job %s, created for this run before (%s)", mine[0].id, mine[0].status)
    return mine[0]


def create_job(client, request: dict, run_hash: str, suffix: str, attempts: int, pacing: dict):
    """Create the job, sent once per attempt; after an error that leaves unknown whether the
    job was made, look for it before the next attempt. pacing: seconds "retry" (first
    backoff), "settle" (how long a stalled create may still land), "poll" (look-up interval)."""
    creator = client.with_options(max_retries=0)  # its blind retries could make a second job
    attempt = 0
    while True:
        attempt += 1
        try:
            job = creator.fine_tuning.jobs.create(**request)
            log.info("created fine-tuning job %s", job.id)
            return job
        except openai.APIError as error:
            if not is_transient(error) or attempt == attempts:
                raise
            log.warning("creating the job: %s", describe(error))
            # A 429 is refused before any work; anything else may have made the job, or a
            # stalled request may make it later: look until the settle time is over.
            window = 0.0 if getattr(error, "status_code", None) == 429 else pacing["settle"]
            job = await_job(client, run_hash, suffix, window, pacing["poll"], pacing["retry"])
            if job is not None:
                return job
            time.sleep(backoff(pacing["retry"], attempt))


def await_job(client, run_hash, suffix, window, poll_seconds, retry_seconds):
    """find_job, repeated for `window` seconds or until the job appears."""
    deadline = time.monotonic() + window
    while True:
        job = find_job(client, run_hash, suffix, retry_seconds)
        if job is not None or time.monotonic() >= deadline:
            return job
        time.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))


def wait_for_job(client, state, state_path, poll_seconds, timeout, progress, retry_seconds):
    """Poll the state's job until it ends; its result goes to the state file."""
    job_id = state["job_id"]
    deadline = None if timeout is None else time.monotonic() + timeout
    failures, shown = 0, None
    while True:
        try:
            job = client.fine_tuning.jobs.retrieve(job_id)
        except openai.APIError as error:
            if not is_transient(error):
                raise
            failures += 1
            delay = backoff(retry_seconds, failures)
            log.warning("polling %s: %s; again in %.1f s", job_id, describe(error), delay)
        else:
            failures, delay = 0, poll_seconds
            if progress:
                shown = show_progress(client, job, shown)
            if job.status in TERMINAL:
                return finish(job, state, state_path)
        if deadline is not None and time.monotonic() + delay > deadline:
            raise TimeoutError(
                f"fine-tuning job {job_id} has not ended after {timeout} s; it goes on at the "
                f"API (and is billed): run again to resume waiting ({state_path} names it)"
            )
        time.sleep(delay)


def show_progress(client, job, shown: str | None) -> str:
    """Print the job's status, trained tokens and latest event when they change."""
    try:
        events = client.fine_tuning.jobs.list_events(job.id, limit=1).data
        message = events[0].message if events else ""
    except openai.APIError:
        message = "(events unavailable)"  # progress is cosmetic: never fail a poll for it
    tokens = f", {job.trained_tokens:,} trained tokens" if job.trained_tokens else ""
    line = f"fine-tune {job.id}: {job.status}{tokens}" + (f": {message}" if message else "")
    if line != shown:
        print(line, file=sys.stderr, flush=True)
    return line


def finish(job, state: dict, state_path: Path) -> dict:
    """Record the ended job; return the state if it succeeded, else raise FineTuneError."""
    state.update(status=job.status, trained_tokens=job.trained_tokens)
    if job.status == "succeeded":
        state["fine_tuned_model"] = job.fine_tuned_model
        write_json(state_path, state)
        return state
    if job.status == "failed":
        reason = job.error.message if job.error else "no reason given"
        code = f" [{job.error.code}]" if job.error and job.error.code else ""
        state["error"] = f"failed{code}: {reason}"
    else:
        state["error"] = "cancelled"
    write_json(state_path, state)  # kept: a rerun raises this again rather than paying anew
    raise FineTuneError(
        f"fine-tuning job {job.id} {state['error']}. {state_path} keeps this job, so that a "
        "rerun raises this again rather than paying for a new one; delete it to try again."
    )
