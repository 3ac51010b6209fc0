#!/usr/bin/env bash
# Runs every test: installs Deno and the real TFTP peers if missing (scripts/setup.sh --peers),
# then `deno task test`, and prints a closing "N passed, N failed" line.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bin="$(bash scripts/setup.sh --peers | tail -n1)" || { echo "setup failed" >&2; exit 1; }
export PATH="$bin:$PATH"
export ATFTPD="${ATFTPD:-$root/.tools/atftpd/usr/sbin/atftpd}"
log="$(mktemp)"
deno task test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
summary="$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^(ok|FAILED) \| [0-9]+ passed' | tail -n1)"
rm -f "$log"
passed="$(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$summary")"
failed="$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")"
echo "${passed:-0} passed, ${failed:-0} failed"
[ -n "$summary" ] || status=1
exit "$status"
