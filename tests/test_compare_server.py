"""ftdag's local OpenAI-compatible server, through the real `openai` client: if the client could
not parse an answer, or raised the wrong error, the compare family would fail the same way."""

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from ftdag.compare.server import Faults, serve
from ftdag.compare.server_jobs import Backends, JobInterrupted, fine_tuned_model_id

KEY = "sk-ftdag-test-0123456789"
BASE = "local-vlm"
TERMINAL = ("succeeded", "failed", "cancelled")
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "YPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
EXAMPLE = {
    "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": PNG}}]},
        {"role": "assistant", "content": "7"},
    ]
}
# A line break of each kind: an upload must be stored byte for byte.
TRAINING = (json.dumps(EXAMPLE) + "\r\n" + json.dumps(EXAMPLE) + "\n").encode()
SUPERVISED = {
    "type": "supervised",
    "supervised": {
        "hyperparameters": {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.5}
    },
}


def chat(model, messages, settings):
    return f"Score: 7 from {model}"


def trivial_fine_tune(job, training_path, validation_path, report):
    report("Step 1/1: training loss=0.50", type="metrics", data={"step": 1, "train_loss": 0.5})
    return fine_tuned_model_id(job)


class Blocking:
    """A fine-tune that trains until it is interrupted, recording what it was called with."""

    def __init__(self):
        self.calls = []
        self.interruptions = []
        self.started = threading.Event()

    def __call__(self, job, training_path, validation_path, report):
        self.calls.append((job, Path(training_path).read_bytes()))
        self.started.set()
        try:
            while True:
                report("training")
                time.sleep(0.02)
        except JobInterrupted as error:
            self.interruptions.append(str(error))
            raise


def backends(fine_tune=trivial_fine_tune, chat=chat):
    return Backends(chat=chat, fine_tune=fine_tune, base_models=(BASE,))


def cli_backends():
    """For the CLI test: `--backends test_compare_server:cli_backends`."""
    return backends()


def client_for(handle, key=KEY, **options):
    options = {"max_retries": 0, "timeout": 10, **options}
    return OpenAI(base_url=handle.base_url, api_key=key, **options)


@pytest.fixture
def server(tmp_path):
    with serve(tmp_path / "state", KEY, backends()) as handle:
        yield handle


@pytest.fixture
def client(server):
    return client_for(server)


def upload(client, data=TRAINING, name="train.jsonl", purpose="fine-tune"):
    return client.files.create(file=(name, data), purpose=purpose)


