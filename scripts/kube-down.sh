#!/usr/bin/env bash
# Stops what scripts/kube-up.sh STATE_DIR started, by the PIDs it recorded:
# kube-apiserver first, then etcd (SIGTERM, then SIGKILL after 20 s). A PID is
# signalled only while its process is still the one started with STATE_DIR in its
# command line. Leaves STATE_DIR (logs) in place; pass --clean to remove it too.
#
#   scripts/kube-down.sh STATE_DIR [--clean]
set -euo pipefail
state="${1:?usage: kube-down.sh STATE_DIR [--clean]}"
clean="${2:-}"

ours() { # pid: still the process kube-up started for this state folder?
  [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$state"
}

for p in kube-apiserver etcd; do
  f="$state/$p.pid"
  [ -f "$f" ] || continue
  pid="$(cat "$f")"
  if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
      ours "$pid" || break
      sleep 0.5
    done
    if ours "$pid"; then
      echo "kube-down: $p ($pid) did not stop on SIGTERM; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$f"
done
if [ "$clean" = "--clean" ]; then
  rm -rf "$state"
fi
