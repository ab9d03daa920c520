#!/usr/bin/env bash
# bash tests/slurm/start_cluster.sh   (or `make slurm-up`; stop: tests/slurm/stop_cluster.sh)
#
# A real single-node SLURM cluster on this machine, for tests and CI: munged,
# MariaDB, slurmdbd, slurmctld and slurmd, started by hand (there is no systemd).
# Idempotent: it installs the Debian packages only when missing, rewrites the
# configs only when they differ, starts only the daemons that are not running,
# and returns in about a second when the cluster is already healthy. Pids live in
# $HARNESS_SLURM_DIR (default /tmp/harness-slurm) so stop_cluster.sh kills exactly
# what this started. Ends with the node idle and `sacct` working, or exits 1 saying
# what is wrong (logs: $HARNESS_SLURM_DIR/log/).
# Needs root (packages, /etc/slurm, daemons that run jobs as their submitters).
set -euo pipefail

STATE=${HARNESS_SLURM_DIR:-/tmp/harness-slurm}
CLUSTER=harness
NODE=$(hostname -s)
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
DB_SOCKET=/run/mysqld/mysqld.sock
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)  # start order; stop_cluster.sh reverses it

die() { echo "start_cluster: $*" >&2; exit 1; }
say() { echo "start_cluster: $*"; }
[ "$(id -u)" = 0 ] || die "must run as root (installs packages, writes /etc/slurm, starts daemons)"

# One start at a time (e.g. two `make test` at once); the daemons must not inherit
# this lock's fd (launch closes it), or the lock would outlive the script.
mkdir -p "$STATE/log" "$STATE/ctld" "$STATE/spool"
exec 9>"$STATE/lock"
flock -w 600 9 || die "another start_cluster.sh holds $STATE/lock"

# --- packages ------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # The packages' postinst scripts start their services through init scripts and
    # fail the install when that fails (slurmctld has no slurm.conf yet). Deny those
    # starts for the install, as Docker images do; this script starts the daemons.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq || die "apt-get update failed"
    # No recommends: they would pull a mail server and docs.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >"/tmp/harness-slurm-apt.log" 2>&1 \
        || { tail -20 /tmp/harness-slurm-apt.log >&2; die "apt-get install failed (log: /tmp/harness-slurm-apt.log)"; }
    if trap -p EXIT | grep -q policy-rc.d; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi

# --- pid bookkeeping ---------------------------------------------------------------
# A recorded pid counts only while /proc says it is still that daemon (pids get
# reused) and not a zombie (an unreaped corpse keeps its name).
is_daemon() {  # is_daemon PID NAME
    [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] \
        && [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]
}
stop_pid() {  # SIGTERM, then SIGKILL after 10 s; returns once the process is gone
    # Waits for /proc/PID to vanish: an exiting multi-threaded daemon shows as a
    # zombie while its threads still hold ports and files.
    kill "$1" 2>/dev/null || return 0
    for _ in $(seq 50); do [ -e "/proc/$1" ] || return 0; sleep 0.2; done
    kill -9 "$1" 2>/dev/null || true
    for _ in $(seq 25); do [ -e "/proc/$1" ] || return 0; sleep 0.2; done
}
alive() {  # alive NAME -> 0 when $STATE/NAME.pid names a running NAME
    is_daemon "$(cat "$STATE/$1.pid" 2>/dev/null)" "$1"
}
adopt() {  # a daemon started some other way (package scripts, an older state dir) is reused, not doubled
    local pid
    pid=$(for p in $(pgrep -x "$1"); do is_daemon "$p" "$1" && echo "$p"; done | head -1)
    [ -n "$pid" ] || return 1
    echo "$pid" >"$STATE/$1.pid"
    say "$1 already running as pid $pid (adopted)"
}
launch() {  # launch NAME CMD...: run in the foreground mode of the daemon, detached, and record its pid
    local name=$1; shift
    # setsid: own session, so the caller's terminal or CI step ending does not kill it;
    # cd /: do not pin the caller's directory.
    (cd / && exec setsid "$@" </dev/null >>"$STATE/log/$name.out" 2>&1 9>&-) &
    echo $! >"$STATE/$name.pid"
}
wait_for() {  # wait_for SECONDS DAEMON CMD...: poll CMD until it succeeds; give up early if DAEMON died
    local secs=$1 name=$2; shift 2
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        alive "$name" || { echo "start_cluster: $name exited" >&2; return 1; }
        [ $SECONDS -lt $end ] || return 1
        sleep 0.3
    done
}

