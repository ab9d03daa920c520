#!/usr/bin/env bash
# bash tests/slurm/stop_cluster.sh   (or `make slurm-down`)
#
# Stops the daemons tests/slurm/start_cluster.sh recorded, by pid, in reverse start
# order: SIGTERM, then SIGKILL after 10 s. A pid whose /proc entry is no longer that
# daemon (reused) is left alone. Slurm's state (job ids, accounting) is kept, so the
# next start continues where this one stopped; job steps still running finish alone.
set -euo pipefail

STATE=${HARNESS_SLURM_DIR:-/tmp/harness-slurm}

for name in slurmd slurmctld slurmdbd mariadbd munged; do
    f="$STATE/$name.pid"
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
        kill "$pid" 2>/dev/null || true
        # Wait for /proc/PID to vanish, not for a zombie state: an exiting
        # multi-threaded daemon looks like a zombie while its threads still run.
        for _ in $(seq 50); do [ -e "/proc/$pid" ] || break; sleep 0.2; done
        if [ -e "/proc/$pid" ]; then
            echo "stop_cluster: $name (pid $pid) ignored SIGTERM for 10 s; SIGKILL"
            kill -9 "$pid" 2>/dev/null || true
            for _ in $(seq 25); do [ -e "/proc/$pid" ] || break; sleep 0.2; done
        fi
        echo "stop_cluster: stopped $name (pid $pid)"
    fi
    rm -f "$f"
done
