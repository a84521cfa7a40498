"""Starting, probing, measuring and stopping the servers a benchmark runs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_debian_package(command: str, package: str) -> None:
    """Install ``package`` with apt-get when ``command`` is missing (we run as root)."""
    if shutil.which(command) or Path(f"/usr/sbin/{command}").exists():
        return
    print(f"installing {package} (apt-get)...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env)


class Server:
    """A server process in its own session, so that it and its children stop together.

    Every server started is remembered until stopped, so that `stop_all` can end those a
    failed start or an interruption left behind."""

    live: list[Server] = []

    def __init__(
        self, name: str, command: list[str], *, env: dict[str, str] | None = None, log: Path
    ) -> None:
        self.name = name
        self.log_path = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        Server.live.append(self)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def wait_http(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log()}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status < 500:
                        return
            except urllib.error.HTTPError as error:
                if error.code < 500:
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {url} in {timeout:.0f} s:\n{self.log()}")

    def rss_mib(self) -> float:
        """Resident memory of the process and all its descendants."""
        total_kib = 0
        for pid in _tree(self.process.pid):
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total_kib += int(line.split()[1])
        return total_kib / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        with contextlib.suppress(ValueError):
            Server.live.remove(self)


def stop_all() -> None:
    """Stop every server still running, the last started first."""
    for server in reversed(list(Server.live)):
        server.stop()


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def post_json(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, headers={"content-type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


#: The anchor venvs' locks: ``NAME.txt`` (compiled from ``NAME.in`` by ``make bench-lock``, every
#: package pinned with its hashes) is what ``benchmarks/.venvs/NAME`` installs, when it exists.
LOCKS = Path(__file__).resolve().parent / "requirements"


def _locked_venv(venv: Path, marker: Path) -> bool:
    """Install ``venv`` from its lock, ``LOCKS/NAME.txt``, exactly (hash-checked, nothing
    else), unless ``marker`` already holds the lock's sha256; a venv made from anything else
    (another lock, or no lock) is deleted first. False, and nothing done, when there is no lock."""
    lock = LOCKS / f"{venv.name}.txt"
    if not lock.exists():
        return False
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if marker.exists() and marker.read_text().strip() == digest:
        return True
    print(f"installing {lock} into {venv} ...", flush=True)
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--progress-bar", "off"]
    subprocess.run([*pip, "--require-hashes", "--no-deps", "-r", str(lock)], check=True)
    marker.write_text(digest + "\n")
    return True


def anchor_venv(
    name: str, distribution: str, version: str, extras: str = "", more: tuple[str, ...] = ()
) -> tuple[Path, str]:
    """An anchor in its own venv under ``benchmarks/.venvs/NAME``, installed on first use (and
    again when its lock changes): exactly its lock, ``benchmarks/requirements/NAME.txt``, where
    there is one; else the pinned ``version`` if installable, else the latest (with ``more``
    packages beside it). Returns the venv's python and the version installed."""
    venv = Path(__file__).resolve().parent / ".venvs" / name
    python = venv / "bin" / "python"
    installed = venv / ".installed"  # written once everything installed (the lock's sha256)
    if not _locked_venv(venv, installed) and not installed.exists():
        print(f"installing {distribution}{extras}=={version} into {venv} ...", flush=True)
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--progress-bar", "off"]
        try:
            subprocess.run([*pip, f"{distribution}{extras}=={version}", *more], check=True)
        except subprocess.CalledProcessError:
            print(f"{distribution} {version} is not installable; the latest", flush=True)
            subprocess.run([*pip, f"{distribution}{extras}", *more], check=True)
        installed.touch()
    found = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({distribution!r}))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return python, found


def torch_venv(name: str, packages: tuple[str, ...]) -> Path:
    """The python of an anchor venv under ``benchmarks/.venvs/NAME`` that needs torch,
    installed on first use (and again when its lock changes): exactly its lock,
    ``benchmarks/requirements/NAME.txt`` (the CPU build of torch among it), where there is one;
    else the CPU build of torch first (so nothing pulls a CUDA build), then ``packages``."""
    venv = Path(__file__).resolve().parent / ".venvs" / name
    python = venv / "bin" / "python"
    done = venv / ".ok"  # written once everything installed (the lock's sha256)
    if not _locked_venv(venv, done) and not done.exists():
        print(f"installing {', '.join(packages)} into {venv} ...", flush=True)
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--progress-bar", "off"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)
        subprocess.run([*pip, *packages], check=True)
        done.touch()
    return python
