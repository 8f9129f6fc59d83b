#!/usr/bin/env bash
# Installs nginx (the Debian package with the auth_request module) when it is
# missing, for the end-to-end test that puts nginx in front of /verify.
# Without root or apt-get it only says so; the test then reports nginx as
# missing.
set -euo pipefail
if command -v nginx >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-nginx: nginx is missing and cannot be installed here (needs root and apt-get)" >&2
	exit 0
fi
echo "ensure-nginx: installing nginx-light" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
# The package may start a system nginx on port 80; the test runs its own.
if command -v service >/dev/null 2>&1; then service nginx stop >/dev/null 2>&1 || true; fi
pkill -x nginx 2>/dev/null || true
