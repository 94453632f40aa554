"""Real daemons on localhost for the scale-out tests (tests/test_cluster.py): a one-node SLURM
cluster (munged, slurmctld, slurmd) and an OpenSSH server, each configured in a temporary
folder, started, waited for, and stopped (with every process it spawned) afterwards.

The programs come from Debian's packages (`make cluster-deps`): slurmctld, slurmd,
slurm-client, munge, openssh-server. Nothing here touches /etc: every configuration file is
under the folder given, and every command is told where it is (SLURM_CONF, -f, ...). Three
paths outside it, all under /run and removed with the daemons: munged's default socket
(/run/munge), slurmd's link to its configuration cache (/run/slurm/conf), sshd's
privilege-separation folder (/run/sshd, left in place).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

SLURM_CPUS = 2
SLURM_MEM_MB = 4000
CPU_PARTITION = "cpu"
GPU_PARTITION = "gpu"     # stands in for a GPU partition: the node declares one (fake) GPU gres
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")


class ServiceError(RuntimeError):
    pass


def need(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None and not Path(p).exists()]
    if missing:
        raise ServiceError(f"not installed: {', '.join(missing)} (run `make cluster-deps`, as root)")


def munge_answers() -> bool:
    return MUNGE_SOCKET.exists() and subprocess.run(
        f"munge -n --socket={MUNGE_SOCKET} | unmunge --socket={MUNGE_SOCKET}", shell=True,
        capture_output=True).returncode == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def kill_tree(pid: int, sig=signal.SIGKILL) -> None:
    for p in [pid] + children(pid):
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


def wait_until(what: str, check, timeout: float, log: Path | None = None, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
    raise ServiceError(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")


class Daemon:
    """One foreground daemon process, stopped with its whole process tree."""

    def __init__(self, name: str, cmd: list[str], log: Path, env: dict | None = None):
        self.name, self.cmd, self.log = name, cmd, log
        self.proc = subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        time.sleep(0.3)
        if self.proc.poll() is not None:
            raise ServiceError(f"{name} exited at once ({self.proc.returncode}): {' '.join(cmd)}\n"
                               f"{log.read_text()[-3000:]}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            tree = children(self.proc.pid)
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
            for p in tree:   # per-connection sshd processes, slurmstepd, ... left behind
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass


# -- SLURM --------------------------------------------------------------------------------

class SlurmCluster:
    """munged + slurmctld + slurmd for one node (this machine, as ``localhost``), two
    partitions (``cpu``, default, and ``gpu`` whose node has one GPU gres without a device),
    no accounting database: jobs stay visible to ``squeue`` for ``MinJobAge`` seconds."""

    def __init__(self, root: Path):
        need("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo")
        self.root = root
        self.daemons: list[Daemon] = []
        self.node = "localhost"
        self.conf = root / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))

    def write_config(self) -> None:
        r = self.root
        for d in ("munge", "state", "spool", "log"):
            (r / d).mkdir(parents=True, exist_ok=True)
        os.chmod(r / "munge", 0o700)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        self.ctl_port, d_port = free_port(), free_port()
        (r / "gres.conf").write_text(f"NodeName={self.node} Name=gpu File=/dev/null Count=1\n")
        self.conf.write_text(f"""\
