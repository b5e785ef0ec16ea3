#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for ftdag's integration tests and for trying
# the slurm profile without a real cluster. Debian's slurm-wlm (22.05) with munge; no
# systemd, no slurmdbd. Needs root (it writes /etc/slurm/slurm.conf and starts daemons).
#
#   tools/local_slurm.sh start    install if missing, start munged, slurmctld, slurmd; wait
#                                 until the node is idle (idempotent: a running cluster is kept)
#   tools/local_slurm.sh stop     stop the daemons this script started, by their pid files, and
#                                 remove the configuration it wrote
#   tools/local_slurm.sh status   print whether it runs, and sinfo
#   tools/local_slurm.sh check    exit 0 if it can run here, else print what is missing
#
# Settings (environment): FTDAG_SLURM_STATE (state folder, default /tmp/ftdag-slurm),
# FTDAG_SLURM_CPUS (CPUs the node declares, default 8: several small jobs at once on few
# cores), FTDAG_SLURM_MEM_MB (default 16000), FTDAG_SLURM_GPUS (count-only GPU GRES the node
# declares, default 2: the profile's --gpus requests are scheduled for real, though no
# device exists, and jobs fall back to the CPU).
set -euo pipefail

STATE=${FTDAG_SLURM_STATE:-/tmp/ftdag-slurm}
CPUS=${FTDAG_SLURM_CPUS:-8}
MEM_MB=${FTDAG_SLURM_MEM_MB:-16000}
GPUS=${FTDAG_SLURM_GPUS:-2}
CONF=/etc/slurm/slurm.conf
GRES_CONF=/etc/slurm/gres.conf
# Marks the files this script wrote, so it never overwrites a real site's configuration.
MARKER="# written by ftdag tools/local_slurm.sh"
PACKAGES=(slurmctld slurmd slurm-client munge)
MUNGE_SOCKET_DIR=/run/munge

log() { echo "local_slurm: $*" >&2; }

missing_requirements() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "not root (needs to write $CONF and start daemons)"
        return
    fi
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        if ! command -v apt-get >/dev/null; then
            echo "slurm-wlm is not installed and there is no apt-get to install it"
            return
        fi
    fi
    if [[ -e $CONF ]] && ! grep -qF "$MARKER" "$CONF"; then
        echo "$CONF exists and was not written by this script (a real cluster?)"
    fi
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return
    fi
    log "installing ${PACKAGES[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${PACKAGES[@]}" >/dev/null \
        || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q "${PACKAGES[@]}" >/dev/null; }
}

write_config() {
    mkdir -p "$STATE/ctld" "$STATE/d" /etc/slurm
    local gres_line="" node_gres=""
    if [[ $GPUS -gt 0 ]]; then
        gres_line="GresTypes=gpu"
        node_gres="Gres=gpu:$GPUS"
        # Plain files stand in for the devices: slurmd counts GPUs by their files.
        mkdir -p "$STATE/gpus"
        touch $(seq -f "$STATE/gpus/gpu%g" 0 $((GPUS - 1)))
        cat >"$GRES_CONF.tmp" <<EOF
$MARKER
NodeName=localhost Name=gpu File=$STATE/gpus/gpu[0-$((GPUS - 1))]
EOF
        mv "$GRES_CONF.tmp" "$GRES_CONF"
    fi
    # The job step strips SLURM_* variables before its inner srun, so SLURM_CONF alone is
    # not enough: the configuration must be at the default path.
    cat >"$CONF.tmp" <<EOF
$MARKER
ClusterName=ftdaglocal
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
# No cgroups in a container: track processes by parent pid, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Schedule cores and memory, so jobs share the node instead of each taking all of it.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerType=sched/backfill
# Finished jobs stay visible to squeue for 10 minutes: the status check without slurmdbd.
MinJobAge=600
# Time between SIGTERM and SIGKILL when a job is cancelled or hits its time limit.
KillWait=30
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# Lets the node declare more CPUs than the machine has.
SlurmdParameters=config_overrides
$gres_line
NodeName=localhost CPUs=$CPUS RealMemory=$MEM_MB $node_gres State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
}

