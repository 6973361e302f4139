#!/usr/bin/env bash
# A ferry.proton.command that cannot be the bridge is reported in the
# answer to init, before any object, both to `ferry agent` driven directly
# (tests/e2e/agent_driver.py) and through the real git-lfs (git push shows
# 'error initializing custom adapter "ferry"' with ferry's message):
#
#   1. a program that is not in PATH;
#   2. a file that is not executable;
#   3. a directory;
#   4. an interpreter whose script is missing (python3 /missing/index.py,
#      as 'node /opt/.../index.js' with a wrong path): the process starts,
#      ends without answering auth-state, and the message says to try the
#      auth-state check by hand.
#
# Each time the journal records no transfer, and the message names
# ferry.proton.command and the program.
#
#   bash tests/e2e/test_proton_misconfig.sh <path-to-ferry>
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/misconfig_lib.sh"
e2e_init "$@"

# bridge_case <name> <ferry.proton.command> <text>...: a repository whose
# store is proton://LFS with that command; init is refused and a push fails
# at init, each naming ferry.proton.command and every <text>.
bridge_case() {
  local name=$1 command=$2 repo="$E2E_ROOT/$1"
  shift 2
  new_repo "$name"
  git -C "$repo" config ferry.proton.command "$command"
  install_ferry_url "$repo" proton://LFS
  init_refused "$repo" "$name" "ferry.proton.command" "$@"
  push_refused "$repo" "$name" "ferry.proton.command" "$@"
}

# ---- 1. not in PATH ------------------------------------------------------------
bridge_case not-in-path "ferry-no-such-bridge --flag" \
  "cannot run 'ferry-no-such-bridge': not found in PATH"

# ---- 2. not executable -----------------------------------------------------------
PLAIN="$E2E_ROOT/bin/proton-drive-cli"
mkdir -p "$(dirname "$PLAIN")"
printf '#!/bin/sh\necho "{}"\n' >"$PLAIN"
chmod 644 "$PLAIN"
bridge_case not-executable "'$PLAIN'" "cannot run '$PLAIN': not executable"

# ---- 3. a directory ------------------------------------------------------------------
bridge_case directory "'$E2E_ROOT/bin'" "cannot run '$E2E_ROOT/bin': a directory, not a program"

# ---- 4. an interpreter without its script ----------------------------------------------
MISSING="$E2E_ROOT/proton-drive-cli/dist/index.py"
bridge_case missing-script "python3 '$MISSING'" \
  "auth-state exited with status 2 without a valid answer" "$MISSING" \
  "bridge auth-state"
