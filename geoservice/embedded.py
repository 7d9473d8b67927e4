"""A private PostGIS cluster under the data directory, for when no ``DATABASE_URL`` is given.

The cluster listens on 127.0.0.1 only, on a port chosen when it starts. It has two roles:
``geoservice_admin``, the superuser that creates the database and the PostGIS extension (the
privileged set-up step), and ``geoservice``, the role the service connects as, which owns the
database and its schema and nothing else (not a superuser: a leaked connection cannot read
files or run programs). Both generated passwords are kept in ``cluster.json``, mode 0600,
readable by the user that runs the service only. PostgreSQL refuses to run as root, so when
this process is root (CI, containers) every server command runs as the ``postgres`` user.
"""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from core.errors import SetupError

SERVER_USER = "postgres"
DB_NAME = "geoservice"
DB_USER = "geoservice"  # the service's role: owns its database, not a superuser
ADMIN_USER = "geoservice_admin"  # the superuser, for set-up steps only
_SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")
_START_TIMEOUT_S = 90


def install_hint(major: int | None, *, postgis_only: bool) -> str:
    """The exact package names to install, for the platforms we support."""
    if platform.system() == "Darwin":
        return "brew install postgis" if postgis_only else "brew install postgresql postgis"
    pkg = f"postgresql-{major}-postgis-3" if major else "postgresql-<major>-postgis-3"
    if postgis_only:
        return f"sudo apt-get install {pkg}"
    server = f"postgresql-{major}" if major else "postgresql"
    return f"sudo apt-get install {server} {pkg}"


@dataclass(frozen=True)
class PgInstall:
    """One PostgreSQL server installation found on this machine."""

    bin_dir: Path
    major: int
    version: str
    share_dir: Path

    @property
    def has_postgis(self) -> bool:
        """PostGIS is installed for this server when its extension control file is present."""
        return (self.share_dir / "extension" / "postgis.control").is_file()

    def tool(self, name: str) -> str:
        """Absolute path of one of the server's programs."""
        return str(self.bin_dir / name)


