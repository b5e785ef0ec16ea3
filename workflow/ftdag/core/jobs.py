"""What every Snakemake job of ftdag shares: its log file and its share of the CPU."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path


@contextlib.contextmanager
def job_log(path, name: str):
    """Send logging, warnings and the progress bars (stderr) of the job into its log file; on
    failure the traceback lands there too, and the error is re-raised for Snakemake."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1) as log_file, contextlib.redirect_stderr(log_file):
        handler = logging.StreamHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        started = time.time()
        logging.getLogger("ftdag").info("%s started on %s", name, os.uname().nodename)
        try:
            yield logging.getLogger(f"ftdag.{name}")
        except BaseException:
            logging.getLogger("ftdag").exception("%s failed", name)
            raise
        finally:
            logging.getLogger("ftdag").info("%s ended after %.1f s", name, time.time() - started)
            root.removeHandler(handler)


def use_threads(threads: int) -> None:
    """Give torch exactly the cores Snakemake reserved for the job: more threads than cores
    make parallel jobs fight (measured 2.3x slower on 2 cores)."""
    import torch

    torch.set_num_threads(max(1, int(threads)))
    with contextlib.suppress(RuntimeError):  # only settable before the first parallel work
        torch.set_num_interop_threads(1)


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config runtime.device is 'cuda' but no GPU is visible to this job")
    return device
