#!/usr/bin/env bash
# Makes sure a Docker engine answers, for the docker runtime and its tests.
# Installs Debian's docker.io (dockerd) and debootstrap (which builds the
# base image) with setup/debs.sh when missing, and starts dockerd in the
# background when no engine answers: log /var/log/dockerd.log, pidfile /var/run/docker.pid,
# data under /var/lib/docker. If dockerd cannot start with its defaults
# (overlay2, iptables), it tries once more with vfs storage and without
# iptables. Polls `docker info` with a deadline; running it twice is harmless.
set -euo pipefail
DEADLINE_S=${DOCKERD_START_TIMEOUT_S:-60}
LOG=${DOCKERD_LOG:-/var/log/dockerd.log}
PIDFILE=/var/run/docker.pid
root() { [ "$(id -u)" = 0 ]; }

{ command -v dockerd && command -v debootstrap; } >/dev/null || sh "$(dirname "$0")/../setup/debs.sh" || exit 1

answers() { docker info >/dev/null 2>&1; }
if answers; then
    echo "docker engine $(docker version -f '{{.Server.Version}}' 2>/dev/null) answers"
    exit 0
fi
if [ -n "${DOCKER_HOST:-}" ]; then
    echo "error: DOCKER_HOST=$DOCKER_HOST does not answer; start that engine or unset DOCKER_HOST" >&2
    exit 1
fi
root || { echo "error: no Docker engine answers, and starting dockerd needs root (or start the docker service)" >&2; exit 1; }

# our_dockerd: the pid in the pidfile when that process is a dockerd (a stale file's pid may be reused).
our_dockerd() {
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null || true)
    [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] && echo "$pid"
}

# start ARGS...: starts dockerd, polls until it answers; 1 if it died or the deadline passed.
start() {
    if [ -n "$(our_dockerd)" ]; then
        echo "dockerd (pid $(cat "$PIDFILE")) runs but does not answer yet; waiting for it"
    else
        echo "starting dockerd $* (log $LOG)"
        rm -f "$PIDFILE"  # stale: its process is gone or is no dockerd; dockerd would refuse it
        mkdir -p /var/lib/docker "$(dirname "$LOG")"
        setsid dockerd --data-root /var/lib/docker --pidfile "$PIDFILE" "$@" >>"$LOG" 2>&1 </dev/null &
    fi
    local deadline=$((SECONDS + DEADLINE_S))
    while ((SECONDS < deadline)); do
        answers && return 0
        [ -s "$PIDFILE" ] && [ -z "$(our_dockerd)" ] && return 1  # it died
        sleep 0.2  # poll
    done
    return 1
}

# give_up: ends the dockerd this script started (by its pidfile) and waits until it is gone.
give_up() {
    echo "dockerd did not come up with its defaults; last lines of $LOG:"
    tail -n 5 "$LOG"
    local pid deadline=$((SECONDS + 15))
    pid=$(our_dockerd || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    while [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done  # poll
    rm -f "$PIDFILE"
}

if start || { give_up; start --storage-driver=vfs --iptables=false; }; then
    echo "docker engine $(docker version -f '{{.Server.Version}}' 2>/dev/null) answers"
    exit 0
fi
echo "error: dockerd did not answer within ${DEADLINE_S}s; last lines of $LOG:" >&2
tail -n 20 "$LOG" >&2
exit 1
