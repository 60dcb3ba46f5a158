"""A throwaway PostgreSQL cluster of a test's own (initdb into a temporary directory, own port), for
tests that make the database go away. The shared PostgreSQL is never stopped by a test.

    cluster = OwnPostgres.create()   # None (with cluster.why) when it cannot be made quickly
    cluster.start(); cluster.stop(); cluster.destroy()
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from own_redis import free_port

CREATE_WITHIN = 30.0  # seconds initdb may take on a busy machine before the test skips


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class OwnPostgres:
    """initdb'd into its own directory (trust auth), listening on 127.0.0.1:port only."""

    def __init__(self, bin_dir: Path, directory: Path) -> None:
        self.bin_dir, self.directory = bin_dir, directory
        self.data = directory / "data"
        self.port = free_port()
        # initdb and postgres refuse to run as root: run them as the postgres user then
        self._as: list[str] = []
        if os.geteuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def create(cls) -> tuple[OwnPostgres | None, str]:
        """(cluster, "") or (None, why not)."""
        bin_dir = _bin_dir()
        if bin_dir is None:
            return None, "no /usr/lib/postgresql/*/bin/initdb"
        if os.geteuid() == 0 and (shutil.which("runuser") is None or not _has_user("postgres")):
            return None, "running as root without a postgres user to run initdb as"
        directory = Path(tempfile.mkdtemp(prefix="ztc-own-pg-"))  # not under pytest's root-only tmp
        cluster = cls(bin_dir, directory)
        if cluster._as:
            shutil.chown(directory, "postgres")
        started = time.monotonic()
        try:
            subprocess.run([*cluster._as, str(bin_dir / "initdb"), "-D", str(cluster.data), "-A", "trust",
                            "-U", "postgres", "-E", "UTF8", "--no-sync", "--locale=C.UTF-8"],
                           check=True, capture_output=True, timeout=CREATE_WITHIN)
        except (subprocess.SubprocessError, OSError) as exc:
            cluster.destroy()
            return None, f"initdb failed or took over {CREATE_WITHIN:.0f}s: {exc}"
        return cluster, f"initdb took {time.monotonic() - started:.1f}s"

    def _ctl(self, *args: str) -> None:
        subprocess.run([*self._as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args],
                       check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        # fsync off: the machine does not crash, only the server; commits stay synchronous (an
        # immediate stop must not lose what was committed)
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-o", options, "-l", str(self.directory / "postgres.log"), "-w", "start")

    def stop(self) -> None:
        """Immediate shutdown: connections are cut as in a crash."""
        self._ctl("-m", "immediate", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        if self.running():
            try:
                self.stop()
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(self.directory, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
