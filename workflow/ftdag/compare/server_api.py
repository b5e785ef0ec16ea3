"""The endpoints of ftdag's local OpenAI-compatible server (server.py), apart from HTTP: each
takes a parsed Request and answers (status, JSON-able body or bytes), in OpenAI's shapes, or
raises ApiError. Requests are checked as strictly as the API checks them (a wrong type, an
unknown id or hyperparameter is a 400 or 404 here too), so that a workflow tested against this
server does not first fail on the real one.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from urllib.parse import unquote

from ftdag.compare.server_jobs import Backends, JobRunner
from ftdag.compare.server_requests import (
    CHAT_PATH,
    Request,
    field,
    page,
    parse_multipart,
    prompt_tokens,
    text_tokens,
)
from ftdag.compare.server_state import FILE_PURPOSES, ApiError, Store, new_id, now

HYPERPARAMETERS = {"n_epochs": int, "batch_size": int, "learning_rate_multiplier": (int, float)}
MAX_SUFFIX = 64
MAX_METADATA = 16  # keys; keys up to 64 characters, values up to 512, as OpenAI's


def hyperparameters(body: dict) -> dict:
    """The supervised method of a job, its hyperparameters checked, "auto" where not given."""
    method, legacy = body.get("method"), body.get("hyperparameters")
    if method is None:
        method = {"type": "supervised", "supervised": {"hyperparameters": legacy or {}}}
    elif legacy is not None:
        raise ApiError(400, "Give hyperparameters in method, not also at the top", param="method")
    if not isinstance(method, dict) or method.get("type") != "supervised":
        raise ApiError(400, "Only the supervised method is served here", param="method")
    given = (method.get("supervised") or {}).get("hyperparameters") or {}
    if not isinstance(given, dict) or set(given) - set(HYPERPARAMETERS):
        message = f"Hyperparameters are among {sorted(HYPERPARAMETERS)}; got {given!r}"
        raise ApiError(400, message, param="method.supervised.hyperparameters")
    values = {}
    for name, kind in HYPERPARAMETERS.items():
        value = given.get(name)
        value = "auto" if value is None else value
        bad = isinstance(value, bool) or not isinstance(value, kind) or value <= 0
        if value != "auto" and bad:
            message = f"{name} must be 'auto' or a positive number, not {value!r}"
            raise ApiError(400, message, param=f"method.supervised.hyperparameters.{name}")
        values[name] = value
    return values


def metadata(body: dict) -> dict | None:
    value = field(body, "metadata", dict)
    if value is None:
        return None
    good = all(
        isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
        for k, v in value.items()
    )
    if not good or len(value) > MAX_METADATA:
        message = f"metadata holds up to {MAX_METADATA} string keys (64 characters), values (512)"
        raise ApiError(400, message, param="metadata")
    return value


def metadata_matches(job: dict, request: Request) -> bool:
    """metadata[k]=v filters as OpenAI's list does; metadata=null selects jobs without any."""
    if request.arg("metadata") == "null":
        return not job.get("metadata")
    for name, values in request.query.items():
        match = re.fullmatch(r"metadata\[(.+)\]", name)
        if match and (job.get("metadata") or {}).get(match.group(1)) != values[-1]:
            return False
    return True


