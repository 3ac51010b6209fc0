#!/usr/bin/env bash
# Starts tftpkit serving ./demo on UDP port 6969 (installs Deno first if needed).
# Try it: curl tftp://127.0.0.1:6969/hello.txt   Stop it with Ctrl-C.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bin="$(bash scripts/setup.sh | tail -n1)"
export PATH="$bin:$PATH"
exec deno task demo "$@"
