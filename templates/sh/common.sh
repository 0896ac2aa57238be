# shellcheck shell=bash
# The helpers the bootstrap and update apps share (sourced by bootstrap.sh and
# update.sh beside it). The including script defines DRY_RUN, POLL_INTERVAL and
# WAIT_TIMEOUT.
# shellcheck disable=SC2154

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }

# Every command that changes something goes through run: printed, and only
# printed with --dry-run.
run() {
  printf '    +'
  printf ' %q' "$@"
  printf '\n'
  if [ "$DRY_RUN" = 1 ]; then return 0; fi
  "$@"
}

# wait_for WHAT CMD...: polls CMD until it succeeds or K8SGEN_WAIT_TIMEOUT passes.
wait_for() {
  local what="$1" waited=0 step
  shift
  if [ "$DRY_RUN" = 1 ]; then note "would wait for $what"; return 0; fi
  note "waiting for $what"
  step=$((POLL_INTERVAL > 0 ? POLL_INTERVAL : 1))
  until "$@"; do
    if [ "$waited" -ge "$WAIT_TIMEOUT" ]; then
      echo "timed out after ${WAIT_TIMEOUT}s waiting for $what" >&2
      return 1
    fi
    sleep "$POLL_INTERVAL"
    waited=$((waited + step))
  done
}
