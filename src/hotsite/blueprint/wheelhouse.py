"""The wheelhouse: hotsite and every runtime dependency as wheels, built on the controller.

A site's nodes reach no package index (a DR site must come up when the primary's region
and its mirrors are down), so the deployed agent is installed from a directory of wheels
uploaded from the controller (``pip install --no-index --find-links``). The controller
builds it with its own pip, which may reach an index.

What goes in: the runtime dependencies of pyproject.toml, each pinned to the version
installed beside this hotsite (the versions the controller runs and was tested with),
with their own dependencies pinned the same way, and a wheel of hotsite itself. The
project has no lock file: these pins are its lock.

Cached under ``$HOTSITE_CACHE`` (default ``~/.cache/hotsite``) ``/wheelhouse/<key>``,
the key being a digest of the Python version (major.minor: the wheels are for the
node's Python, assumed to be the controller's — Debian 12's 3.11), the pinned list,
hotsite's version and its source files (a changed checkout is another hotsite even
at the same version). A build goes to a temporary directory renamed into place when
complete, under a lock, so a crash or a concurrent build never leaves a half-filled
wheelhouse that looks finished.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import hotsite
from hotsite.errors import ConfigError
from hotsite.faults import fault_point

PACKAGE_DIR = Path(hotsite.__file__).resolve().parent
SOURCE_ROOT = PACKAGE_DIR.parents[1]  # src/hotsite -> the checkout, if this is one
BUILD_TIMEOUT = 900.0


def python_version() -> str:
    """major.minor of the Python the wheels are for (this one's)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def cache_root() -> Path:
    return Path(os.environ.get("HOTSITE_CACHE") or Path.home() / ".cache" / "hotsite")


def _project_table() -> dict[str, object] | None:
    pyproject = SOURCE_ROOT / "pyproject.toml"
    if not pyproject.is_file():
        return None
    project = tomllib.loads(pyproject.read_text()).get("project", {})
    return project if isinstance(project, dict) and project.get("name") == "hotsite" else None


def _direct_requirements() -> list[str]:
    project = _project_table()
    if project is not None:
        return [str(r) for r in project.get("dependencies", [])]  # type: ignore[attr-defined]
    return list(metadata.distribution("hotsite").requires or [])


def pinned_requirements() -> list[str]:
    """``name==version`` for every runtime dependency and theirs, as installed here."""
    pins: dict[str, str] = {}
    todo = list(_direct_requirements())
    while todo:
        requirement = Requirement(todo.pop())
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        if name in pins:
            continue
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            raise ConfigError(
                f"hotsite's dependency {requirement.name} is not installed on the controller,"
                " so its version for the wheelhouse is unknown",
                "install hotsite's dependencies here first (scripts/bootstrap)",
            ) from None
        pins[name] = dist.version
        todo += [r for r in dist.requires or [] if "extra ==" not in r]
    return sorted(f"{name}=={version}" for name, version in pins.items())


@functools.lru_cache(maxsize=4)
def _source_digest(root: Path, signature: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in signature:
        digest.update(name.encode())
        digest.update((root / name).read_bytes())
    return digest.hexdigest()


def source_digest() -> str:
    """hotsite's own files (cached by size and time: every render of a site asks)."""
    files = sorted(
        p for p in PACKAGE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    signature = tuple(
        (str(p.relative_to(PACKAGE_DIR)), p.stat().st_size, p.stat().st_mtime_ns) for p in files
    )
    return _source_digest(PACKAGE_DIR, signature)


@dataclass(frozen=True)
class Wheelhouse:
    key: str
    requirements: tuple[str, ...]
    root: Path

    @property
    def path(self) -> Path:
        return self.root / self.key

    @property
    def ready(self) -> bool:
        return (self.path / "requirements.txt").is_file()

    def build(self) -> Path:
        """The wheelhouse directory, built now if it is not in the cache yet."""
        if self.ready:
            return self.path
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the wheelhouse cache {self.root} ({exc.strerror})",
                "set HOTSITE_CACHE to a writable directory",
            ) from None
        with _locked(self.root / ".lock"):
            if self.ready:  # built by another process while we waited
                return self.path
            # What a build killed midway left (none runs now: we hold the lock).
            for stale in self.root.glob(".hotsite-*"):
                shutil.rmtree(stale, ignore_errors=True)
            work = Path(tempfile.mkdtemp(prefix=f".{self.key}-", dir=self.root))
            try:
                _fill(work, self.requirements)
                (work / "requirements.txt").write_text("\n".join(self.requirements) + "\n")
                fault_point("wheelhouse.before_rename")
                os.rename(work, self.path)  # complete, or not there at all
            finally:
                shutil.rmtree(work, ignore_errors=True)
        return self.path


def wheelhouse() -> Wheelhouse:
    """This hotsite's wheelhouse (its key is cheap to compute; nothing is built)."""
    requirements = tuple(pinned_requirements())
    digest = hashlib.sha256()
    for part in (python_version(), hotsite.__version__, *requirements, source_digest()):
        digest.update(part.encode() + b"\n")
    key = f"hotsite-{hotsite.__version__}-py{python_version()}-{digest.hexdigest()[:16]}"
    return Wheelhouse(key=key, requirements=requirements, root=cache_root() / "wheelhouse")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _pip(args: list[str], what: str) -> None:
    argv = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"building the agent's wheelhouse: {what} failed ({exc})") from None
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("ERROR")] or lines or ["no output"]
        raise ConfigError(
            f"building the agent's wheelhouse: {what} failed ({errors[-1][:300]})",
            "the controller needs a package index (or pip's cache) for its first build;"
            " check its network and pip configuration, then run the command again",
        )


def _fill(target: Path, requirements: tuple[str, ...]) -> None:
    pins = target / "pins.txt"
    pins.write_text("\n".join(requirements) + "\n")
    # Wheels as published (or built here from an sdist), every dependency at its pin.
    _pip(["wheel", "-q", "-w", str(target), "-r", str(pins)], "pip wheel of the dependencies")
    pins.unlink()
    _hotsite_wheel(target)


def _hotsite_wheel(target: Path) -> None:
    if _project_table() is None:  # an installed release: the index has its wheel
        version = hotsite.__version__
        _pip(
            ["download", "-q", "--no-deps", "-d", str(target), f"hotsite=={version}"],
            f"pip download of hotsite {version}",
        )
        return
    # From a copy of the checkout: building in place would leave build/ and *.egg-info
    # in it. With build isolation: pyproject's build backend (setuptools>=77) is fetched
    # like the other wheels; the venv's own setuptools may be older.
    with tempfile.TemporaryDirectory(prefix="hotsite-build-") as tmp:
        copy = Path(tmp)
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (SOURCE_ROOT / name).is_file():
                shutil.copy2(SOURCE_ROOT / name, copy / name)
        shutil.copytree(
            PACKAGE_DIR, copy / "src" / "hotsite", ignore=shutil.ignore_patterns("__pycache__")
        )
        _pip(
            ["wheel", "-q", "--no-deps", "-w", str(target), str(copy)],
            "building hotsite's own wheel",
        )