def _candidate_bin_dirs() -> Iterator[Path]:
    """Where PostgreSQL server binaries usually live, best guesses first."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            yield Path(out.stdout.strip())
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    yield from debian
    for pattern in ("/opt/homebrew/opt/postgresql*/bin", "/usr/local/opt/postgresql*/bin"):
        root, _, glob = pattern.rpartition("/opt/")
        yield from sorted(Path(root + "/opt").glob(glob), reverse=True)
    postgres = shutil.which("postgres")
    if postgres:
        yield Path(postgres).parent


def inspect_bin_dir(bin_dir: Path) -> PgInstall | None:
    """Describe the server in ``bin_dir``, or ``None`` when it holds no usable server."""
    if not all((bin_dir / tool).is_file() for tool in _SERVER_TOOLS):
        return None
    out = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"(\d+)(?:\.(\d+))?", out.stdout)
    if out.returncode != 0 or not match:
        return None
    major = int(match.group(1))
    share_dir: Path | None = None
    pg_config = bin_dir / "pg_config"
    if pg_config.is_file():
        cfg = subprocess.run(
            [str(pg_config), "--sharedir"], capture_output=True, text=True, check=False
        )
        if cfg.returncode == 0 and cfg.stdout.strip():
            share_dir = Path(cfg.stdout.strip())
    if share_dir is None:
        debian_share = Path(f"/usr/share/postgresql/{major}")
        share_dir = debian_share if debian_share.is_dir() else bin_dir.parent / "share"
    return PgInstall(bin_dir=bin_dir, major=major, version=match.group(0), share_dir=share_dir)


def find_postgres(bin_dir: Path | None = None) -> PgInstall:
    """Pick the newest PostgreSQL with PostGIS; fail naming the package to install if none."""
    dirs: Sequence[Path] = [bin_dir] if bin_dir is not None else list(_candidate_bin_dirs())
    found: list[PgInstall] = []
    seen: set[Path] = set()
    for candidate in dirs:
        resolved = candidate.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        install = inspect_bin_dir(candidate)
        if install is not None:
            found.append(install)
    with_postgis = [i for i in found if i.has_postgis]
    if with_postgis:
        return max(with_postgis, key=lambda i: i.major)
    if found:
        best = max(found, key=lambda i: i.major)
        raise SetupError(
            f"PostgreSQL {best.major} was found in {best.bin_dir}, but PostGIS is not installed "
            f"for it (no {best.share_dir / 'extension' / 'postgis.control'}). "
            f"Install it with: {install_hint(best.major, postgis_only=True)}",
            code="postgis_missing",
        )
    where = (
        str(bin_dir)
        if bin_dir is not None
        else "the usual places (pg_config, /usr/lib/postgresql/*/bin)"
    )
    raise SetupError(
        f"No PostgreSQL server (initdb, pg_ctl, postgres) was found in {where}. "
        f"Install PostgreSQL with PostGIS: {install_hint(None, postgis_only=False)} "
        "(Debian bookworm: postgresql-15 postgresql-15-postgis-3), or set DATABASE_URL "
        "to an existing PostGIS database.",
        code="postgresql_missing",
    )


def memory_conf() -> dict[str, str]:
    """Memory settings sized to the machine, as a tuned server would have.

    PostgreSQL's defaults (128 MB of shared buffers) make a national layer of a million
    polygons spill to the OS cache on every index probe; a quarter of the RAM, at most 2 GB,
    keeps it in the cluster's own cache.
    """
    try:
        ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError, AttributeError):
        return {}
    return {
        "shared_buffers": f"'{max(128, min(ram_mb // 4, 2048))}MB'",
        "effective_cache_size": f"'{max(512, ram_mb // 2)}MB'",
        "work_mem": "'32MB'",
        "maintenance_work_mem": f"'{max(64, min(ram_mb // 16, 1024))}MB'",
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    # SO_REUSEADDR as PostgreSQL binds: connections the server just closed (TIME_WAIT) do
    # not keep it from listening again on its own port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class ClusterStatus:
    """What ``geoservice db status`` reports."""

    directory: Path
    initialized: bool
    running: bool
    port: int | None
    url: str | None
    postgres_bin: Path | None


class EmbeddedCluster:
    """Initialise, start, stop and describe the project's own PostGIS cluster."""

    def __init__(
        self,
        root: Path,
        *,
        bin_dir: Path | None = None,
        extra_conf: dict[str, str] | None = None,
    ) -> None:
        self.root = root.expanduser().resolve()
        self.pgdata = self.root / "data"
        self.state_file = self.root / "cluster.json"
        self.log_file = self.root / "postgres.log"
        self._bin_dir = bin_dir
        self._install: PgInstall | None = None
        self.extra_conf = extra_conf or {}

    # -- discovery -------------------------------------------------------------------------
    @property
    def install(self) -> PgInstall:
        """The server installation, found lazily so ``status`` works without one."""
        if self._install is None:
            self._install = find_postgres(self._bin_dir)
        return self._install

    @property
    def run_as(self) -> str | None:
        """The system user server commands run as: ``postgres`` when we are root."""
        return SERVER_USER if hasattr(os, "geteuid") and os.geteuid() == 0 else None

    # -- state -----------------------------------------------------------------------------
    def _read_state(self) -> dict[str, object]:
        if not self.state_file.is_file():
            return {}
        data: dict[str, object] = json.loads(self.state_file.read_text(encoding="utf-8"))
        return data

    def _write_state(self, state: dict[str, object]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=2)
        tmp.replace(self.state_file)

    @property
    def initialized(self) -> bool:
        """A cluster exists when initdb finished and the credentials were saved."""
        return (self.pgdata / "PG_VERSION").is_file() and self.state_file.is_file()

    def url(self, dbname: str = DB_NAME) -> str:
        """libpq URL the service connects with (it need not be running)."""
        state = self._read_state()
        if not state:
            raise SetupError(f"the embedded database in {self.root} has not been created yet")
        password = quote(str(state["password"]), safe="")
        return f"postgresql://{DB_USER}:{password}@127.0.0.1:{state['port']}/{dbname}"

    def admin_url(self, dbname: str = DB_NAME) -> str:
        """libpq URL of the superuser, for set-up steps (creating databases, extensions)."""
        state = self._read_state()
        if "admin_password" not in state:
            raise SetupError(f"the embedded database in {self.root} has not been created yet")
        password = quote(str(state["admin_password"]), safe="")
        return f"postgresql://{ADMIN_USER}:{password}@127.0.0.1:{state['port']}/{dbname}"

    # -- process plumbing ------------------------------------------------------------------
    def _run(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a server program, as the ``postgres`` user when we are root."""
        cmd = list(args)
        if self.run_as is not None:
            runuser = shutil.which("runuser")
            cmd = (
                [runuser, "-u", self.run_as, "--", *cmd]
                if runuser
                else ["su", "-s", "/bin/sh", self.run_as, "-c", " ".join(map(_sh_quote, cmd))]
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.setdefault("LC_ALL", "C")
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, cwd=self.root, check=False
        )
        if check and proc.returncode != 0:
            raise SetupError(
                f"{Path(args[0]).name} failed (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-2000:]}",
                code="embedded_db_failed",
            )
        return proc

    def _prepare_root(self) -> None:
        """Create the cluster folder so that the server user owns it and can reach it."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self.run_as is None:
            return
        try:
            shutil.chown(self.root, user=self.run_as, group=None)
        except LookupError as exc:
            raise SetupError(
                "This process runs as root and PostgreSQL refuses to run as root, but there is no "
                f"'{self.run_as}' system user to run it as. Install the PostgreSQL server package "
                f"({install_hint(None, postgis_only=False)}), which creates that user.",
                code="postgres_user_missing",
            ) from exc
        probe = self._run(["test", "-w", str(self.root)], check=False)
        if probe.returncode != 0:
            raise SetupError(
                f"The '{self.run_as}' system user cannot reach {self.root}: a parent folder is "
                "closed to other users. Point GEOSERVICE_DATA_DIR at a folder it can reach, for "
                "example /var/lib/geoservice.",
                code="data_dir_unreachable",
            )

    # -- lifecycle -------------------------------------------------------------------------
    def init(self) -> None:
        """Run initdb with a generated password; idempotent."""
        if self.initialized:
            return
        install = self.install
        self._prepare_root()
        if self.pgdata.exists():
            # A previous initdb was interrupted: start over rather than trust a half cluster.
            shutil.rmtree(self.pgdata)
        password = secrets.token_urlsafe(24)  # the superuser's
        pwfile = self.root / "initdb.pw"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(password + "\n")
        try:
            if self.run_as is not None:
                shutil.chown(pwfile, user=self.run_as, group=None)
            self._run(
                [
                    install.tool("initdb"),
                    "-D",
                    str(self.pgdata),
                    "-U",
                    ADMIN_USER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": "''",
            "max_connections": "100",
            "logging_collector": "off",
            **memory_conf(),
            **self.extra_conf,
        }
        with (self.pgdata / "postgresql.conf").open("a", encoding="utf-8") as fh:
            fh.write("\n# geoservice embedded cluster\n")
            fh.writelines(f"{key} = {value}\n" for key, value in conf.items())
        self._write_state(
            {
                "port": free_port(),
                "admin_password": password,
                "password": secrets.token_urlsafe(24),
                "postgres_bin": str(install.bin_dir),
            }
        )

    def is_running(self) -> bool:
        """Ask pg_ctl whether the postmaster of our data directory is alive."""
        if not (self.pgdata / "PG_VERSION").is_file():
            return False
        proc = self._run(
            [self.install.tool("pg_ctl"), "status", "-D", str(self.pgdata)], check=False
        )
        return proc.returncode == 0

    def start(self) -> str:
        """Start the cluster (creating it on first use) and return its URL."""
        self.init()
        if not self.is_running():
            state = self._read_state()
            port = int(str(state["port"]))
            if not _port_is_free(port):
                port = free_port()
                state["port"] = port
                self._write_state(state)
            self._run(
                [
                    self.install.tool("pg_ctl"),
                    "start",
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.log_file),
                    "-w",
                    "-t",
                    str(_START_TIMEOUT_S),
                    "-o",
                    f"-p {port}",
                ]
            )
        self._ensure_database()
        return self.url()

    def stop(self) -> bool:
        """Stop the cluster if it runs; returns whether it was running."""
        if not self.is_running():
            return False
        self._run([self.install.tool("pg_ctl"), "stop", "-D", str(self.pgdata), "-m", "fast", "-w"])
        return True

    def status(self) -> ClusterStatus:
        """Describe the cluster without changing anything."""
        initialized = self.initialized
        running = initialized and self.is_running()
        state = self._read_state()
        return ClusterStatus(
            directory=self.root,
            initialized=initialized,
            running=running,
            port=int(str(state["port"])) if state else None,
            url=self.url() if state else None,
            postgres_bin=Path(str(state["postgres_bin"])) if state else None,
        )

    def destroy(self) -> None:
        """Stop and delete the cluster and everything in it (used by throwaway test clusters)."""
        if self.initialized or self.pgdata.exists():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _ensure_database(self) -> None:
        """The privileged set-up step: the service role, its database and PostGIS."""
        state = self._read_state()
        if "admin_password" not in state:
            # Made by a version whose service connected as the (bootstrap) superuser, which
            # PostgreSQL does not let lose its rights: start such a cluster afresh.
            raise SetupError(
                f"The embedded database in {self.root} was made by an earlier version whose "
                "service connected as a superuser. Keep your files, then start afresh: "
                f"geoservice db stop; mv {self.root} {self.root}.old; geoservice db start "
                "(and load your layers again, or `geoservice serve --demo` for the demo).",
                code="embedded_db_outdated",
            )
        role, db = sql.Identifier(DB_USER), sql.Identifier(DB_NAME)
        with psycopg.connect(self.admin_url("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (DB_USER,))
            if exists.fetchone() is None:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        role, sql.Literal(str(state["password"]))
                    )
                )
            conn.execute(
                sql.SQL("ALTER ROLE {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS").format(
                    role
                )
            )
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
            if exists.fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(db, role))
        with psycopg.connect(self.admin_url(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def _sh_quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"
