"""Cost accounting on hand-made benchmark files and Snakemake metadata, and provenance
records; the smoke campaign checks both on real runs (test_workflow.py)."""

from __future__ import annotations

import base64
import json

import pytest

from ftdag.core import cost
from ftdag.core.provenance import config_hash, provenance, read_sidecar, write_sidecar

HEADER = (
    "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\t"
    "jobid\trule_name\twildcards\tparams\tthreads\tcpu_usage\tresources\tinput_size_mb"
)


def write_benchmark(path, rule, seconds, threads, wildcards, resources, inputs):
    path.parent.mkdir(parents=True, exist_ok=True)
    row = [str(seconds), "0:00:01", "1", "1", "1", "1", "0", "0", "1", "1", "7", rule]
    row += [repr(wildcards), "{}", str(threads), "100", repr(resources)]
    row += [repr({i: 0.1 for i in inputs})]
    path.write_text(HEADER + "\n" + "\t".join(row) + "\n")
    return path


def write_metadata(workdir, output, rule, inputs):
    name = base64.urlsafe_b64encode(output.encode()).decode()
    folder = workdir / ".snakemake" / "metadata"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps({"rule": rule, "input": inputs}))


def test_device_hours_are_gpu_hours_where_gpus_were_given(tmp_path):
    cpu = cost.read_benchmark(
        write_benchmark(tmp_path / "a.tsv", "train", 1800, 4, {"arch": "wide"}, {"mem_mb": 1}, [])
    )
    assert (cpu["device"], cpu["gpus"], cpu["device_hours"]) == ("cpu", 0, pytest.approx(2.0))
    gpu = cost.read_benchmark(
        write_benchmark(tmp_path / "b.tsv", "train", 3600, 8, {}, {"gpu": 2}, [])
    )
    assert (gpu["device"], gpu["gpus"], gpu["device_hours"]) == ("gpu", 2, pytest.approx(2.0))
    assert cost.gpus_of({"gres": "gpu:a100:4"}) == 4 and cost.gpus_of({"gres": "gpu"}) == 1
    assert cost.gpus_of({"gres": "shard:1"}) == 0


def test_a_plain_benchmark_file_is_refused_with_the_fix(tmp_path):
    plain = tmp_path / "plain.tsv"
    plain.write_text("s\th:m:s\n1.0\t0:00:01\n")
    with pytest.raises(ValueError, match="benchmark-extended"):
        cost.read_benchmark(plain)


def test_cost_upstream_of_a_result_follows_the_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # data -> model -> two plots (same rule, same input); each plot's cost has data, model and
    # itself, not the other plot.
    jobs = [
        write_benchmark(tmp_path / "b/data.tsv", "data", 10, 1, {}, {}, []),
        write_benchmark(tmp_path / "b/model.tsv", "train", 100, 2, {}, {}, ["data.jsonl"]),
        write_benchmark(tmp_path / "b/p1.tsv", "plot", 1, 1, {"plot": "heat"}, {}, ["model"]),
        write_benchmark(tmp_path / "b/p2.tsv", "plot", 2, 1, {"plot": "curve"}, {}, ["model"]),
    ]
    write_metadata(tmp_path, "data.jsonl", "data", [])
    write_metadata(tmp_path, "model", "train", ["data.jsonl"])
    write_metadata(tmp_path, "plots/heat.png", "plot", ["model"])
    write_metadata(tmp_path, "plots/curve.png", "plot", ["model"])
    records = [cost.read_benchmark(p) for p in jobs]
    metadata = cost.read_metadata()
    heat = cost.result_row(
        "plots/heat.png", cost.upstream_jobs("plots/heat.png", metadata, records)
    )
    assert heat["jobs"] == 3
    assert heat["core_hours"] == pytest.approx((10 + 200 + 1) / 3600, abs=1e-6)
    curve = cost.upstream_jobs("plots/curve.png", metadata, records)
    assert sorted(j["benchmark"].rsplit("/", 1)[1] for j in curve) == [
        "data.tsv",
        "model.tsv",
        "p2.tsv",
    ]
    rows = cost.cost_rows(records)
    assert [r["rule"] for r in rows] == ["data", "plot", "plot", "train"]
    assert rows[1]["wildcards"] == "plot=curve"


def test_config_hash_ignores_key_order_and_sees_every_value():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1, "b": [1, 2]}) != config_hash({"a": 1, "b": [2, 1]})


def test_a_sidecar_names_code_versions_and_every_device_upstream(tmp_path):
    part = tmp_path / "part.csv"
    part.write_text("x\n1\n")
    write_sidecar(part, {**provenance("abc"), "devices": ["Some GPU"]})
    table = tmp_path / "table.csv"
    table.write_text("x\n1\n")
    write_sidecar(table, provenance("abc", inputs=[part]))
    record = read_sidecar(table)
    assert record["file"] == "table.csv" and record["config_hash"] == "abc"
    assert "Some GPU" in record["devices"] and len(record["devices"]) == 2
    assert set(record["versions"]) >= {"python", "torch", "transformers", "peft", "snakemake"}
    assert isinstance(record["code"].get("dirty"), bool)  # this checkout is a git repository
