#!/bin/sh
# apt-get install PACKAGE without letting it start its system service.
#
# Usage: setup/apt-install-stopped.sh PACKAGE WHY
# Servers the targets need (PostgreSQL, RabbitMQ) are started per run by the
# harness, on ports of its own; a system instance started by the package's
# postinst would hold the default port and outlive the run. A policy-rc.d
# that answers 101 ("action forbidden") keeps invoke-rc.d from starting it.
# The policy file is removed again only if this script made it.
set -u
package=$1
why=$2
export DEBIAN_FRONTEND=noninteractive
policy=/usr/sbin/policy-rc.d
made=
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made=1
fi
apt-get install -y -qq "$package" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$package" >/dev/null; }
rc=$?
if [ -n "$made" ]; then rm -f "$policy"; fi
if [ $rc -ne 0 ]; then
	echo "error: apt-get install $package failed (exit $rc); install it by hand: $why" >&2
	exit 1
fi
