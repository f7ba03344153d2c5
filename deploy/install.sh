#!/bin/sh
# Installs switchboard: the executable, the example config (never over an
# existing one), the systemd units and the man page. It never runs systemctl.
#
#   deploy/install.sh [--prefix DIR] [--dry-run] [--uninstall]
#
# Without --prefix:  /usr/local/bin/switchboard, /etc/switchboard/switchboard.toml,
#                    /etc/systemd/system/switchboard.{service,socket},
#                    /usr/local/share/man/man1/switchboard.1,
#                    /usr/local/share/bash-completion/completions/switchboard
# With --prefix DIR: DIR/bin/switchboard, DIR/etc/switchboard/switchboard.toml,
#                    DIR/lib/systemd/system/switchboard.{service,socket},
#                    DIR/share/man/man1/switchboard.1,
#                    DIR/share/bash-completion/completions/switchboard — and nothing outside DIR.
# The units are written with the paths they were installed to.
#
# dist/switchboard is built first (deno task build, offline) when it is missing.
# --dry-run prints what would be done and writes nothing. --uninstall removes
# what was installed but keeps the config. Running it twice changes nothing more.
#
# Exit codes: 0 done, 1 a step failed, 64 usage.
set -eu

usage() {
  echo "usage: deploy/install.sh [--prefix DIR] [--dry-run] [--uninstall]" >&2
  echo "try: deploy/install.sh --help" >&2
  exit 64
}

prefix=""
dry_run=0
uninstall=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix)
      [ $# -ge 2 ] || usage
      prefix=$2
      shift 2
      ;;
    --prefix=*)
      prefix=${1#--prefix=}
      shift
      ;;
    --dry-run)
      dry_run=1
      shift
      ;;
    --uninstall)
      uninstall=1
      shift
      ;;
    -h | --help)
      sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "install.sh: unknown argument \"$1\"" >&2
      usage
      ;;
  esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "$prefix" ]; then
  case "$prefix" in
    /*) ;;
    *) prefix=$(pwd)/$prefix ;;
  esac
  prefix=${prefix%/}
  bindir=$prefix/bin
  confdir=$prefix/etc/switchboard
  unitdir=$prefix/lib/systemd/system
  mandir=$prefix/share/man/man1
  completiondir=$prefix/share/bash-completion/completions
else
  bindir=/usr/local/bin
  confdir=/etc/switchboard
  unitdir=/etc/systemd/system
  mandir=/usr/local/share/man/man1
  completiondir=/usr/local/share/bash-completion/completions
fi

say() {
  if [ "$dry_run" -eq 1 ]; then echo "would $*"; else echo "$*"; fi
}

# do_install MODE SOURCE TARGET: copies when the target differs (idempotent).
do_install() {
  if [ -f "$3" ] && cmp -s "$2" "$3"; then
    echo "unchanged $3"
    return 0
  fi
  say "install $3"
  [ "$dry_run" -eq 1 ] && return 0
  mkdir -p "$(dirname "$3")"
  tmp="$3.install-tmp.$$"
  cp "$2" "$tmp"
  chmod "$1" "$tmp"
  mv -f "$tmp" "$3"
}

do_remove() {
  if [ -e "$1" ]; then
    say "remove $1"
    [ "$dry_run" -eq 1 ] || rm -f "$1"
  fi
}

units="switchboard.service switchboard.socket"

if [ "$uninstall" -eq 1 ]; then
  do_remove "$bindir/switchboard"
  for unit in $units; do do_remove "$unitdir/$unit"; done
  do_remove "$mandir/switchboard.1"
  do_remove "$completiondir/switchboard"
  if [ -f "$confdir/switchboard.toml" ]; then
    echo "kept $confdir/switchboard.toml (your config)"
  fi
  exit 0
fi

binary=$repo/dist/switchboard
if [ ! -x "$binary" ]; then
  say "build $binary (deno task build)"
  if [ "$dry_run" -eq 0 ]; then
    if [ ! -x "$repo/node_modules/.bin/deno" ]; then
      echo "install.sh: $binary is missing and cannot be built: run \"npm install\" first" >&2
      exit 1
    fi
    (cd "$repo" && ./node_modules/.bin/deno task build)
  fi
fi

if [ -x "$binary" ]; then
  do_install 0755 "$binary" "$bindir/switchboard"
else
  say "install $bindir/switchboard"
fi

if [ -f "$confdir/switchboard.toml" ]; then
  echo "kept $confdir/switchboard.toml (exists)"
else
  do_install 0644 "$repo/config.example.toml" "$confdir/switchboard.toml"
fi

for unit in $units; do
  [ -f "$repo/deploy/$unit" ] || continue
  # The unit names the paths it was installed to.
  content=$(sed -e "s#/usr/local/bin/switchboard#$bindir/switchboard#g" \
    -e "s#/etc/switchboard/switchboard.toml#$confdir/switchboard.toml#g" \
    "$repo/deploy/$unit")
  target=$unitdir/$unit
  if [ -f "$target" ] && printf '%s\n' "$content" | cmp -s - "$target"; then
    echo "unchanged $target"
    continue
  fi
  say "install $target"
  [ "$dry_run" -eq 1 ] && continue
  mkdir -p "$unitdir"
  printf '%s\n' "$content" >"$target.install-tmp.$$"
  chmod 0644 "$target.install-tmp.$$"
  mv -f "$target.install-tmp.$$" "$target"
done

if [ -f "$repo/docs/switchboard.1" ]; then
  do_install 0644 "$repo/docs/switchboard.1" "$mandir/switchboard.1"
fi
if [ -f "$repo/deploy/switchboard.bash" ]; then
  do_install 0644 "$repo/deploy/switchboard.bash" "$completiondir/switchboard"
fi

if [ "$dry_run" -eq 0 ]; then
  echo "next: systemctl daemon-reload && systemctl enable --now switchboard"
  echo "      edit $confdir/switchboard.toml, check it with: switchboard check -c $confdir/switchboard.toml"
  echo "      reload it with: systemctl reload switchboard"
fi