# A pid file names a live daemon (not a zombie).
alive() {
    local pid_file=$1 pid state
    [[ -s $pid_file ]] || return 1
    pid=$(<"$pid_file")
    [[ -d /proc/$pid ]] || return 1
    state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo "")
    [[ -n $state && $state != Z ]]
}

start_munge() {
    local pid_file=$STATE/munged.pid
    alive "$pid_file" && return
    mkdir -p "$MUNGE_SOCKET_DIR" /var/log/munge /var/lib/munge
    chown munge:munge "$MUNGE_SOCKET_DIR" /var/log/munge /var/lib/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=128 count=1 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 600 /etc/munge/munge.key
    fi
    touch "$pid_file" && chown munge:munge "$pid_file"
    runuser -u munge -- /usr/sbin/munged --force --pid-file="$pid_file"
}

start_daemon() {
    local name=$1 pid_file=$2
    shift 2
    alive "$pid_file" && return
    "$@"
    for _ in $(seq 50); do
        alive "$pid_file" && return
        sleep 0.1
    done
    log "$name did not start; its log: $STATE/$name.log"
    tail -20 "$STATE/$name.log" >&2 || true
    return 1
}

wait_for_idle_node() {
    for _ in $(seq 100); do
        if sinfo -h -N -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)$'; then
            return
        fi
        sleep 0.2
    done
    log "the node did not become idle:"
    sinfo -N >&2 || true
    return 1
}

start() {
    local missing
    if ! missing=$(check); then
        log "cannot start: $missing"
        return 2
    fi
    install_packages
    if alive "$STATE/slurmctld.pid" && alive "$STATE/slurmd.pid"; then
        log "already running (state in $STATE)"
        wait_for_idle_node
        return
    fi
    write_config
    start_munge
    start_daemon slurmctld "$STATE/slurmctld.pid" slurmctld -f "$CONF"
    start_daemon slurmd "$STATE/slurmd.pid" slurmd -f "$CONF" -N localhost
    # A node that was down in a previous run comes back.
    scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true
    wait_for_idle_node
    log "running: partition debug, $CPUS CPUs, $MEM_MB MB, $GPUS GPUs (state in $STATE)"
}

stop_by_pid_file() {
    local name=$1 pid_file=$2 pid
    [[ -s $pid_file ]] || return 0
    pid=$(<"$pid_file")
    if alive "$pid_file"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            alive "$pid_file" || break
            sleep 0.1
        done
        if alive "$pid_file"; then
            log "$name ($pid) ignored SIGTERM; killing it"
            kill -9 "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$pid_file"
}

stop() {
    stop_by_pid_file slurmd "$STATE/slurmd.pid"
    stop_by_pid_file slurmctld "$STATE/slurmctld.pid"
    stop_by_pid_file munged "$STATE/munged.pid"
    # Leave no configuration behind: with slurm.conf present but no controller, every SLURM
    # client call (and so every Snakemake start, through the slurm plugin) waits for a timeout.
    local file
    for file in "$CONF" "$GRES_CONF"; do
        if [[ -e $file ]] && grep -qF "$MARKER" "$file"; then
            rm -f "$file"
        fi
    done
    log "stopped"
}

status() {
    local name
    for name in munged slurmctld slurmd; do
        if alive "$STATE/$name.pid"; then
            echo "$name: running (pid $(<"$STATE/$name.pid"))"
        else
            echo "$name: stopped"
        fi
    done
    if alive "$STATE/slurmctld.pid"; then
        sinfo
    fi
}

check() {
    local missing
    missing=$(missing_requirements)
    if [[ -n $missing ]]; then
        echo "$missing"
        return 1
    fi
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    check) check ;;
    *)
        echo "usage: $0 start|stop|status|check" >&2
        exit 64
        ;;
esac
