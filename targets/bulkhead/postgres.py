"""PostgreSQL as a topology service: one throwaway cluster per instance.

Run as ``python targets/bulkhead/postgres.py`` with PORT and DATA_DIR set (the
runtime sets both). It finds the server binaries, runs ``initdb`` into
``$DATA_DIR/pgdata`` when there is no cluster yet (trust auth on 127.0.0.1,
superuser ``postgres``), then *execs* ``postgres``, so the pid the runtime
holds is the postmaster itself, and a
restart finds the same data (crash recovery, as a real database would).

It listens on BIND_HOST (default 127.0.0.1). In a container the runtime sets
BIND_HOST=0.0.0.0, and the clients (the run's Toxiproxy) connect from the
run's network, not from loopback: then pg_hba.conf also trusts ``samenet``
(the subnets the server is attached to, looked up per connection, so a
partition and heal need nothing). On loopback it is left as initdb wrote it.

PostgreSQL puts each child in a session of its own (setsid), out of the
postmaster's process group; the harness's runtime signals the whole process
tree (harness/runtime/processes.py), so a pause freezes every backend too.

PostgreSQL refuses to run as root. As root the cluster is run by the
``postgres`` system user (PG_OS_USER), with privileges dropped before initdb
and before the exec. That user must be able to reach the data directory; a
run folder under /work/... is, but pytest's tmp_path (under a 0700
/tmp/pytest-of-root) is not. Then the cluster goes to a world-traversable
folder ``$TMPDIR/harness-bulkhead-pg-<run>-<hash of DATA_DIR>`` and
``$DATA_DIR/pgdata`` is a symlink to it. Such folders are swept by the next
start once their DATA_DIR is gone and their postmaster is dead; whoever
removes a DATA_DIR early can follow the symlink and remove the target too.
"""

from __future__ import annotations

import glob
import grp
import hashlib
import ipaddress
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from targetkit import envconfig
from targetkit.envconfig import ConfigError

INSTALL_HINT = "install PostgreSQL (Debian: apt-get install postgresql), or set PG_BINDIR"
FALLBACK_PREFIX = "harness-bulkhead-pg-"
SOCKET_PATH_MAX = 107  # sun_path is 108 bytes with the trailing NUL
HBA_MARK = "# harness: clients on the container's network (BIND_HOST is not loopback)"


class SetupError(Exception):
    """A problem found before postgres runs: printed on stderr, exit status `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Config:
    port: int
    bind_host: str
    data_dir: Path
    max_connections: int
    shared_buffers: str
    os_user: str
    run_id: str


@dataclass(frozen=True)
class Account:
    """Who runs initdb and postgres: None fields mean "this process as it is"."""

    name: str
    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = ()


def _bind_host(env: Mapping[str, str]) -> str:
    """BIND_HOST as an IP address: it decides who pg_hba.conf lets in, so no guessing at names."""
    raw = env.get("BIND_HOST", "").strip() or "127.0.0.1"
    try:
        ipaddress.ip_address(raw)
    except ValueError:
        raise ConfigError(f"BIND_HOST must be an IP address to listen on (the docker runtime sets 0.0.0.0; "
                          f"unset means 127.0.0.1), got {raw!r}") from None
    return raw


def serves_network(config: Config) -> bool:
    """Whether clients come from a network rather than loopback (BIND_HOST is not a loopback address)."""
    return not ipaddress.ip_address(config.bind_host).is_loopback


def load_config(env: Mapping[str, str]) -> Config:
    """Read the env contract, so a typo fails with the variable's name, not a postgres log."""
    data_dir = envconfig.text(env, "DATA_DIR", hint="a folder for this instance's cluster")
    return Config(
        port=envconfig.port(env),
        bind_host=_bind_host(env),
        data_dir=Path(data_dir).resolve(),
        max_connections=envconfig.integer(env, "PG_MAX_CONNECTIONS", 100, minimum=10, maximum=10000),
        shared_buffers=env.get("PG_SHARED_BUFFERS", "").strip() or "16MB",
        os_user=env.get("PG_OS_USER", "").strip() or "postgres",
        run_id=env.get("HARNESS_RUN", "").strip() or "norun",
    )


