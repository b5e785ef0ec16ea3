"""Benchmark: the compare family of the embedded default, from a clean results folder.

Four measurements, each in its own scratch working directory, written to one JSON file:
- clean: `snakemake --cores N results/compare/report.md`: wall, jobs, compute share, the
  requests each model's answers made, fine-tuning jobs on the local server, the metrics;
- rerun: a dry-run after it (nothing to do), then every answers job forced to run again:
  requests made (0: all from the cache);
- concurrency: the baseline's answers job run with `compare.api.concurrency` 1 and 8, its
  cache emptied each time, side by side: requests per second as the job's client saw them
  (30 requests a run, so short that the server's start and the client's threads weigh in);
  and the same model behind the local server asked 240 questions at concurrency 1 and 8, and
  60 with 100 ms added to every answer (as a remote endpoint's latency would);
- faults: the clean run again with 30% of the local server's responses failing on every
  endpoint (10% 429, 10% 500, 10% stalled), fine-tune included: wall against the clean run,
  items answered, fine-tuning jobs created.

    python benchmarks/compare_campaign.py [--cores 2] [--out FILE] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from campaign import REPO, by_rule, job_table, machine, planned_jobs, snakemake  # noqa: E402
from ftdag.core.io import write_json  # noqa: E402

TARGET = "results/compare/report.md"
BASELINE_ANSWERS = "results/compare/answers/baseline.jsonl"
FAULTS = {
    "rate_limit": 0.1,
    "server_error": 0.1,
    "stall": 0.1,
    "stall_seconds": 2.0,
    "retry_after": 0.5,
    "scope": "all",
}


def config_file(workdir: Path, compare: dict) -> list[str]:
    path = workdir / "bench_config.yaml"
    path.write_text(yaml.safe_dump({"compare": compare}))
    return ["--configfile", str(path)]


def runs(results: Path) -> dict:
    return {
        p.name.removesuffix(".run.json"): json.loads(p.read_text())
        for p in sorted((results / "compare/answers").glob("*.run.json"))
    }


def server_jobs(results: Path) -> list[dict]:
    state = results / "compare/server/state.json"
    jobs = json.loads(state.read_text()).get("jobs", []) if state.exists() else []
    return [{"id": j["id"], "status": j["status"], "model": j["fine_tuned_model"]} for j in jobs]


def answered(results: Path) -> dict:
    """Per model: items, and items whose answer is empty (an error would have stopped the job)."""
    found = {}
    for path in sorted((results / "compare/answers").glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        found[path.stem] = {"items": len(rows), "empty": sum(not r["answer"] for r in rows)}
    return found


def campaign(workdir: Path, cores: int, compare: dict | None = None) -> dict:
    """The family from clean in `workdir` (`compare`: config merged over the default's):
    wall, jobs, requests, server jobs, metrics."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    config = config_file(workdir, compare) if compare else []
    planned = snakemake(workdir, TARGET, "-n", "--quiet", "rules", *config)
    started = time.perf_counter()
    snakemake(workdir, "--cores", str(cores), TARGET, *config)
    wall = time.perf_counter() - started
    results = workdir / "results"
    jobs, core_seconds = job_table(results / "benchmarks/compare")
    metrics = pd.read_csv(results / "compare/metrics.csv")
    return {
        "wall_seconds": round(wall, 1),
        "jobs_planned": planned_jobs(planned),
        "jobs_run": len(jobs),
        "compute_share": round(core_seconds / (wall * cores), 3),
        "by_rule": by_rule(jobs),
        "answer_runs": runs(results),
        "answered": answered(results),
        "fine_tuning_jobs_on_server": server_jobs(results),
        "metrics": metrics.round(4).to_dict("records"),
    }


def rerun(workdir: Path, cores: int) -> dict:
    dry = snakemake(workdir, TARGET, "-n")
    snakemake(workdir, "--cores", str(cores), TARGET, "--forcerun", "compare_answers")
    forced = runs(workdir / "results")
    return {
        "dry_run_says_nothing_to_do": "Nothing to be done" in dry.stdout + dry.stderr,
        "forced_answers_requests": {name: r["requests"] for name, r in forced.items()},
        "forced_answers_cache_hits": {name: r["cache_hits"] for name, r in forced.items()},
    }


def concurrency(workdir: Path, repeats: int) -> dict:
    """The baseline's answers job, its cache emptied, at concurrency 1 and 8, interleaved."""
    seen: dict[int, list[float]] = {1: [], 8: []}
    for _ in range(repeats):
        for level in seen:
            shutil.rmtree(workdir / "results/compare/cache", ignore_errors=True)
            config = config_file(workdir, {"api": {"concurrency": level}})
            # mtime triggers only: the changed concurrency must not rerun anything upstream
            args = ["--forcerun", "compare_answers", "--rerun-triggers", "mtime", *config]
            snakemake(workdir, "--cores", "2", BASELINE_ANSWERS, *args)
            run = runs(workdir / "results")["baseline"]
            assert run["concurrency"] == level and run["cache_hits"] == 0, run
            seen[level].append(run["requests"] / run["ask_seconds"])
    per_level = {
        str(level): {
            "requests_per_second": round(statistics.median(rates), 1),
            "runs": [round(r, 1) for r in rates],
        }
        for level, rates in seen.items()
    }
    ratio = per_level["8"]["requests_per_second"] / per_level["1"]["requests_per_second"]
    return {**per_level, "speedup_8_over_1": round(ratio, 2)}


def server_concurrency(workdir: Path, copies: int, repeats: int, latency: float = 0.0) -> dict:
    """Requests per second against the local server (in this process, as in an answers job;
    one torch thread), at concurrency 1 and 8, interleaved: the campaign's baseline model
    asked about its test images `copies` times over, with no cache. `latency`: seconds added
    to every answer, as a remote endpoint's network and queue would."""
    import dataclasses

    import torch

    from ftdag.compare.inference import ApiModel, Settings, ask
    from ftdag.compare.server import campaign_backends, serve
    from ftdag.core.config import schema_defaults

    torch.set_num_threads(1)
    results = workdir / "results"
    images = [r["image"] for r in map(json.loads, (results / "compare/data/test.jsonl").open())]
    prompt, sampling = (schema_defaults()["compare"][k] for k in ("prompt", "sampling"))
    os.environ["FTDAG_BENCH_KEY"] = "bench-local-key"
    state = workdir / "bench_server"
    backends = campaign_backends(state, results / "compare/models/base")
    if latency:
        chat = backends.chat
        backends = dataclasses.replace(
            backends, chat=lambda *args: time.sleep(latency) or chat(*args)
        )
    seen: dict[int, list[float]] = {1: [], 8: []}
    with serve(state, os.environ["FTDAG_BENCH_KEY"], backends) as handle:
        settings = Settings(sampling["temperature"], sampling["max_tokens"])
        model = ApiModel("ftdag-vlm-base", handle.base_url, "FTDAG_BENCH_KEY", settings)
        ask(model, prompt, images[:4], None, 1)  # load the model before timing
        for _ in range(repeats):
            for level in seen:
                started = time.perf_counter()
                ask(model, prompt, images * copies, None, level)
                seen[level].append(len(images) * copies / (time.perf_counter() - started))
    rates = {level: statistics.median(values) for level, values in seen.items()}
    return {
        "requests_per_run": len(images) * copies,
        "added_latency_seconds": latency,
        **{str(level): [round(v, 1) for v in values] for level, values in seen.items()},
        "requests_per_second": {str(level): round(rate, 1) for level, rate in rates.items()},
        "speedup_8_over_1": round(rates[8] / rates[1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/compare.json")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ftdag-bench-compare-"))
    os.environ.pop("OPENAI_API_KEY", None)  # the jobs make one up for the local server
    clean = campaign(root / "clean", args.cores)
    result = {
        "target": TARGET,
        "config": "the embedded default",
        "cores": args.cores,
        "machine": machine(),
        "clean": clean,
        "rerun": rerun(root / "clean", args.cores),
        "concurrency_in_the_workflow": concurrency(root / "clean", args.repeats),
        "concurrency_against_the_server": server_concurrency(root / "clean", 8, args.repeats),
        "concurrency_with_100ms_latency": server_concurrency(root / "clean", 2, args.repeats, 0.1),
    }
    faulty = campaign(root / "faults", args.cores, {"api": {"faults": FAULTS}})
    result["faults"] = {
        "settings": FAULTS,
        **faulty,
        "wall_over_clean": round(faulty["wall_seconds"] / clean["wall_seconds"], 2),
    }
    write_json(args.out, result)
    print(json.dumps(result, indent=2))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
