"""A fine-tune whose rank 0 saves slowly, for the DDP shutdown test: launched by module path
(`slow_save:finetune`) under torchrun, with this folder on PYTHONPATH.

Each process writes when it ends (`exit_rank<N>`), and rank 0 when its save finished
(`saved`), into the folder named by FTDAG_TEST_TIMES."""

from __future__ import annotations

import atexit
import os
import time
from pathlib import Path

import ftdag.core.model
from ftdag.core import distributed
from ftdag.exp3 import steps

SLOW_SAVE_SECONDS = 3.0


def _stamp(name: str) -> None:
    Path(os.environ["FTDAG_TEST_TIMES"], name).write_text(repr(time.time()))


def finetune(**kwargs) -> None:
    save = ftdag.core.model.save_model

    def slow_save(*args, **kw):
        save(*args, **kw)
        time.sleep(SLOW_SAVE_SECONDS)
        _stamp("saved")

    ftdag.core.model.save_model = slow_save
    atexit.register(_stamp, f"exit_rank{distributed.rank()}")
    steps.finetune(**kwargs)
