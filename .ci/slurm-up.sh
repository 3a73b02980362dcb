#!/usr/bin/env bash
# Start a single-node SLURM with accounting on this machine, as root, without systemd:
# munged, MariaDB, slurmdbd, slurmctld, slurmd (Debian packages; docs/slurm.md says how CI uses it).
# State, spool, logs and pid files live under $KTBENCH_SLURM_DIR (default /tmp/ktbench-slurm).
# Idempotent: daemons already running are left alone. Stop everything with .ci/slurm-down.sh.
set -euo pipefail

SCRATCH=${KTBENCH_SLURM_DIR:-/tmp/ktbench-slurm}
CLUSTER=ktbench
HOST=$(hostname -s)
DB_PASS=ktbench-slurm      # a local, loopback-only database for accounting records
mkdir -p "$SCRATCH"/{state,spool,log,run}

alive() {   # alive PIDFILE: the process named in the pid file is running
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

wait_for() {   # wait_for WHAT SECONDS COMMAND...: poll until COMMAND succeeds
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq $((seconds * 4))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    echo "slurm-up: $what did not come up in ${seconds} s; logs in $SCRATCH/log" >&2
    exit 1
}

if scontrol ping 2>/dev/null | grep -q UP && sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mix|alloc'; then
    echo "slurm-up: cluster already up ($(sinfo -h -o '%N %T'))"
    exit 0
fi

# --- munge: the authentication every daemon and client uses
mkdir -p /run/munge && chown munge:munge /run/munge
if ! alive /run/munge/munged.pid; then
    su -s /bin/sh munge -c "/usr/sbin/munged --pid-file=/run/munge/munged.pid"
fi
wait_for munged 10 munge -n

# --- MariaDB: the accounting store (data, pid and log in the scratch folder, loopback only)
DB_DIR=$SCRATCH/mariadb        # owned by the mysql user, which writes its pid and log files there
mkdir -p /run/mysqld "$DB_DIR" && chown mysql:mysql /run/mysqld "$DB_DIR"
if [ ! -d "$DB_DIR/data/mysql" ]; then
    mariadb-install-db --user=mysql --datadir="$DB_DIR/data" --skip-test-db >"$SCRATCH/log/mariadb-install.log" 2>&1
fi
if ! alive "$DB_DIR/mariadbd.pid"; then
    /usr/sbin/mariadbd --user=mysql --datadir="$DB_DIR/data" --bind-address=127.0.0.1 \
        --socket=/run/mysqld/mysqld.sock --pid-file="$DB_DIR/mariadbd.pid" \
        --log-error="$DB_DIR/mariadbd.log" >/dev/null 2>&1 &
fi
wait_for mariadb 30 mariadb --socket=/run/mysqld/mysqld.sock -e "SELECT 1"
mariadb --socket=/run/mysqld/mysqld.sock <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL

# --- configuration (clients read /etc/slurm/slurm.conf)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
mkdir -p /etc/slurm
cat >/etc/slurm/slurm.conf <<CONF
ClusterName=$CLUSTER
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CryptoType=crypto/munge
# fast requeue: a preempted Checkpointable job runs again after ~11 s instead of ~150 s
AuthInfo=cred_expire=10
SchedulerParameters=bf_interval=1,sched_interval=2
KillWait=5
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
MailProg=/bin/true
StateSaveLocation=$SCRATCH/state
SlurmdSpoolDir=$SCRATCH/spool
SlurmctldPidFile=$SCRATCH/run/slurmctld.pid
SlurmdPidFile=$SCRATCH/run/slurmd.pid
SlurmctldLogFile=$SCRATCH/log/slurmctld.log
SlurmdLogFile=$SCRATCH/log/slurmd.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
umask 077
cat >/etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
PidFile=$SCRATCH/run/slurmdbd.pid
LogFile=$SCRATCH/log/slurmdbd.log
CONF
chmod 600 /etc/slurm/slurmdbd.conf
umask 022

# --- daemons: accounting first, then the controller (it registers with slurmdbd), then the node
if ! alive "$SCRATCH/run/slurmdbd.pid"; then
    /usr/sbin/slurmdbd
fi
wait_for slurmdbd 30 sacctmgr -n list cluster
if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
fi
if ! alive "$SCRATCH/run/slurmctld.pid"; then
    /usr/sbin/slurmctld
fi
wait_for slurmctld 30 scontrol ping
if ! alive "$SCRATCH/run/slurmd.pid"; then
    /usr/sbin/slurmd
fi
wait_for "an idle node" 30 sh -c "sinfo -h -o %T | grep -qE 'idle|mix|alloc'"
echo "slurm-up: $(sinfo -h -o '%P %N %T %c CPUs %m MB')"