# --- configs -------------------------------------------------------------------------
restart=()  # daemons whose config changed while they may be running
install_conf() {  # install_conf PATH MODE DAEMON...: stdin -> PATH, only when the text differs
    local tmp path=$1 mode=$2
    shift 2
    tmp=$(mktemp)
    cat >"$tmp"
    if cmp -s "$tmp" "$path"; then rm -f "$tmp"; return; fi
    chmod "$mode" "$tmp"
    mv "$tmp" "$path"
    restart+=("$@")
}

# The node line exactly as slurmd sees the hardware: a bigger line would drain the
# node ("Low socket*core*thread count"). Its second line (UpTime) is not config.
NODE_LINE=$(slurmd -C | head -1)
case "$NODE_LINE" in NodeName=*) ;; *) die "slurmd -C printed no node line: $NODE_LINE" ;; esac

mkdir -p /etc/slurm
install_conf /etc/slurm/slurm.conf 644 slurmd slurmctld <<EOF
# Written by tests/slurm/start_cluster.sh (the project's single-node test cluster).
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MailProg=/bin/true
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.daemon.pid
SlurmdPidFile=$STATE/slurmd.daemon.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# No cgroups in containers and VMs without systemd: track job processes via /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# Per-CPU allocation and no memory bookkeeping: two 1-CPU jobs share a 2-core node.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# sacct (which submitit needs to see a job that died without a result) reads slurmdbd.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
# A node that went down because slurmd was gone comes back when slurmd registers.
ReturnToService=2
# Short waits keep cancellations and restarts quick in tests.
KillWait=5
MessageTimeout=10
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
$NODE_LINE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

# slurmdbd refuses a config readable by others (it holds DB credentials).
install_conf /etc/slurm/slurmdbd.conf 600 slurmdbd <<EOF
# Written by tests/slurm/start_cluster.sh.
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$STATE/slurmdbd.daemon.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
# root over MariaDB's unix socket authenticates as the OS user: no password to keep.
StorageUser=root
EOF

# A changed config only takes effect on restart: stop those daemons (by pid); they start below.
for d in "${restart[@]}"; do
    if alive "$d"; then
        say "config changed: restarting $d"
        stop_pid "$(cat "$STATE/$d.pid")"
    fi
done

# --- quick path: everything already up --------------------------------------------
node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1; }
healthy() {
    for d in "${DAEMONS[@]}"; do alive "$d" || return 1; done
    # A node running jobs (mixed/allocated) is healthy too: do not fail a busy cluster.
    case "$(node_state)" in idle|mixed|allocated|completing) ;; *) return 1 ;; esac
    sacct -n -X -S now-1minutes >/dev/null 2>&1
}
if healthy; then
    say "cluster up (node $NODE $(node_state), sacct ok)"
    exit 0
fi

# --- munge -----------------------------------------------------------------------------
if ! alive munged && ! adopt munged; then
    # /run/munge goes away on reboot and the package cannot create it without systemd.
    install -d -o munge -g munge -m 0755 /run/munge
    [ -s /etc/munge/munge.key ] || { mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
        || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 status=none; }
    chown munge:munge /etc/munge/munge.key && chmod 600 /etc/munge/munge.key
    # setpriv execs (no forking wrapper), so the recorded pid is munged itself.
    launch munged setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F
    say "started munged (pid $(cat "$STATE/munged.pid"))"
fi
wait_for 15 munged sh -c 'munge -n | unmunge' \
    || die "munged does not answer (see $STATE/log/munged.out, /var/log/munge/munged.log)"

# --- MariaDB (accounting store) --------------------------------------------------------
if ! alive mariadbd && ! adopt mariadbd; then
    install -d -o mysql -g root -m 0755 /run/mysqld
    # mariadbd drops to user mysql before writing its pid file and log.
    install -d -o mysql -g mysql -m 0755 "$STATE/mariadb"
    if [ ! -d /var/lib/mysql/mysql ]; then
        say "initialising /var/lib/mysql"
        mariadb-install-db --user=mysql --datadir=/var/lib/mysql >"$STATE/log/mariadb-install.log" 2>&1 \
            || die "mariadb-install-db failed (see $STATE/log/mariadb-install.log)"
    fi
    # --skip-networking: reachable only via the unix socket, no TCP port to clash with.
    launch mariadbd /usr/sbin/mariadbd --user=mysql --skip-networking --socket=$DB_SOCKET \
        --pid-file="$STATE/mariadb/mariadbd.pid" --log-error="$STATE/mariadb/error.log"
    say "started mariadbd (pid $(cat "$STATE/mariadbd.pid"))"
