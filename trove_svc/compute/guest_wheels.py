"""The guest agent as wheels, for hosts that are not this machine.

Instances on other hosts run the agent from a wheel of ``guest/`` (and the wheels of what
it needs) in a virtual environment of its own there. The wheels are built once per version
of ``guest/``, named by a digest of its files, so a host's environment is made again only
when the agent changed; the host then needs no package index.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from trove_svc.process.settings import Settings

COMPLETE = ".complete"


def _source(settings: Settings) -> Path:
    return settings.ansible_dir / "guest"


def digest(settings: Settings) -> str:
    """Names this version of the guest agent: its sources' paths and contents."""
    source = _source(settings)
    files = sorted(
        path
        for path in source.rglob("*")
        if path.is_file()
        and (path.suffix == ".py" or path.name == "pyproject.toml")
        and "build" not in path.relative_to(source).parts
    )
    hashed = hashlib.sha256()
    for path in files:
        hashed.update(str(path.relative_to(source)).encode() + b"\0")
        hashed.update(path.read_bytes() + b"\0")
    return hashed.hexdigest()[:16]


def wheelhouse(settings: Settings) -> Path:
    """A directory of the agent's wheels and its dependencies', built if missing."""
    root = settings.state_dir / "guest-wheels"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = digest(settings)
    target = root / name
    if (target / COMPLETE).exists():
        return target
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / COMPLETE).exists():
            return target
        building = root / f"{name}.building"
        sources = root / f"{name}.sources"
        for leftover in (building, sources):
            shutil.rmtree(leftover, ignore_errors=True)
        # Built from a copy: setuptools writes build/ and egg-info beside the sources, in a
        # checkout the service's account may not write to (and a stale build/ there would
        # add old modules).
        shutil.copytree(
            _source(settings),
            sources,
            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
        )
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--wheel-dir",
                str(building),
                str(sources),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        shutil.rmtree(sources, ignore_errors=True)
        if done.returncode != 0:
            raise RuntimeError(f"building the guest agent's wheels failed: {done.stderr[-500:]}")
        (building / COMPLETE).touch()
        shutil.rmtree(target, ignore_errors=True)
        building.rename(target)
    return target