ClusterName=dmctest
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={self.ctl_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'slurmctld.pid'}
SlurmdPidFile={r / 'slurmd.pid'}
SlurmctldLogFile={r / 'log' / 'slurmctld.log'}
SlurmdLogFile={r / 'log' / 'slurmd.log'}
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=600
SchedulerParameters=sched_interval=2
SlurmctldParameters=enable_configless
GresTypes=gpu
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={SLURM_CPUS} RealMemory={SLURM_MEM_MB} Gres=gpu:1 State=UNKNOWN
PartitionName={CPU_PARTITION} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
PartitionName={GPU_PARTITION} Nodes={self.node} MaxTime=INFINITE State=UP
""")

    def start(self) -> "SlurmCluster":
        # munged listens where every Slurm program looks first (Debian's default socket): slurmd
        # has no configuration yet when it authenticates to slurmctld to fetch it
        # (a munged already running there, e.g. the system's, serves both daemons as well)
        self.write_config()
        r = self.root
        if munge_answers():
            return self._start_slurm()
        if MUNGE_SOCKET.exists():
            MUNGE_SOCKET.unlink()     # left by a munged that is gone
        MUNGE_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        munge = Daemon("munged", ["munged", "--foreground", "--force", f"--key-file={r / 'munge' / 'munge.key'}",
                                  f"--socket={MUNGE_SOCKET}",
                                  f"--pid-file={r / 'munge' / 'munged.pid'}",
                                  f"--seed-file={r / 'munge' / 'munged.seed'}",
                                  f"--log-file={r / 'log' / 'munged.log'}"], r / "log" / "munged.out")
        self.daemons.append(munge)
        wait_until("munged's socket", MUNGE_SOCKET.exists, 20, r / "log" / "munged.log")
        return self._start_slurm()

    def _start_slurm(self) -> "SlurmCluster":
        r = self.root
        self.daemons.append(Daemon("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)],
                                   r / "log" / "slurmctld.out", self.env))
        wait_until("slurmctld to answer", lambda: self.run("scontrol ping", check=False).returncode == 0
                   and "UP" in self.run("scontrol ping", check=False).stdout, 60, r / "log" / "slurmctld.log", 0.5)
        # configless: slurmd fetches the configuration from slurmctld and keeps it where commands run
        # inside jobs find it without SLURM_CONF (snakemake's slurm-jobstep plugin drops SLURM_*
        # variables before its srun): /run/slurm/conf -> <SlurmdSpoolDir>/conf-cache
        slurmd_env = {k: v for k, v in os.environ.items() if k != "SLURM_CONF"}
        self.daemons.append(Daemon("slurmd", ["slurmd", "-D", "-N", self.node, "--conf-server",
                                              f"127.0.0.1:{self.ctl_port}"], r / "log" / "slurmd.out", slurmd_env))
        wait_until("the node to be idle", lambda: self.node_state().startswith("idle"), 90,
                   r / "log" / "slurmd.log", 0.5)
        return self

    def run(self, cmd: str, check=True, timeout=60) -> subprocess.CompletedProcess:
        proc = subprocess.run(cmd, shell=True, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise ServiceError(f"{cmd} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
        return proc

    def node_state(self) -> str:
        return self.run(f"sinfo -h -n {self.node} -o %T", check=False).stdout.strip().split("\n")[0]

    def jobs(self) -> list[dict]:
        """Every job slurmctld still knows (finished ones for MinJobAge seconds)."""
        out = self.run("squeue --states=all -h -o '%i|%j|%P|%T|%k'").stdout
        return [dict(zip(("id", "name", "partition", "state", "comment"), line.split("|")))
                for line in out.splitlines() if line.strip()]

    def stop(self) -> None:
        self.run("scancel --user root", check=False)
        for d in reversed(self.daemons):
            d.stop()
        self.daemons.clear()
        cache = Path("/run/slurm/conf")   # slurmd's link to its configuration cache under our folder
        if cache.is_symlink() and str(os.readlink(cache)).startswith(str(self.root)):
            cache.unlink()


# -- SSH ------------------------------------------------------------------------------------

class SSHServer:
    """OpenSSH's sshd on 127.0.0.1:<free port>, key authentication for root with a generated key."""

    def __init__(self, root: Path):
        self.sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        need(self.sshd, "ssh-keygen")
        self.root, self.port, self.daemon = root, free_port(), None
        self.key = root / "id_ed25519"
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host_key")], check=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        (root / "authorized_keys").write_text((root / "id_ed25519.pub").read_text())
        self.config = root / "sshd_config"
        self.config.write_text(f"""\
Port {self.port}
ListenAddress 127.0.0.1
HostKey {root / 'host_key'}
PidFile {root / 'sshd.pid'}
AuthorizedKeysFile {root / 'authorized_keys'}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
""")

    def start(self) -> "SSHServer":
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)   # sshd's privilege-separation folder
        self.daemon = Daemon("sshd", [self.sshd, "-D", "-e", "-f", str(self.config)], self.root / "sshd.log")
        wait_until(f"sshd on port {self.port}", self._listening, 20, self.root / "sshd.log")
        return self

    def _listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self, sig=signal.SIGTERM) -> None:
        """Stops the listener and every open connection (the per-connection sshd processes)."""
        if self.daemon is not None:
            self.daemon.stop(sig)
            self.daemon = None