fi
wait_for 60 mariadbd mariadb-admin --socket=$DB_SOCKET ping \
    || die "MariaDB does not answer on $DB_SOCKET (see $STATE/mariadb/error.log, $STATE/log/mariadbd.out)"

# --- slurmdbd -------------------------------------------------------------------------
# Job ids restart at 1 when the controller's state is new (first start, or $STATE
# wiped); accounting rows of old jobs with the same ids would then answer sacct for
# the new ones. A new controller state gets a new accounting database.
if [ ! -e "$STATE/ctld/job_state" ] && ! alive slurmctld && ! pgrep -x slurmctld >/dev/null; then
    alive slurmdbd && stop_pid "$(cat "$STATE/slurmdbd.pid")"
    if mariadb --socket=$DB_SOCKET -N -e "SHOW DATABASES LIKE 'slurm_acct_db'" | grep -q .; then
        say "new controller state: dropping the old accounting database"
        mariadb --socket=$DB_SOCKET -e "DROP DATABASE slurm_acct_db" || die "cannot drop slurm_acct_db"
    fi
fi
if ! alive slurmdbd && ! adopt slurmdbd; then
    launch slurmdbd /usr/sbin/slurmdbd -D
    say "started slurmdbd (pid $(cat "$STATE/slurmdbd.pid"))"
fi
# The first start creates the accounting tables (several seconds).
wait_for 90 slurmdbd sacctmgr -n -P list cluster format=cluster \
    || die "slurmdbd does not answer (see $STATE/log/slurmdbd.log)"
if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null || die "sacctmgr add cluster $CLUSTER failed"
fi

# --- slurmctld + slurmd -----------------------------------------------------------------
if ! alive slurmctld && ! adopt slurmctld; then
    launch slurmctld /usr/sbin/slurmctld -D
    say "started slurmctld (pid $(cat "$STATE/slurmctld.pid"))"
fi
wait_for 30 slurmctld sh -c 'scontrol ping | grep -q UP' \
    || die "slurmctld is not up (see $STATE/log/slurmctld.log)"
if ! alive slurmd && ! adopt slurmd; then
    slurmd_launched=$(date +%s)
    launch slurmd /usr/sbin/slurmd -D
    say "started slurmd (pid $(cat "$STATE/slurmd.pid"))"
fi

# --- wait for a usable node -------------------------------------------------------------
end=$((SECONDS + 60))
resumed=0
while :; do
    st=$(node_state)
    case "$st" in
        idle|mixed|allocated|completing) break ;;
        *\*) ;;  # not responding yet: slurmd has not registered (ReturnToService=2 then revives a down node)
        # Drained or down while responding, left from an earlier life of the cluster:
        # this is a throwaway test cluster, so put the node back (once).
        *drain*|down|fail*)
            if [ $resumed = 0 ]; then
                scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
                resumed=1
            fi ;;
    esac
    alive slurmd || die "slurmd exited (see $STATE/log/slurmd.log, $STATE/log/slurmd.out)"
    [ $SECONDS -lt $end ] || die "node $NODE is '$st', not idle, after 60 s (see $STATE/log/slurmd.log, scontrol show node)"
    sleep 0.5
done
# A job whose launch raced a stopping slurmd stays RUNNING forever in slurmctld's
# eyes and holds a CPU. After a slurmd (re)start, a job that started before it and
# has no processes on the node (scontrol listpids) is such a ghost: cancel it.
if [ -n "${slurmd_launched:-}" ]; then
    live=$(scontrol listpids 2>/dev/null | awk 'NR > 1 {print $2}' | sort -u) || true  # fails when none
    squeue -h -t R,CG -w "$NODE" -o "%A %S" 2>/dev/null | while read -r id start; do
        [ "$(date -d "$start" +%s 2>/dev/null || echo 0)" -lt "$slurmd_launched" ] || continue
        grep -qx "$id" <<<"$live" && continue
        say "job $id has no processes after the slurmd restart: cancelling it"
        scancel "$id" || true
    done || true
fi
wait_for 30 slurmdbd sacct -n -X -S now-1minutes || die "sacct does not work (see $STATE/log/slurmdbd.log)"
say "cluster up (node $NODE $(node_state), sacct ok)"
