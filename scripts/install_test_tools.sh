#!/bin/sh
# Installs the Debian tools the test suite talks to (rdate reads the RFC 868
# time service; script(1) gives the CLI tests a pseudo-terminal; ncat plays
# the "echo name | nc host port" client of the raw file protocol; groff
# renders the man page to check it; nats-server is the bus that chat rooms
# spanning daemons share; openssl makes the TLS tests' self-signed
# certificates; systemd brings systemd-socket-activate, which passes sockets
# as systemd does, and systemd-analyze, which checks the unit files; strace
# records the system calls the unit's filter must allow). Quick and silent
# when they are already there; fails loudly when they cannot be installed, so
# that tests which need them fail instead of skipping.
set -eu
missing=""
command -v rdate >/dev/null 2>&1 || missing="$missing rdate"
command -v script >/dev/null 2>&1 || missing="$missing bsdutils"
command -v ncat >/dev/null 2>&1 || missing="$missing ncat"
# Debian puts it in /usr/sbin, which a user's PATH may lack.
PATH="$PATH:/usr/sbin"
command -v nats-server >/dev/null 2>&1 || missing="$missing nats-server"
command -v groff >/dev/null 2>&1 || missing="$missing groff-base"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
command -v strace >/dev/null 2>&1 || missing="$missing strace"
if ! command -v systemd-socket-activate >/dev/null 2>&1 ||
  ! command -v systemd-analyze >/dev/null 2>&1; then
  missing="$missing systemd"
fi
[ -z "$missing" ] && exit 0
echo "install_test_tools: installing$missing" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq </dev/null >&2
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing </dev/null >&2