def _has_server(bindir: Path) -> bool:
    return all(os.access(bindir / exe, os.X_OK) for exe in ("initdb", "postgres"))


def find_bindir(env: dict[str, str], *, lib_root: Path = Path("/usr/lib/postgresql")) -> Path:
    """The folder holding initdb and postgres: PG_BINDIR, pg_config, Debian's layout, PATH.

    Debian puts the server outside PATH (/usr/lib/postgresql/<major>/bin), and
    a pg_config from libpq-dev may name a bindir without a server, so every
    candidate is checked for both programs.
    """
    override = env.get("PG_BINDIR", "").strip()
    if override:
        if _has_server(Path(override)):
            return Path(override)
        raise SetupError(f"PG_BINDIR={override} has no initdb and postgres; {INSTALL_HINT}")
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config", path=env.get("PATH", ""))
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    majors = sorted(glob.glob(str(lib_root / "*" / "bin")),
                    key=lambda p: [int(x) for x in Path(p).parent.name.split(".") if x.isdigit()],
                    reverse=True)
    candidates += [Path(p) for p in majors]
    on_path = shutil.which("postgres", path=env.get("PATH", ""))
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if _has_server(bindir):
            return bindir
    raise SetupError(f"PostgreSQL server binaries (initdb, postgres) not found; {INSTALL_HINT}")


def account(config: Config) -> Account:
    """This process, or as root the unprivileged account postgres insists on."""
    if os.geteuid() != 0:
        return Account(name=pwd.getpwuid(os.geteuid()).pw_name)
    try:
        user = pwd.getpwnam(config.os_user)
    except KeyError:
        raise SetupError(f"running as root, and PG_OS_USER={config.os_user!r} does not exist; "
                         "postgres refuses to run as root: create that user (the Debian package "
                         "does) or run as an ordinary user") from None
    groups = tuple(g.gr_gid for g in grp.getgrall() if config.os_user in g.gr_mem)
    return Account(user.pw_name, user.pw_uid, user.pw_gid, (user.pw_gid, *groups))


def reachable(path: Path, who: Account) -> bool:
    """Whether `who` may search every folder from / down to path (mode bits only)."""
    if who.uid is None:
        return True
    for folder in (*reversed(path.parents), path):
        try:
            st = folder.stat()
        except OSError:
            return False
        if st.st_uid == who.uid:
            bit = stat.S_IXUSR
        elif st.st_gid in who.groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _postmaster_alive(pgdata: Path) -> bool:
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return False
    return Path(f"/proc/{pid}").exists()


def sweep_fallbacks(tmp: Path) -> None:
    """Remove fallback clusters whose DATA_DIR is gone and whose server is dead."""
    for folder in tmp.glob(f"{FALLBACK_PREFIX}*"):
        try:
            origin = Path((folder / "origin").read_text().strip())
        except OSError:
            origin = None
        if origin is not None and origin.exists():
            continue
        if not _postmaster_alive(folder / "pgdata"):
            shutil.rmtree(folder, ignore_errors=True)


def _own(path: Path, who: Account) -> None:
    if who.uid is not None:
        os.chown(path, who.uid, who.gid)