def wait_for(client, job_id, statuses=TERMINAL, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in statuses:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still {job.status} after {timeout} s")


def image_chat(client, model, **settings):
    content = [
        {"type": "text", "text": "Rate this image from 1 to 10."},
        {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
    ]
    messages = [{"role": "user", "content": content}]
    return client.chat.completions.create(model=model, messages=messages, **settings)


def test_models_list(client):
    models = client.models.list()
    assert [m.id for m in models] == [BASE]
    assert models.data[0].object == "model"
    assert client.models.retrieve(BASE).id == BASE


def test_file_upload_retrieve_and_content(client):
    uploaded = upload(client)
    assert (uploaded.object, uploaded.purpose, uploaded.filename) == (
        "file",
        "fine-tune",
        "train.jsonl",
    )
    assert uploaded.bytes == len(TRAINING)
    assert client.files.retrieve(uploaded.id) == uploaded
    assert client.files.content(uploaded.id).read() == TRAINING
    assert [f.id for f in client.files.list(purpose="fine-tune")] == [uploaded.id]


def test_fine_tune_job_succeeds_and_its_model_answers_a_chat(tmp_path):
    seen = []

    def fine_tune(job, training_path, validation_path, report):
        seen.append((job, Path(training_path).read_bytes(), validation_path))
        return trivial_fine_tune(job, training_path, validation_path, report)

    def recording_chat(model, messages, settings):
        seen.append((model, messages, settings))
        return chat(model, messages, settings)

    with serve(tmp_path / "state", KEY, backends(fine_tune, recording_chat)) as handle:
        client = client_for(handle)
        training, validation = upload(client), upload(client, name="valid.jsonl")
        created = client.fine_tuning.jobs.create(
            model=BASE,
            training_file=training.id,
            validation_file=validation.id,
            suffix="scores",
            seed=3,
            metadata={"arm": "local"},
            method=SUPERVISED,
        )
        assert created.status == "validating_files" and created.object == "fine_tuning.job"
        job = wait_for(client, created.id)
        assert job.status == "succeeded", job.error
        assert job.fine_tuned_model == f"ft:{BASE}:ftdag:scores:{job.id[-8:]}"
        assert (job.seed, job.metadata, job.user_provided_suffix) == (3, {"arm": "local"}, "scores")
        assert (
            job.hyperparameters.n_epochs == 2
            and job.method.supervised.hyperparameters.batch_size == 4
        )
        assert job.finished_at is not None and job.error is None
        backend_job, backend_training, backend_validation = seen[0]
        assert backend_job["id"] == job.id and backend_training == TRAINING
        assert backend_validation.read_bytes() == TRAINING
        assert backend_job["hyperparameters"]["learning_rate_multiplier"] == 0.5
        assert job.fine_tuned_model in [m.id for m in client.models.list()]

        answer = image_chat(client, job.fine_tuned_model, temperature=0.0, max_tokens=5)
        assert answer.choices[0].message.content == f"Score: 7 from {job.fine_tuned_model}"
        assert answer.choices[0].finish_reason == "stop" and answer.model == job.fine_tuned_model
        model, messages, settings = seen[1]
        assert messages[0]["content"][1]["image_url"]["url"] == PNG
        assert settings == {"temperature": 0.0, "max_tokens": 5}


def test_usage_tokens_estimated_or_the_backends(tmp_path):
    def counting_chat(model, messages, settings):
        return {"content": "8", "prompt_tokens": 123, "completion_tokens": 1}

    with serve(tmp_path / "a", KEY, backends()) as handle:
        usage = image_chat(client_for(handle), BASE).usage
        # 3 per message and for the reply, 85 for a low-detail image, 8 words and marks; the
        # reply "Score: 7 from local-vlm" 7.
        assert (usage.prompt_tokens, usage.completion_tokens) == (3 + 3 + 85 + 8, 7)
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    with serve(tmp_path / "b", KEY, backends(chat=counting_chat)) as handle:
        usage = image_chat(client_for(handle), BASE).usage
        assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (123, 1, 124)


def test_events_listed_newest_first_with_pages(client):
    job = client.fine_tuning.jobs.create(model=BASE, training_file=upload(client).id)
    assert wait_for(client, job.id).status == "succeeded"
    events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
    messages = [e.message for e in events]
    assert messages[0] == "The job has successfully completed"
    assert messages[-1] == f"Validating training file: {job.training_file}"
    metrics = [e for e in events if e.type == "metrics"]
    assert len(metrics) == 1 and metrics[0].data == {"step": 1, "train_loss": 0.5}
    first = client.fine_tuning.jobs.list_events(job.id, limit=2)
    assert first.has_more and [e.id for e in first.data] == [e.id for e in events[:2]]
    rest = client.fine_tuning.jobs.list_events(job.id, after=first.data[-1].id, limit=100)
    assert [e.id for e in rest.data] == [e.id for e in events[2:]] and not rest.has_more


def test_jobs_list_pages_and_metadata_filter(client):
    training = upload(client).id
    ids = [
        client.fine_tuning.jobs.create(model=BASE, training_file=training, metadata={"arm": arm}).id
        for arm in ("a", "b", "a")
    ]
    newest_first = [job.id for job in client.fine_tuning.jobs.list()]
    assert newest_first == ids[::-1]
    page = client.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in page.data] == ids[:0:-1] and page.has_more
    assert [j.id for j in client.fine_tuning.jobs.list(after=ids[1])] == [ids[0]]
    assert [j.id for j in client.fine_tuning.jobs.list(metadata={"arm": "a"})] == [ids[2], ids[0]]


def test_cancel_interrupts_the_backend(tmp_path):
    blocking = Blocking()
    with serve(tmp_path / "state", KEY, backends(blocking)) as handle:
        client = client_for(handle)
        job = client.fine_tuning.jobs.create(model=BASE, training_file=upload(client).id)
        assert wait_for(client, job.id, ("running",)).status == "running"
        cancelled = client.fine_tuning.jobs.cancel(job.id)
        assert cancelled.status == "cancelled" and cancelled.finished_at is not None
        deadline = time.monotonic() + 5
        while not blocking.interruptions and time.monotonic() < deadline:
            time.sleep(0.01)
        assert blocking.interruptions == ["the job was cancelled"]
        assert client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
        assert [m.id for m in client.models.list()] == [BASE]
        with pytest.raises(openai.BadRequestError, match="cannot be cancelled"):
            client.fine_tuning.jobs.cancel(job.id)


def test_failed_jobs_carry_their_error(client, tmp_path):
    bad = upload(client, data=b'{"messages": []}\nnot json\n')
    job = wait_for(client, client.fine_tuning.jobs.create(model=BASE, training_file=bad.id).id)
    assert job.status == "failed" and job.error.code == "invalid_training_file"
    assert "line 2 is not JSON" in job.error.message and job.error.param == "training_file"

    def broken(job, training_path, validation_path, report):
        raise RuntimeError("out of memory")

    with serve(tmp_path / "other", KEY, backends(broken)) as handle:
        other = client_for(handle)
        job = other.fine_tuning.jobs.create(model=BASE, training_file=upload(other).id)
        job = wait_for(other, job.id)
        assert job.status == "failed" and job.error.message == "RuntimeError: out of memory"


def test_wrong_or_missing_key_is_401_even_with_faults(tmp_path):
    faults = {"rate_limit": 1.0, "scope": "all"}
    with serve(tmp_path / "state", KEY, backends(), faults=faults) as handle:
        with pytest.raises(openai.AuthenticationError) as error:
            client_for(handle, key="sk-wrong-key-9999").models.list()
        assert error.value.status_code == 401 and error.value.code == "invalid_api_key"
        assert "sk-wrong-key-9999" not in error.value.message  # never echoes a key whole
        request = urllib.request.Request(handle.base_url + "/models")
        with pytest.raises(urllib.error.HTTPError) as raw:
            urllib.request.urlopen(request, timeout=5)
        assert raw.value.code == 401
        body = json.loads(raw.value.read())
        assert set(body["error"]) == {"message", "type", "param", "code"}
        with pytest.raises(openai.RateLimitError):  # the right key meets the fault
            client_for(handle).models.list()


def raw_post(handle, path, body: bytes):
    """A request the client would not send: (status, error body)."""
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    request = urllib.request.Request(handle.base_url + path, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_unknown_ids_are_404_and_bad_requests_400(server, client):
    with pytest.raises(openai.NotFoundError) as error:
        client.fine_tuning.jobs.retrieve("ftjob-nope")
    assert error.value.code == "fine_tune_not_found"
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve("file-nope")
    with pytest.raises(openai.NotFoundError, match="model_not_found|does not exist"):
        image_chat(client, "no-such-model")
    with pytest.raises(openai.BadRequestError, match="no such file"):
        client.fine_tuning.jobs.create(model=BASE, training_file="file-nope")
    batch = upload(client, purpose="batch")
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client.fine_tuning.jobs.create(model=BASE, training_file=batch.id)
    with pytest.raises(openai.BadRequestError, match="not available"):
        client.fine_tuning.jobs.create(model="gpt-nope", training_file=upload(client).id)
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model=BASE, messages=[])
    status, body = raw_post(server, "/chat/completions", b"{")
    assert status == 400 and "JSON" in body["error"]["message"]
    status, body = raw_post(server, "/fine_tuning/jobs", json.dumps({"model": BASE}).encode())
    assert (status, body["error"]["param"]) == (400, "training_file")
    assert raw_post(server, "/no/such/endpoint", b"{}")[0] == 404


def test_oversized_body_is_413_and_the_server_goes_on(tmp_path):
    with serve(tmp_path / "state", KEY, backends(), max_body_bytes=4096) as handle:
        client = client_for(handle)
        with pytest.raises(openai.APIStatusError) as error:
            client.chat.completions.create(
                model=BASE, messages=[{"role": "user", "content": "x" * 10_000}]
            )
        assert error.value.status_code == 413
        with pytest.raises(openai.APIStatusError) as error:
            upload(client, data=b"y" * 100_000)
        assert error.value.status_code == 413
        assert image_chat(client, BASE).choices[0].message.content


def test_chunked_bodies_are_read_and_limited(tmp_path):
    """A client streaming a body of unknown length sends it in chunks."""
    body = json.dumps({"model": BASE, "messages": [{"role": "user", "content": "hi"}]}).encode()
    headers = {"Authorization": f"Bearer {KEY}", "Transfer-Encoding": "chunked"}
    with serve(tmp_path / "state", KEY, backends(), max_body_bytes=len(body)) as handle:
        for parts, status in (([body[:10], body[10:]], 200), ([body, b" "], 413)):
            connection = http.client.HTTPConnection("127.0.0.1", handle.port, timeout=5)
            connection.request(
                "POST", "/v1/chat/completions", iter(parts), headers, encode_chunked=True
            )
            response = connection.getresponse()
            answer = json.loads(response.read())
            assert response.status == status, answer
            connection.close()
        assert answer["error"]["code"] == "body_too_large"


def test_state_survives_a_restart_and_a_running_job_resumes(tmp_path):
    state = tmp_path / "state"
    blocking = Blocking()
    with serve(state, KEY, backends(blocking)) as handle:
        client = client_for(handle)
        training = upload(client)
        first = client.fine_tuning.jobs.create(model=BASE, training_file=training.id)
        assert blocking.started.wait(10)
        client.fine_tuning.jobs.cancel(first.id)  # frees the worker for a job to succeed...
    with serve(state, KEY, backends()) as handle:
        client = client_for(handle)
        done = client.fine_tuning.jobs.create(model=BASE, training_file=training.id)
        done = wait_for(client, done.id)
        assert done.status == "succeeded"
    blocking = Blocking()
    with serve(state, KEY, backends(blocking)) as handle:
        client = client_for(handle)
        left = client.fine_tuning.jobs.create(model=BASE, training_file=training.id, suffix="x")
        assert blocking.started.wait(10)
        assert client.fine_tuning.jobs.retrieve(left.id).status == "running"
    # ...and this one is left running by the stop.
    assert blocking.interruptions == ["the server is stopping"]
    resumed = []

    def resuming(job, training_path, validation_path, report):
        resumed.append((job["id"], Path(training_path).read_bytes()))
        return trivial_fine_tune(job, training_path, validation_path, report)

    with serve(state, KEY, backends(resuming)) as handle:
        client = client_for(handle)
        assert client.files.retrieve(training.id).bytes == len(TRAINING)
        assert client.fine_tuning.jobs.retrieve(first.id).status == "cancelled"
        assert client.fine_tuning.jobs.retrieve(done.id) == done
        assert done.fine_tuned_model in [m.id for m in client.models.list()]
        assert image_chat(client, done.fine_tuned_model).choices[0].message.content
        job = wait_for(client, left.id)
        assert job.status == "succeeded" and job.fine_tuned_model.endswith(f":x:{left.id[-8:]}")
        assert resumed == [(left.id, TRAINING)]  # only the unfinished job ran again
        events = [e.message for e in client.fine_tuning.jobs.list_events(left.id, limit=1000)]
        assert "The server restarted; the job is resumed" in events


def test_one_server_per_state_directory(server):
    with pytest.raises(RuntimeError, match="another server"):
        serve(server.state_dir, KEY, backends())


def fault_settings():
    rates = {"rate_limit": 0.1, "server_error": 0.1, "stall": 0.1}
    # Seed 0 happens to draw no 429 or 500 in its first 20 requests; 1 draws 4, 1 and 2 stalls.
    return {**rates, "stall_seconds": 0.05, "retry_after": 0.01, "seed": 1}


def test_faults_fail_some_requests_without_retries(tmp_path):
    expected = Faults.parse(fault_settings())
    kinds = [expected.draw() for _ in range(20)]
    errors = {"rate_limit": openai.RateLimitError, "server_error": openai.InternalServerError}
    assert any(kind in errors for kind in kinds)  # else the seed tests nothing
    with serve(tmp_path / "state", KEY, backends(), faults=fault_settings()) as handle:
        client = client_for(handle)
        outcomes = []
        for _ in range(20):
            try:
                image_chat(client, BASE)
                outcomes.append(None)
            except (openai.RateLimitError, openai.InternalServerError) as error:
                outcomes.append(type(error))
                if isinstance(error, openai.RateLimitError):
                    assert error.response.headers["retry-after"] == "1"
        assert outcomes == [errors.get(kind) for kind in kinds]
        assert [m.id for m in client.models.list()] == [BASE]  # scope: chat only


def test_faults_at_30_percent_are_absorbed_by_client_retries(tmp_path):
    calls = []

    def counting_chat(model, messages, settings):
        calls.append(model)
        return "6"

    faults = fault_settings()
    with serve(tmp_path / "state", KEY, backends(chat=counting_chat), faults=faults) as handle:
        client = client_for(handle, max_retries=5)
        answers = [image_chat(client, BASE).choices[0].message.content for _ in range(20)]
    assert answers == ["6"] * 20 and len(calls) == 20
    draws, failures, answered = Faults.parse(faults), 0, 0
    while answered < 20:
        failed = draws.draw() in ("rate_limit", "server_error")
        failures, answered = failures + failed, answered + (not failed)
    assert failures > 0  # the retries were needed


def test_a_stall_outlasting_the_client_timeout(tmp_path):
    faults = {"stall": 1.0, "stall_seconds": 30}
    handle = serve(tmp_path / "state", KEY, backends(), faults=faults)
    try:
        with pytest.raises(openai.APITimeoutError):
            image_chat(client_for(handle, timeout=0.3), BASE)
    finally:
        start = time.monotonic()
        handle.stop()
    assert time.monotonic() - start < 5  # the stall does not hold the stop


def test_cli_serves_until_sigterm(tmp_path):
    url_file = tmp_path / "url"
    root = Path(__file__).resolve().parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root.parent / "workflow"), str(root)]),
        "OPENAI_API_KEY": KEY,
        "FTDAG_COMPARE_FAULTS": json.dumps({"rate_limit": 1.0}),
    }
    command = [sys.executable, "-m", "ftdag.compare.server", "--state", str(tmp_path / "s")]
    command += ["--backends", "test_compare_server:cli_backends", "--url-file", str(url_file)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not url_file.exists():
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "no URL written"
            time.sleep(0.05)
        client = OpenAI(base_url=url_file.read_text().strip(), api_key=KEY, max_retries=0)
        assert [m.id for m in client.models.list()] == [BASE]
        with pytest.raises(openai.RateLimitError):  # faults from the environment
            image_chat(client, BASE)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert not url_file.exists()  # a stale URL would pass for a running server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
