"""What the campaign cost: one row per job, and the cost upstream of each result.

Per job, from Snakemake's extended `benchmark:` files (`benchmark-extended: true` in the
profiles): rule, wildcards, wall seconds, the threads and GPUs it was given, and device-hours:
GPU-hours where GPUs were requested, core-hours otherwise. Per result (a plot, a table), the
device-hours of every job upstream of it, found by walking Snakemake's record of which job
wrote which file from which inputs (`.snakemake/metadata`). This is what "GPU-hours per figure"
in a grant report and the curriculum family's cost per accuracy point read.
"""

from __future__ import annotations

import ast
import base64
import csv
import json
import re
from pathlib import Path

COST_COLUMNS = [
    "rule",
    "wildcards",
    "wall_seconds",
    "threads",
    "gpus",
    "device",
    "device_hours",
    "benchmark",
]
RESULT_COLUMNS = ["result", "jobs", "wall_seconds", "gpu_hours", "core_hours", "device_hours"]


def _literal(text: str):
    """A dict column of an extended benchmark (Python repr), or {} for '-'/empty."""
    if not text or text in ("-", "NA"):
        return {}
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return json.loads(text)


def gpus_of(resources: dict) -> int:
    """GPUs a job was given: its `gpu`/`gpus` resource or a `gres` such as 'gpu:a100:2'."""
    gpus = int(resources.get("gpu") or resources.get("gpus") or 0)
    match = re.fullmatch(r"gpu(?::[\w.]+)?(?::(\d+))?", str(resources.get("gres") or ""))
    if not gpus and match:
        gpus = int(match.group(1) or 1)
    return gpus


def read_benchmark(path) -> dict:
    """One job's record: rule, wildcards, inputs, wall seconds, threads, GPUs, device-hours."""
    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: empty benchmark file")
    row = rows[0]  # `repeat()` benchmarks write one row per repeat; the first is the job's
    if "rule_name" not in row:
        raise ValueError(
            f"{path}: not an extended benchmark (no rule_name column); run with "
            "--benchmark-extended (profiles/default sets it)"
        )
    resources = _literal(row.get("resources", ""))
    threads = int(row.get("threads") or 1)
    gpus = gpus_of(resources)
    wall = float(row["s"])
    return {
        "rule": row["rule_name"],
        "wildcards": _literal(row.get("wildcards", "")),
        "inputs": sorted(_literal(row.get("input_size_mb", ""))),
        "wall_seconds": wall,
        "threads": threads,
        "gpus": gpus,
        "device": "gpu" if gpus else "cpu",
        "device_hours": wall * (gpus or threads) / 3600,
        "benchmark": str(path),
    }


def cost_rows(jobs: list[dict]) -> list[dict]:
    """The per-job table, in rule then wildcard order."""
    rows = []
    for job in sorted(jobs, key=lambda j: (j["rule"], json.dumps(j["wildcards"], sort_keys=True))):
        row = {k: job[k] for k in COST_COLUMNS}
        row["wildcards"] = ",".join(f"{k}={v}" for k, v in sorted(job["wildcards"].items()))
        row["wall_seconds"] = round(job["wall_seconds"], 3)
        row["device_hours"] = round(job["device_hours"], 6)
        rows.append(row)
    return rows


def read_metadata(workdir=".") -> dict[str, dict]:
    """Snakemake's record of each output file: {path: {rule, input}}."""
    records = {}
    root = Path(workdir) / ".snakemake" / "metadata"
    for entry in root.rglob("*"):
        if not entry.is_file():
            continue
        # Snakemake names a record by the urlsafe base64 of the path, split into "@"-prefixed
        # folders where it is longer than a file name may be.
        encoded = "".join(part.lstrip("@") for part in entry.relative_to(root).parts)
        try:
            path = base64.urlsafe_b64decode(encoded).decode()
            record = json.loads(entry.read_text())
        except (ValueError, UnicodeDecodeError, OSError):
            continue
        records[path] = {"rule": record.get("rule"), "input": record.get("input") or []}
    return records


def job_of_output(path: str, record: dict, jobs: list[dict]) -> dict | None:
    """The benchmarked job that wrote `path`: same rule, same inputs, and every wildcard
    value in the output's path (jobs of one rule may share their inputs)."""
    for job in jobs:
        if job["rule"] != record["rule"] or job["inputs"] != sorted(record["input"]):
            continue
        if all(str(v) in path for v in job["wildcards"].values()):
            return job
    return None


def upstream_jobs(result: str, metadata: dict[str, dict], jobs: list[dict]) -> list[dict]:
    """Every benchmarked job whose output `result` depends on, itself included."""
    seen: dict[str, dict] = {}
    pending = [result]
    visited = set()
    while pending:
        path = pending.pop()
        if path in visited or path not in metadata:
            continue
        visited.add(path)
        job = job_of_output(path, metadata[path], jobs)
        if job is not None:
            seen[job["benchmark"]] = job
        pending.extend(metadata[path]["input"])
    return list(seen.values())


def result_row(result: str, upstream: list[dict]) -> dict:
    gpu_hours = sum(j["device_hours"] for j in upstream if j["gpus"])
    core_hours = sum(j["device_hours"] for j in upstream if not j["gpus"])
    return {
        "result": result,
        "jobs": len(upstream),
        "wall_seconds": round(sum(j["wall_seconds"] for j in upstream), 3),
        "gpu_hours": round(gpu_hours, 6),
        "core_hours": round(core_hours, 6),
        "device_hours": round(gpu_hours + core_hours, 6),
    }
