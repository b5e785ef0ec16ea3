"""A user's own MTL domains: Parquet or JSONL files of {prompt, answer, domain} records (a
`task` column is optional and defaults to the domain), as the study's
`math__math_500.parquet`-style files. Every problem of every file is reported at once, each
with its file and line (JSONL) or row (Parquet), before any job starts.

`mtl.data.files` names the files per split: `train` and `test`, and `validation` optionally
(else `validation_per_task` records of each trained task are held out of `train`). A test
task that no training file has is evaluated only (out of distribution).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

FIELDS = ("prompt", "answer", "domain")
NAME = re.compile(r"^[A-Za-z0-9_-]+$")  # domains and tasks name losses and CSV columns
TINY_MAX_CHARACTERS = 120  # the tiny model's 128 positions, less <bos>, <eos> and a margin


class DataError(ValueError):
    pass


def read_rows(path) -> list[tuple[str, object]]:
    """(where, record) of each record of a JSONL or Parquet file; where = 'file, line N'."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pandas as pd

        frame = pd.read_parquet(path)
        return [
            (f"{path}, row {k + 1}", {key: _plain(v) for key, v in row.items()})
            for k, row in enumerate(frame.to_dict("records"))
        ]
    if path.suffix not in (".jsonl", ".json"):
        raise DataError(f"{path}: expected a .jsonl or .parquet file")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((f"{path}, line {number}", json.loads(line)))
        except json.JSONDecodeError as error:
            rows.append((f"{path}, line {number}", DataError(f"not JSON ({error.msg})")))
    return rows


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def record_problems(record, tiny: bool) -> list[str]:
    """What is wrong with one record (nothing: [])."""
    if isinstance(record, DataError):
        return [str(record)]
    if not isinstance(record, dict):
        return [f"expected an object with {', '.join(FIELDS)}"]
    problems = [f"missing '{k}'" for k in FIELDS if k not in record]
    for key in ("prompt", "domain", "answer"):
        value = record.get(key)
        if key in record and not (isinstance(value, str) and value.strip()):
            if key == "answer" and isinstance(value, int) and not isinstance(value, bool):
                continue  # an integer answer is its digits
            problems.append(f"'{key}' must be a non-empty string, not {value!r}")
    for key in ("domain", "task"):
        value = record.get(key)
        if isinstance(value, str) and value.strip() and not NAME.match(value):
            problems.append(f"'{key}' {value!r} must be letters, digits, '_' or '-'")
    if tiny and not problems:
        text = record["prompt"] + str(record["answer"])
        odd = sorted({c for c in text if not " " <= c <= "~"})
        if odd:
            problems.append(
                f"characters {odd} that the tiny model's tokenizer cannot read (printable "
                "ASCII only; a hub model's tokenizer reads anything)"
            )
        if len(text) > TINY_MAX_CHARACTERS:
            problems.append(
                f"prompt and answer are {len(text)} characters; the tiny model reads at most "
                f"{TINY_MAX_CHARACTERS}"
            )
    return problems


def load_files(paths: list[str], tiny: bool) -> list[dict]:
    """The records of some files as {prompt, answer, domain, task}; a DataError lists every
    problem found."""
    records, problems = [], []
    for path in paths:
        if not Path(path).is_file():
            problems.append(f"{path}: no such file")
            continue
        try:
            rows = read_rows(path)
        except DataError as error:
            problems.append(str(error))
            continue
        if not rows:
            problems.append(f"{path}: no records")
        for where, record in rows:
            found = record_problems(record, tiny)
            problems += [f"{where}: {p}" for p in found]
            if not found:
                records.append(
                    {
                        "prompt": record["prompt"],
                        "answer": str(record["answer"]).strip(),
                        "domain": record["domain"],
                        "task": record.get("task") or record["domain"],
                    }
                )
    if problems:
        more = [f"... and {len(problems) - 20} more"] if len(problems) > 20 else []
        raise DataError("invalid MTL data:\n  " + "\n  ".join(problems[:20] + more))
    return records


def user_splits(files: dict, validation_per_task: int, seed: int, tiny: bool) -> dict:
    """train, validation and test records from the user's files, each record marked with
    whether its task is trained. Stops where a test prompt is also a training prompt."""
    train = load_files(files["train"], tiny)
    test = load_files(files["test"], tiny)
    validation = load_files(files["validation"], tiny) if files.get("validation") else []
    seen = {r["prompt"] for r in train + validation}
    leaked = [r["prompt"] for r in test if r["prompt"] in seen]
    if leaked:
        raise DataError(
            f"invalid MTL data: {len(leaked)} test prompts are also training or validation "
            f"prompts, e.g. {leaked[0]!r}"
        )
    if not validation:
        train, validation = hold_out(train, validation_per_task, seed)
    trained = {r["task"] for r in train}
    splits = {"train": train, "validation": validation, "test": test}
    return {
        name: [{**r, "trained": r["task"] in trained} for r in records]
        for name, records in splits.items()
    }


def hold_out(records: list[dict], per_task: int, seed: int) -> tuple[list[dict], list[dict]]:
    """`per_task` distinct prompts of each task drawn for validation (one record each); every
    record of those prompts leaves training, so that none is both trained and validated."""
    rng = np.random.default_rng(seed)
    held_prompts: set[str] = set()
    held = []
    for task in dict.fromkeys(r["task"] for r in records):
        rows = list({r["prompt"]: r for r in records if r["task"] == task}.values())
        if len(rows) <= per_task:
            raise DataError(
                f"invalid MTL data: task {task!r} has {len(rows)} distinct training prompts, too "
                f"few to hold out mtl.data.validation_per_task = {per_task} (or give validation "
                "files)"
            )
        chosen = rng.choice(len(rows), size=per_task, replace=False).tolist()
        held += [rows[k] for k in sorted(chosen)]
        held_prompts.update(rows[k]["prompt"] for k in chosen)
    return [r for r in records if r["prompt"] not in held_prompts], held
