#!/bin/sh
# Installs, in one apt-get, the Debian packages the targets and the docker
# runtime need and this machine lacks; none of their services is started.
#
#   postgresql       the bulkhead's database (initdb, postgres)
#   rabbitmq-server  the messaging target's second broker
#   etcd-server      the discovery target's registry
#   docker.io        dockerd, for the docker runtime (docker/engine.sh starts it)
#   debootstrap      builds the docker runtime's base image
#   iproute2         ss: bytes on the open connections through a proxy (fault evidence)
#   util-linux       nsenter: ss inside the Toxiproxy container's network namespace
#   tshark           the harness's own record of the HTTP calls on a link (harness/wiretap.py)
#
# Each run starts its own servers on ports of its own: a system instance
# started by a package's postinst would hold the default port and outlive
# the run, so a policy-rc.d that answers 101 ("action forbidden") keeps
# invoke-rc.d from starting any, and a PostgreSQL cluster the package made
# anyway is stopped and set to manual start. Running it twice is harmless.
set -u
missing=""
want() { missing="$missing $1"; }
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || want postgresql
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || want rabbitmq-server
command -v etcd >/dev/null || want etcd-server
command -v dockerd >/dev/null || want docker.io
command -v debootstrap >/dev/null || want debootstrap
command -v ss >/dev/null || want iproute2
command -v nsenter >/dev/null || want util-linux
command -v tshark >/dev/null || want tshark
[ -n "$missing" ] || exit 0
if [ "$(id -u)" != 0 ]; then
	echo "error: these Debian packages are missing:$missing; install them (as root: apt-get install -y$missing)" >&2
	exit 1
fi
echo "installing Debian packages:$missing (none of their services is started: each run starts its own)"
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
made=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made=1
fi
# shellcheck disable=SC2086  # the list is words on purpose
apt-get install -y -qq $missing >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $missing >/dev/null; }
rc=$?
if [ -n "$made" ]; then rm -f "$policy"; fi
if [ $rc -ne 0 ]; then
	echo "error: apt-get install$missing failed (exit $rc); install them by hand" >&2
	exit 1
fi
for conf in /etc/postgresql/*/*/start.conf; do [ -e "$conf" ] && echo manual > "$conf"; done
if command -v pg_lsclusters >/dev/null; then
	pg_lsclusters -h | awk '$4 == "online" {print $1, $2}' | while read -r ver name; do pg_ctlcluster "$ver" "$name" stop; done
fi
exit 0
