"""The API fine-tune (compare.finetune_api) against ftdag's own server through the real `openai`
client: whatever a run is killed at or the API throws at it, it ends with one paid job."""

import json
import threading

import httpx2
import pytest
from openai import OpenAI

from ftdag.compare.finetune_api import RUN_KEY, FineTuneError, run_fine_tune
from ftdag.compare.server import Faults, serve
from ftdag.compare.server_jobs import Backends, fine_tuned_model_id

KEY = "sk-ftdag-test-finetune-0123456789"
BASE = "local-vlm"
RUN = "0123456789abcdef0123"
EXAMPLE = {"messages": [{"role": "user", "content": "Rate"}, {"role": "assistant", "content": "7"}]}
SETTINGS = {"model": BASE, "n_epochs": 2, "batch_size": 1, "learning_rate_multiplier": 0.5}
FAST = {"poll_seconds": 0.02, "retry_seconds": 0.01, "settle_seconds": 0.5, "progress": False}


def trained(job, training_path, validation_path, report):
    report("Step 1/1: training loss=0.50")
    return {"fine_tuned_model": fine_tuned_model_id(job), "trained_tokens": 1234}


class Gate:
    """A fine-tune that trains until `release` is set, then succeeds."""

    def __init__(self):
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, job, training_path, validation_path, report):
        self.calls += 1
        while not self.release.wait(0.05):
            report("training")  # raises JobInterrupted on a cancel or a stop
        return trained(job, training_path, validation_path, report)


def backends(fine_tune=trained):
    return Backends(fine_tune=fine_tune, base_models=(BASE,))


def client_for(handle, **options):
    return OpenAI(base_url=handle.base_url, api_key=KEY, **{"timeout": 10, **options})


@pytest.fixture
def files(tmp_path):
    paths = []
    for name in ("train.jsonl", "valid.jsonl"):
        (tmp_path / name).write_text((json.dumps(EXAMPLE) + "\n") * 3)
        paths.append(tmp_path / name)
    return paths


def run(client, files, state, **options):
    return run_fine_tune(client, *files, SETTINGS, RUN, state, **{**FAST, **options})


def jobs(client):
    return client.fine_tuning.jobs.list(limit=100).data


def uploads(client):
    return client.files.list(purpose="fine-tune").data


def test_a_clean_run_makes_one_job_and_returns_its_model(tmp_path, files, capsys):
    state = tmp_path / "state.json"
    with serve(tmp_path / "server", KEY, backends()) as handle:
        client = client_for(handle)
        result = run(client, files, state, progress=True)
        (job,) = jobs(client)
        assert len(uploads(client)) == 2
    assert result["status"] == "succeeded" and result["job_id"] == job.id
    assert result["fine_tuned_model"] == job.fine_tuned_model == fine_tuned_model_id(job.to_dict())
    assert result["trained_tokens"] == 1234 and json.loads(state.read_text()) == result
    assert job.metadata == {RUN_KEY: RUN} and job.user_provided_suffix == f"ftdag-{RUN[:16]}"
    assert job.method.supervised.hyperparameters.n_epochs == 2
    assert job.validation_file == result["validation_file"]
    assert KEY not in state.read_text()
    assert f"fine-tune {job.id}: succeeded, 1,234 trained tokens" in capsys.readouterr().err
    assert run_fine_tune(None, *files, SETTINGS, RUN, state) == result  # done: no API call


def test_a_run_killed_after_the_create_finds_its_job(tmp_path, files):
    gate, state = Gate(), tmp_path / "state.json"
    with serve(tmp_path / "server", KEY, backends(gate)) as handle:
        client = client_for(handle)
        with pytest.raises(TimeoutError, match="run again to resume"):
            run(client, files, state, timeout=0.3)
        # As if killed between the create and writing the job's id:
        recorded = json.loads(state.read_text())
        first = recorded.pop("job_id")
        state.write_text(json.dumps(recorded))
        gate.release.set()
        result = run(client, files, state)
        assert [job.id for job in jobs(client)] == [first] == [result["job_id"]]
        assert len(uploads(client)) == 2 and gate.calls == 1
    assert result["status"] == "succeeded"