def place_cluster(config: Config, who: Account) -> tuple[Path, Path]:
    """(pgdata, socket folder): in DATA_DIR when `who` can reach it, else the fallback."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    link = config.data_dir / "pgdata"
    if reachable(config.data_dir, who) and not link.is_symlink():
        _own(config.data_dir, who)
        return link, config.data_dir
    tmp = Path(tempfile.gettempdir()).resolve()
    sweep_fallbacks(tmp)
    digest = hashlib.sha256(str(config.data_dir).encode()).hexdigest()[:12]
    home = tmp / f"{FALLBACK_PREFIX}{config.run_id}-{digest}"
    if not reachable(tmp, who):
        raise SetupError(f"user {who.name} can reach neither DATA_DIR={config.data_dir} nor the "
                         f"temporary folder {tmp}; give a DATA_DIR it can traverse")
    home.mkdir(mode=0o700, exist_ok=True)
    _own(home, who)
    (home / "origin").write_text(f"{config.data_dir}\n")
    if not link.is_symlink():
        link.symlink_to(home / "pgdata")
    print(f"postgres wrapper: user {who.name} cannot traverse {config.data_dir}; "
          f"cluster in {home} (linked from {link})", file=sys.stderr)
    return home / "pgdata", home


def _drop_privileges(who: Account) -> None:
    if who.uid is not None:
        os.setgroups(list(who.groups))
        os.setresgid(who.gid, who.gid, who.gid)
        os.setresuid(who.uid, who.uid, who.uid)


def init_cluster(bindir: Path, pgdata: Path, who: Account) -> None:
    """initdb when there is no complete cluster; a half-made one (killed initdb) is redone."""
    if (pgdata / "PG_VERSION").exists():
        return
    shutil.rmtree(pgdata, ignore_errors=True)
    pgdata.mkdir(mode=0o700)
    _own(pgdata, who)
    cmd = [str(bindir / "initdb"), "-D", str(pgdata), "-U", "postgres", "--auth=trust",
           "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, user=who.uid,
                         group=who.gid, extra_groups=list(who.groups) if who.uid is not None else None)
    if out.returncode != 0:
        raise SetupError(f"initdb failed ({out.returncode}) as user {who.name}:\n"
                         f"{out.stdout}{out.stderr}")


def write_hba(pgdata: Path, config: Config) -> None:
    """Lets the container's network in when serving one; on loopback, initdb's file as it was.

    Rewritten at every start (postgres reads it at start), idempotently: our
    line is marked, dropped and added again only when BIND_HOST asks for it.
    """
    hba = pgdata / "pg_hba.conf"
    try:
        before = hba.read_text()
    except OSError as exc:
        raise SetupError(f"cannot read {hba} (made by initdb): {exc}; remove {pgdata} to have it made again") from None
    lines = [line for line in before.splitlines() if not line.endswith(HBA_MARK)]
    if serves_network(config):
        lines.append(f"host    all             all             samenet                 trust {HBA_MARK}")
    after = "\n".join(lines) + "\n"
    if after != before:
        hba.write_text(after)  # in place: owner and mode stay the cluster's


def postgres_argv(bindir: Path, config: Config, pgdata: Path, socket_dir: Path) -> list[str]:
    """The server's command line: BIND_HOST only, and settings for throwaway test data."""
    sockets = str(socket_dir)
    if len(f"{sockets}/.s.PGSQL.{config.port}") > SOCKET_PATH_MAX:
        sockets = ""  # too long for a Unix socket; TCP is all the app uses
    settings = {
        "listen_addresses": config.bind_host, "unix_socket_directories": sockets,
        "max_connections": str(config.max_connections), "shared_buffers": config.shared_buffers,
        # fsync off: an OS crash could corrupt, a process kill cannot (the WAL is written
        # to the kernel at commit). synchronous_commit stays on: off would lose the last
        # commits on SIGKILL, and a kill fault must not eat acknowledged orders.
        "fsync": "off", "full_page_writes": "off",
        "logging_collector": "off",
    }
    argv = [str(bindir / "postgres"), "-D", str(pgdata), "-p", str(config.port)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    return argv


def main() -> int:
    env = dict(os.environ)
    try:
        config = load_config(env)
        bindir = find_bindir(env)
        who = account(config)
        pgdata, socket_dir = place_cluster(config, who)
        init_cluster(bindir, pgdata, who)
        write_hba(pgdata, config)
    except ConfigError as exc:
        print(f"postgres wrapper: {exc}", file=sys.stderr)
        return 2
    except SetupError as exc:
        print(f"postgres wrapper: {exc}", file=sys.stderr)
        return exc.code
    argv = postgres_argv(bindir, config, pgdata, socket_dir)
    print(f"postgres wrapper: exec {bindir}/postgres as {who.name} on {config.bind_host}:{config.port}",
          file=sys.stderr, flush=True)
    _drop_privileges(who)
    os.execv(argv[0], argv)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
