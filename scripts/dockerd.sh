#!/usr/bin/env bash
# A private Docker daemon for building and running the image on a machine without one
# (CI, these development machines): its own data root, exec root, socket and pid file, so
# that it shares nothing with a system dockerd; no bridge, no iptables, no IP forwarding or
# masquerading, because containers here run with --network=none and builds with
# --network=host (a bridge's private address ranges are not to be used on these machines).
#
#   eval "$(scripts/dockerd.sh start)"   # starts it (as root) and prints DOCKER_HOST=...
#   scripts/dockerd.sh status            # is it answering?
#   scripts/dockerd.sh stop              # stops it and its containers; keeps the data root
#   scripts/dockerd.sh purge             # stops it and deletes the data root (images, cache)
#
# DOCKERD_DATA_ROOT (default /var/lib/movielens-tfx-docker) holds images and the build's
# layer cache: keep it between runs for fast rebuilds. DOCKERD_RUN_DIR (default
# /run/movielens-tfx-docker) holds the socket, pid file, exec root and log.
set -euo pipefail
data_root=${DOCKERD_DATA_ROOT:-/var/lib/movielens-tfx-docker}
run_dir=${DOCKERD_RUN_DIR:-/run/movielens-tfx-docker}
socket=$run_dir/docker.sock
pidfile=$run_dir/dockerd.pid
log=$run_dir/dockerd.log
export DOCKER_HOST=unix://$socket

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  if running; then echo "export DOCKER_HOST=$DOCKER_HOST"; return 0; fi
  if [ "$(id -u)" != 0 ]; then
    echo "error: dockerd runs as root here: sudo $0 start" >&2; exit 1
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "error: no dockerd: apt-get install docker.io (Debian's package, dockerd 20.10)" >&2
    exit 1
  fi
  mkdir -p "$data_root" "$run_dir"
  # An empty config file of its own, so that no /etc/docker/daemon.json changes these flags.
  echo '{}' > "$run_dir/daemon.json"
  # setsid: the daemon outlives this script and is not killed with the caller's job.
  setsid dockerd --config-file "$run_dir/daemon.json" \
    --data-root "$data_root" --exec-root "$run_dir/exec" --pidfile "$pidfile" \
    --host "$DOCKER_HOST" --storage-driver overlay2 \
    --bridge none --iptables=false --ip-forward=false --ip-masq=false \
    >"$log" 2>&1 < /dev/null &
  for _ in $(seq 100); do
    if docker version >/dev/null 2>&1; then
      echo "export DOCKER_HOST=$DOCKER_HOST"; return 0
    fi
    sleep 0.2
  done
  echo "error: dockerd did not answer on $socket within 20 s; its log, $log:" >&2
  tail -20 "$log" >&2
  exit 1
}

# dockerd leaves its network namespace bind-mounted (exec/netns/default) after it exits;
# the run directory cannot be deleted until that is unmounted. Deepest mounts first.
unmount_leftovers() {
  awk -v dir="$run_dir/" 'index($2, dir) == 1 {print $2}' /proc/mounts | sort -r \
    | while read -r mount; do umount "$mount" || umount -l "$mount"; done
}

stop() {
  running || { rm -f "$pidfile"; unmount_leftovers; return 0; }
  # Containers first (a launch killed half-way leaves its task's container running).
  docker ps -q | xargs -r docker kill >/dev/null 2>&1 || true
  local pid; pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; unmount_leftovers; return 0; }
    sleep 0.2
  done
  echo "error: dockerd ($pid) did not stop within 30 s; its log: $log" >&2
  exit 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  purge) stop; rm -rf "$data_root" "$run_dir" ;;
  status) if running && docker version >/dev/null 2>&1; then echo "running: DOCKER_HOST=$DOCKER_HOST"
          else echo "not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|purge|status" >&2; exit 2 ;;
esac
