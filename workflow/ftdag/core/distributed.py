"""Several training processes for one job: DDP, one process per GPU, started with torchrun.

A training rule that gets `gpu: N` (N > 1) from its profile runs N processes; each takes its
share of every global batch and DDP averages their gradients, so the run matches a single
process with the same global batch. On a machine without GPUs the processes use the gloo
backend on the CPU (that is how the tests run it).

    launch("ftdag.exp3.steps:pretrain", {...}, processes=4, threads=8)   # from a rule's script
    python -m ftdag.core.distributed SPEC.json          # what torchrun starts, once per rank

The function to run is named by module path, so this module imports no family.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger("ftdag.core.distributed")


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main() -> bool:
    """The process that logs, writes checkpoints and saves the model."""
    return rank() == 0


def barrier() -> None:
    import torch.distributed as dist

    if world_size() > 1:
        dist.barrier()


def processes_for(resources) -> int:
    """Training processes for a job's resources: its GPU count (`gpu: N`, or a `gres` such as
    'gpu:a100:4'), at least one."""
    from ftdag.core.cost import gpus_of

    return max(1, gpus_of(resources))


def resolve(target: str):
    """The function named by `package.module:function`."""
    module, _, name = target.partition(":")
    if not name:
        raise ValueError(f"launch target {target!r}: expected 'package.module:function'")
    return getattr(importlib.import_module(module), name)


def launch(target: str, kwargs: dict, processes: int, threads: int) -> None:
    """Run the function `target` ('package.module:function') with `kwargs`: in this process,
    or in `processes` processes under torchrun. `threads` is each process's share of the CPU."""
    function = resolve(target)
    if processes <= 1:
        function(**kwargs)
        return
    if kwargs.get("device", "cpu").startswith("cuda"):
        import torch

        if torch.cuda.device_count() < processes:
            raise RuntimeError(
                f"{processes} training processes need {processes} GPUs, but this job sees "
                f"{torch.cuda.device_count()} (check the rule's gpu resource in your profile)"
            )
    with tempfile.TemporaryDirectory(prefix="ftdag-launch-") as tmp:
        spec = Path(tmp) / "spec.json"
        spec.write_text(json.dumps({"target": target, "kwargs": kwargs}))
        package_root = str(Path(__file__).resolve().parent.parent)
        env = {
            **os.environ,
            # The workers import ftdag whether or not it is installed.
            "PYTHONPATH": os.pathsep.join(
                filter(None, [package_root, os.environ.get("PYTHONPATH")])
            ),
            "OMP_NUM_THREADS": str(max(1, threads)),
        }
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",  # one node; a free rendezvous port, so jobs can share a node
            f"--nproc-per-node={processes}",
            "-m",
            "ftdag.core.distributed",
            str(spec),
        ]
        log.info("launching %d training processes: %s", processes, " ".join(command))
        sys.stderr.flush()
        child = subprocess.Popen(command, env=env, stdout=sys.stderr, stderr=sys.stderr)
        stopped = []

        def note(signum, _frame):
            # SLURM (scancel, time limit, preemption) and Snakemake signal every process of
            # the job, torchrun and its workers included: they checkpoint and stop, and this
            # process waits for them instead of dying first. Forwarding the signal would
            # reach torchrun twice, and a second signal kills it mid-shutdown.
            stopped.append(signum)

        previous = signal.signal(signal.SIGTERM, note)
        try:
            code = child.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)
    if stopped:
        from ftdag.core.checkpoint import Preempted

        raise Preempted()
    if code != 0:
        raise RuntimeError(f"torchrun exited with {code}; the workers' errors are above")


def _worker(spec_path: str) -> None:
    import torch
    import torch.distributed as dist

    from ftdag.core.jobs import use_threads

    spec = json.loads(Path(spec_path).read_text())
    kwargs = spec["kwargs"]
    local_rank = int(os.environ["LOCAL_RANK"])
    if kwargs.get("device", "cpu").startswith("cuda"):
        torch.cuda.set_device(local_rank)
        kwargs["device"] = f"cuda:{local_rank}"
        backend = "nccl"
    else:
        backend = "gloo"
    use_threads(int(os.environ["OMP_NUM_THREADS"]))  # set by launch()
    logging.basicConfig(
        level=logging.INFO if local_rank == 0 else logging.WARNING,
        format=f"%(asctime)s rank{local_rank} %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    dist.init_process_group(backend)
    try:
        resolve(spec["target"])(**kwargs)
        # An orderly end: no process leaves while another still works. A process that
        # returned early (only rank 0 saves the model) and closed its connections under a
        # rank 0 still saving made rank 0 abort at exit ("terminate called without an active
        # exception"), failing a finished training.
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    _worker(sys.argv[1])