class Api:
    def __init__(self, store: Store, runner: JobRunner, backends: Backends, organization: str):
        self.store = store
        self.runner = runner
        self.backends = backends
        self.organization = organization
        self.started = now()
        job = r"/v1/fine_tuning/jobs/(?P<job_id>[^/]+)"
        self._routes = [
            ("GET", r"/v1/models", self.list_models),
            ("GET", r"/v1/models/(?P<model>.+)", self.retrieve_model),
            ("POST", r"/v1/files", self.upload_file),
            ("GET", r"/v1/files", self.list_files),
            ("GET", r"/v1/files/(?P<file_id>[^/]+)", self.retrieve_file),
            ("GET", r"/v1/files/(?P<file_id>[^/]+)/content", self.file_content),
            ("POST", r"/v1/fine_tuning/jobs", self.create_job),
            ("GET", r"/v1/fine_tuning/jobs", self.list_jobs),
            ("GET", job, self.retrieve_job),
            ("GET", job + "/events", self.list_events),
            ("POST", job + "/cancel", self.cancel_job),
            ("POST", CHAT_PATH, self.chat),
        ]

    def route(self, method: str, path: str):
        """The handler of a request and its path's parameters; an unknown one is OpenAI's 404."""
        for route_method, pattern, handler in self._routes:
            match = re.fullmatch(pattern, path.rstrip("/"))
            if match and route_method == method:
                return handler, {k: unquote(v) for k, v in match.groupdict().items()}
        raise ApiError(404, f"Invalid URL ({method} {path})")

    # Models.

    def models(self) -> list[dict]:
        base = [
            {"id": model, "object": "model", "created": self.started, "owned_by": "ftdag"}
            for model in self.backends.base_models
        ]
        return base + self.store.models()

    def model(self, model_id: str) -> dict:
        for model in self.models():
            if model["id"] == model_id:
                return model
        message = f"The model `{model_id}` does not exist or you do not have access to it."
        raise ApiError(404, message, param="model", code="model_not_found")

    def list_models(self, request: Request):
        return 200, {"object": "list", "data": self.models()}

    def retrieve_model(self, request: Request, model: str):
        return 200, self.model(model)

    # Files.

    def upload_file(self, request: Request):
        fields = parse_multipart(request.headers.get("Content-Type", ""), request.body)
        for name in ("file", "purpose"):
            if name not in fields:
                message = f"Missing required parameter: '{name}'."
                raise ApiError(400, message, param=name, code="missing_required_parameter")
        filename, data = fields["file"]
        purpose = fields["purpose"][1].decode("utf-8", "replace")
        if purpose not in FILE_PURPOSES:
            message = f"Invalid purpose {purpose!r}: one of {FILE_PURPOSES}"
            raise ApiError(400, message, param="purpose")
        filename = filename or "upload"
        if purpose == "fine-tune" and not filename.endswith(".jsonl"):
            message = f"Invalid file format for fine-tuning: {filename} is not a .jsonl file"
            raise ApiError(400, message, param="file")
        return 200, self.store.add_file(filename, purpose, data)

    def list_files(self, request: Request):
        files = self.store.files()
        purpose = request.arg("purpose")
        files = [f for f in files if purpose is None or f["purpose"] == purpose]
        order = request.arg("order", "desc")
        if order not in ("asc", "desc"):
            raise ApiError(400, "order is 'asc' or 'desc'", param="order")
        files = files[::-1] if order == "desc" else files
        return 200, page(files, request, 10_000, 10_000)

    def retrieve_file(self, request: Request, file_id: str):
        return 200, self.store.file(file_id)

    def file_content(self, request: Request, file_id: str):
        self.store.file(file_id)
        return 200, self.store.file_path(file_id).read_bytes()

    # Fine-tuning jobs.

    def _fine_tune_file(self, file_id: str | None, param: str) -> None:
        if file_id is None:
            return
        try:
            purpose = self.store.file(file_id)["purpose"]
        except ApiError:
            raise ApiError(400, f"invalid {param}: no such file {file_id}", param=param) from None
        if purpose != "fine-tune":
            message = f"invalid {param}: {file_id} has purpose {purpose!r}, not 'fine-tune'"
            raise ApiError(400, message, param=param)

    def create_job(self, request: Request):
        body = request.json()
        model = field(body, "model", str, required=True)
        training_file = field(body, "training_file", str, required=True)
        validation_file = field(body, "validation_file", str)
        suffix = field(body, "suffix", str)
        seed = field(body, "seed", int)
        if suffix is not None and len(suffix) > MAX_SUFFIX:
            raise ApiError(400, f"suffix is at most {MAX_SUFFIX} characters", param="suffix")
        self._fine_tune_file(training_file, "training_file")
        self._fine_tune_file(validation_file, "validation_file")
        if model not in {m["id"] for m in self.models()}:
            message = f"Model {model} is not available for fine-tuning on this server"
            raise ApiError(400, message, param="model", code="model_not_available")
        if self.backends.fine_tune is None:
            raise ApiError(400, "This server has no fine-tuning backend", param="model")
        values = hyperparameters(body)
        job = {
            "id": new_id("ftjob"),
            "object": "fine_tuning.job",
            "model": model,
            "created_at": now(),
            "finished_at": None,
            "fine_tuned_model": None,
            "organization_id": self.organization,
            "result_files": [],
            "status": "validating_files",
            "training_file": training_file,
            "validation_file": validation_file,
            "hyperparameters": values,
            "method": {"type": "supervised", "supervised": {"hyperparameters": values}},
            "trained_tokens": None,
            "error": None,
            "user_provided_suffix": suffix,
            "seed": secrets.randbelow(2**31) if seed is None else seed,
            "estimated_finish": None,
            "integrations": [],
            "metadata": metadata(body),
        }
        job = self.store.add_job(job)
        self.runner.submit(job["id"])
        return 200, job

    def list_jobs(self, request: Request):
        jobs = [job for job in self.store.jobs()[::-1] if metadata_matches(job, request)]
        return 200, page(jobs, request, 20, 1000)

    def retrieve_job(self, request: Request, job_id: str):
        return 200, self.store.job(job_id)

    def list_events(self, request: Request, job_id: str):
        return 200, page(self.store.events(job_id)[::-1], request, 20, 1000)

    def cancel_job(self, request: Request, job_id: str):
        return 200, self.runner.cancel(job_id)

    # Chat.

    def chat(self, request: Request):
        body = request.json()
        model = field(body, "model", str, required=True)
        messages = field(body, "messages", list, required=True)
        if not messages or not all(isinstance(m, dict) and "role" in m for m in messages):
            message = "messages must be a non-empty list of objects with a role"
            raise ApiError(400, message, param="messages")
        if body.get("stream"):
            raise ApiError(400, "Streaming is not served here", param="stream")
        if body.get("n", 1) != 1:
            raise ApiError(400, "Only n=1 is served here", param="n")
        self.model(model)
        if self.backends.chat is None:
            raise ApiError(400, "This server has no chat backend", param="model")
        settings = {k: v for k, v in body.items() if k not in ("model", "messages")}
        reply = self.backends.chat(model, messages, settings)
        reply = reply if isinstance(reply, Mapping) else {"content": reply}
        content = reply.get("content")
        if not isinstance(content, str):
            raise TypeError(f"the chat backend answered {reply!r}, not text")
        prompt = reply.get("prompt_tokens", prompt_tokens(messages))
        completion = reply.get("completion_tokens", text_tokens(content))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        message = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
        choice = {"index": 0, "message": message, "logprobs": None}
        choice["finish_reason"] = reply.get("finish_reason", "stop")
        completion_id = "chatcmpl-" + secrets.token_hex(12)
        return 200, {
            "id": completion_id,
            "object": "chat.completion",
            "created": now(),
            "model": model,
            "choices": [choice],
            "usage": usage,
            "system_fingerprint": "ftdag-local",
        }
