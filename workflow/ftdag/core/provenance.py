"""Where a result came from: the config values it depends on (as a hash), the code version,
the package versions and the device that computed it.

Every metrics CSV gets a sidecar `<file>.provenance.json`; every summary JSON carries the same
under its `provenance` key. Same config and seed on the same machine give the same values;
across CPU models, thread counts or library versions floating-point order differs, so the
device and versions are recorded beside each number.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from ftdag.core.io import write_json

PACKAGES = ("torch", "transformers", "peft", "snakemake", "numpy", "pandas")
SUFFIX = ".provenance.json"
REPO = Path(__file__).resolve().parents[3]


def config_hash(values) -> str:
    """A short, stable hash of config values (key order does not matter)."""
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.cache
def code_version() -> dict:
    """The git commit of the workflow and whether its tracked files differ from it; outside a
    git checkout, the installed package version."""
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
        return {"git_commit": commit, "dirty": dirty}
    except (OSError, subprocess.CalledProcessError):
        return {"package_version": _version("ftdag")}


def _git(*args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True, timeout=10
    )
    return result.stdout.strip()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def versions() -> dict:
    return {"python": platform.python_version(), **{p: _version(p) for p in PACKAGES}}


@functools.cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str = "cpu") -> str:
    """The GPU's name for a cuda device, else the CPU model."""
    if str(device).startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return cpu_model()


def provenance(config_values_hash: str, device: str = "cpu", inputs=()) -> dict:
    """The provenance record of a result computed here from config values hashed as given.
    `inputs`: files whose sidecars are read, so that a table aggregated here also names the
    devices that computed its parts."""
    devices = {device_name(device)}
    for path in inputs:
        upstream = read_sidecar(path)
        if upstream:
            devices.update(upstream.get("devices", []))
    return {
        "config_hash": config_values_hash,
        "code": code_version(),
        "versions": versions(),
        "devices": sorted(devices),
    }


def sidecar_path(path) -> Path:
    return Path(str(path) + SUFFIX)


def write_sidecar(path, record: dict) -> None:
    write_json(sidecar_path(path), {"file": Path(path).name, **record})


def read_sidecar(path) -> dict | None:
    sidecar = sidecar_path(path)
    if not sidecar.exists():
        return None
    return json.loads(sidecar.read_text())


def provenance_line(record: dict) -> str:
    """The line a verdict or report ends with: config hash, code version, devices."""
    code = record["code"]
    version = code.get("git_commit", "")[:12] or f"ftdag {code.get('package_version')}"
    return (
        f"\nProvenance: config hash {record['config_hash']}, code {version}"
        f"{' (modified)' if code.get('dirty') else ''}, devices {', '.join(record['devices'])}.\n"
    )
