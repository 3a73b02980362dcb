#!/usr/bin/env bash
# Stop the single-node SLURM that .ci/slurm-up.sh started, by the PIDs in its pid files,
# in reverse order. Its scratch folder ($KTBENCH_SLURM_DIR, default /tmp/ktbench-slurm) stays;
# remove it for a clean start.
set -uo pipefail

SCRATCH=${KTBENCH_SLURM_DIR:-/tmp/ktbench-slurm}

stop() {   # stop NAME PIDFILE: TERM the process, wait up to 10 s for it to exit
    local name=$1 pidfile=$2 pid
    [ -s "$pidfile" ] || return 0
    pid=$(cat "$pidfile")
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 40); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        echo "slurm-down: stopped $name ($pid)"
    fi
    rm -f "$pidfile"
}

stop slurmd "$SCRATCH/run/slurmd.pid"
stop slurmctld "$SCRATCH/run/slurmctld.pid"
stop slurmdbd "$SCRATCH/run/slurmdbd.pid"
stop mariadbd "$SCRATCH/mariadb/mariadbd.pid"
stop munged /run/munge/munged.pid