def test_a_run_killed_while_polling_resumes_its_job(tmp_path, files):
    gate, state = Gate(), tmp_path / "state.json"
    with serve(tmp_path / "server", KEY, backends(gate)) as handle:
        client = client_for(handle)
        with pytest.raises(TimeoutError):
            run(client, files, state, timeout=0.3)
        first = json.loads(state.read_text())
        assert first["job_id"] and first["status"] != "succeeded"
        gate.release.set()
        result = run(client, files, state)
        assert [job.id for job in jobs(client)] == [first["job_id"]]
        assert {f.id for f in uploads(client)} == {first["training_file"], first["validation_file"]}
    assert result["fine_tuned_model"].startswith(f"ft:{BASE}:")


def test_a_failed_job_raises_its_error_and_a_rerun_pays_for_no_other(tmp_path, files):
    def broken(job, training_path, validation_path, report):
        raise RuntimeError("CUDA out of memory")

    state = tmp_path / "state.json"
    with serve(tmp_path / "server", KEY, backends(broken)) as handle:
        client = client_for(handle)
        for _ in range(2):
            with pytest.raises(FineTuneError, match="CUDA out of memory") as error:
                run(client, files, state)
            assert "delete it to try again" in str(error.value) and str(state) in str(error.value)
        assert len(jobs(client)) == 1 and jobs(client)[0].status == "failed"
        assert json.loads(state.read_text())["status"] == "failed"


def test_a_cancelled_job_raises(tmp_path, files):
    gate, state = Gate(), tmp_path / "state.json"
    with serve(tmp_path / "server", KEY, backends(gate)) as handle:
        client = client_for(handle)
        with pytest.raises(TimeoutError):
            run(client, files, state, timeout=0.3)
        client.fine_tuning.jobs.cancel(json.loads(state.read_text())["job_id"])
        for _ in range(2):
            with pytest.raises(FineTuneError, match="cancelled"):
                run(client, files, state)
        assert len(jobs(client)) == 1


def test_faults_on_every_endpoint_still_make_one_job(tmp_path, files):
    faults = {"rate_limit": 0.12, "server_error": 0.12, "stall": 0.06, "stall_seconds": 0.05}
    faults = Faults(**faults, retry_after=0.01, seed=30, scope="all")
    drawn = []
    draw = faults.draw
    faults.draw = lambda: drawn.append(draw()) or drawn[-1]  # to count the faults met
    state = tmp_path / "state.json"
    with serve(tmp_path / "server", KEY, backends(), faults=faults) as handle:
        # No retries in the client: every fault reaches run_fine_tune's own handling.
        result = run(client_for(handle, max_retries=0), files, state)
    # Seed 30: the 2nd upload stalls, the look-up is rate limited, the create answers 500 (it
    # made no job: after the settle time it is sent again), then polls meet faults.
    assert drawn[:5] == [None, "stall", "rate_limit", None, "server_error"]
    assert {"rate_limit", "server_error"} <= set(drawn[5:])
    with serve(tmp_path / "server", KEY, backends()) as handle:  # counted without faults
        (job,) = jobs(client_for(handle))
    assert result["job_id"] == job.id and result["fine_tuned_model"] == job.fine_tuned_model


class StallFirstCreate(Faults):
    """The server's stall fault on the first job create only. The server does not tell a fault
    the method, so it is read from the client's last request (the client sends one at a time)."""

    def __init__(self, **settings):
        super().__init__(**settings)
        self.sent, self.stalled = [], []

    def draw(self):
        method, path = self.sent[-1]
        creating = method == "POST" and path.endswith("/fine_tuning/jobs")
        if creating and not self.stalled:
            self.stalled.append(path)
            return "stall"
        return None


def test_a_create_stalled_past_the_client_timeout_leaves_one_job(tmp_path, files):
    faults = StallFirstCreate(stall=1.0, stall_seconds=1.0, scope="all")
    hooks = {"request": [lambda request: faults.sent.append((request.method, request.url.path))]}
    state = tmp_path / "state.json"
    with serve(tmp_path / "server", KEY, backends(), faults=faults) as handle:
        client = client_for(handle, timeout=0.4, http_client=httpx2.Client(event_hooks=hooks))
        result = run(client, files, state, settle_seconds=3)
        assert faults.stalled  # the create did stall, and timed out
        creates = [sent for sent in faults.sent if sent[0] == "POST" and "jobs" in sent[1]]
        assert len(creates) == 1  # found, not sent again
    with serve(tmp_path / "server", KEY, backends()) as handle:
        (job,) = jobs(client_for(handle))
    assert result["job_id"] == job.id and result["status"] == "succeeded"
