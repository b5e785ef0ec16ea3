"""Six synthetic domains like the study's (math, logic, code, science, simulation, tabular),
19 evaluation tasks across them: each a generator of (prompt, answer) with one exact answer,
rewarded 1 when the answer is exactly right and 0 otherwise. Tasks marked `trained=False` are
out-of-distribution variants (longer inputs than any trained) that are only evaluated.

Prompts are short printable ASCII (the character-level tokenizer reads them); answers are a
number, a word or a short string.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Generator = Callable[[np.random.Generator], tuple[str, str]]


@dataclass(frozen=True)
class Task:
    name: str
    domain: str
    make: Generator
    trained: bool = True


def _int(rng, digits_low: int, digits_high: int) -> int:
    digits = int(rng.integers(digits_low, digits_high + 1))
    return int(rng.integers(10 ** (digits - 1), 10**digits))


# --- math ---------------------------------------------------------------------------------


def add(rng, digits=(2, 1)):
    """A number of digits[0] digits plus one of digits[1] (the default: 47+8=)."""
    a, b = _int(rng, digits[0], digits[0]), _int(rng, digits[1], digits[1])
    return f"{a}+{b}=", str(a + b)


def subtract(rng):
    a, b = _int(rng, 2, 2), _int(rng, 1, 1)
    return f"{a}-{b}=", str(a - b)


def multiply(rng):
    a, b = int(rng.integers(2, 10)), int(rng.integers(2, 10))
    return f"{a}*{b}=", str(a * b)


# --- logic --------------------------------------------------------------------------------


def boolean(rng, operators=(1, 2)):
    """A formula over T/F: a value, then `and`/`or` terms (a term may be `not X`), evaluated
    left to right without precedence, so that no brackets are needed."""
    value = bool(rng.integers(2))
    text = "T" if value else "F"
    for _ in range(int(rng.integers(operators[0], operators[1] + 1))):
        op = ("and", "or")[int(rng.integers(2))]
        operand, negated = bool(rng.integers(2)), bool(rng.integers(2))
        term = operand != negated
        value = (value and term) if op == "and" else (value or term)
        text += f" {op} {'not ' if negated else ''}{'T' if operand else 'F'}"
    return f"{text} ->", "T" if value else "F"


def sort_letters(rng):
    letters = rng.choice(list("abcdefghij"), size=int(rng.integers(3, 5)), replace=False)
    return f"sort {''.join(letters)}:", "".join(sorted(letters))


# --- code ---------------------------------------------------------------------------------


def program(rng, statements=(2, 3)):
    """x=N; then statements x=x+k / x=x*k / x=x-k; print x."""
    x = int(rng.integers(1, 10))
    parts = [f"x={x}"]
    for _ in range(int(rng.integers(statements[0], statements[1] + 1))):
        op, k = "+*-"[int(rng.integers(3))], int(rng.integers(1, 4))
        x = x + k if op == "+" else x * k if op == "*" else x - k
        parts.append(f"x=x{op}{k}")
    return ";".join(parts) + ";print x:", str(x)


def list_index(rng):
    items = [int(v) for v in rng.integers(0, 10, size=int(rng.integers(3, 6)))]
    i = int(rng.integers(len(items)))
    return f"a=[{','.join(map(str, items))}];print a[{i}]:", str(items[i])


# --- science ------------------------------------------------------------------------------

_UNITS = {  # (from, to): factor
    ("km", "m"): 1000,
    ("m", "cm"): 100,
    ("kg", "g"): 1000,
    ("h", "min"): 60,
    ("min", "s"): 60,
}


def convert(rng, digits=(1, 2)):
    (source, target), factor = list(_UNITS.items())[int(rng.integers(len(_UNITS)))]
    value = _int(rng, *digits)
    return f"{value} {source} in {target}:", str(value * factor)


def speed(rng):
    hours = int(rng.integers(1, 6))
    rate = int(rng.integers(2, 30)) * 5
    return f"{rate * hours} km in {hours} h, km/h:", str(rate)


# --- simulation ---------------------------------------------------------------------------


def rule90_step(cells: str) -> str:
    """Rule 90: a cell becomes the XOR of its two neighbours (edges see 0)."""
    padded = "0" + cells + "0"
    return "".join(str(int(padded[i - 1] != padded[i + 1])) for i in range(1, len(cells) + 1))


def automaton(rng, width=(5, 6), steps=1):
    cells = "".join(
        str(v) for v in rng.integers(0, 2, size=int(rng.integers(width[0], width[1] + 1)))
    )
    state = cells
    for _ in range(steps):
        state = rule90_step(state)
    return f"r90 x{steps} {cells}:", state


# --- tabular ------------------------------------------------------------------------------


def _table(rng, rows, distinct=False):
    """Single-letter keys, single-digit values (distinct values: one largest)."""
    keys = rng.choice(list("abcdefghij"), size=rows, replace=False)
    values = rng.choice(10, size=rows, replace=not distinct)
    return {str(k): int(v) for k, v in zip(keys, values, strict=True)}


def _render(table):
    return " ".join(f"{k}={v}" for k, v in table.items())


def lookup(rng, rows=(2, 3)):
    table = _table(rng, int(rng.integers(rows[0], rows[1] + 1)))
    key = list(table)[int(rng.integers(len(table)))]
    return f"{_render(table)}; {key}?", str(table[key])


def max_key(rng):
    table = _table(rng, int(rng.integers(2, 4)), distinct=True)
    return f"{_render(table)}; max?", max(table, key=table.get)


TASKS: tuple[Task, ...] = (
    Task("add", "math", add),
    Task("subtract", "math", subtract),
    Task("multiply", "math", multiply),
    Task("add_long", "math", lambda rng: add(rng, (3, 2)), trained=False),
    Task("boolean", "logic", boolean),
    Task("sort", "logic", sort_letters),
    Task("boolean_long", "logic", lambda rng: boolean(rng, (4, 5)), trained=False),
    Task("program", "code", program),
    Task("list_index", "code", list_index),
    Task("program_long", "code", lambda rng: program(rng, (5, 6)), trained=False),
    Task("convert", "science", convert),
    Task("speed", "science", speed),
    Task("convert_large", "science", lambda rng: convert(rng, (3, 4)), trained=False),
    Task("automaton", "simulation", automaton),
    Task("automaton_2steps", "simulation", lambda rng: automaton(rng, steps=2)),
    Task("automaton_wide", "simulation", lambda rng: automaton(rng, (9, 10)), trained=False),
    Task("lookup", "tabular", lookup),
    Task("max_key", "tabular", max_key),
    Task("lookup_long", "tabular", lambda rng: lookup(rng, (7, 8)), trained=False),
)
DOMAINS = tuple(dict.fromkeys(t.domain for t in TASKS))
TASK_BY_NAME = {t.name: t for t in TASKS}


def sample(task: Task, n: int, rng: np.random.Generator) -> list[dict]:
    """`n` records of one task: {prompt, answer, domain, task}."""
    records = []
    for _ in range(n):
        prompt, answer = task.make(rng)
        records.append(
            {"prompt": prompt, "answer": answer, "domain": task.domain, "task": task.name}
        )
    return records


def reward(generated: str, answer: str) -> float:
    """1 for an exactly right answer (surrounding spaces aside), else 0."""
    return float(generated.strip() == answer.strip())
