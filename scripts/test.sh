#!/bin/sh
# The whole test suite (`deno task test`): every test under `deno run`, then
# the self-contained executable is built offline (`deno task build`), copied
# alone into an empty directory, and every end-to-end test file (those that
# run the CLI or the daemon as a subprocess) runs again against it, so what
# users deploy is what is tested.
set -eu
cd "$(dirname "$0")/.."
deno=./node_modules/.bin/deno

sh scripts/install_test_tools.sh
"$deno" test --allow-all --parallel --doc

"$deno" run --allow-all deploy/executable/build.ts
alone=$(mktemp -d)
trap 'rm -rf "$alone"' EXIT INT TERM
cp dist/switchboard "$alone/switchboard"
e2e=$(grep -l -E 'runCli|spawnDaemon|switchboardCommand|switchboardShell' tests/*_test.ts)
echo "End-to-end tests against the built executable ($alone/switchboard):"
# shellcheck disable=SC2086 # one word per file
SWITCHBOARD_BIN="$alone/switchboard" "$deno" test --allow-all --parallel $e2e
