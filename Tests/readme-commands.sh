#!/usr/bin/env bash
# Runs the two commands on README.md's first screen exactly as written there (read out of the
# README, so the check follows the text): the lab demo as root with no sudo to fall back on,
# then, as a new unprivileged user with passwordless sudo in a fresh clone, the lab demo and
# the test command (which runs every test: Tests/run-all.sh). This is what .ci/run runs.
#
# Needs root (it creates the user, installs sudo with apt if missing and writes a sudoers
# drop-in for that user only). MASQD_README_USER names the user (default masqd-readme);
# MASQD_README_SKIP_ROOT_LAB=1 leaves out the root lab run. The user's clone is removed at the
# end; the user, its sudo rule and the sudo package stay (a CI machine is thrown away).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
user="${MASQD_README_USER:-masqd-readme}"

if [ "$(id -u)" -ne 0 ]; then
  echo "readme-commands: needs root (creates a user with sudo); run as root" >&2
  exit 1
fi

# The first line of the first ```sh block after the paragraph whose first line has $1.
readme_command() {
  awk -v marker="$1" '
    index($0, marker) { seen = 1 }
    seen && /^```sh$/ { inside = 1; next }
    inside { print; exit }
  ' "$repo/README.md"
}
lab_command="$(readme_command '**Run the demo**')"
test_command="$(readme_command '**Run all tests**')"
if [ -z "$lab_command" ] || [ -z "$test_command" ]; then
  echo "readme-commands: cannot find the two commands on README.md's first screen" >&2
  exit 1
fi
echo "readme-commands: lab command:  $lab_command"
echo "readme-commands: test command: $test_command"

# The lab prints this line last when every step crossed the NAT.
check_lab() {
  grep -q "All traffic crossed the router masqueraded" "$1" || {
    echo "readme-commands: FAIL: the lab's output lacks its success line ($2)" >&2
    exit 1
  }
}

# --- 1. As root, where a fresh Debian has no sudo ------------------------------------------
if [ "${MASQD_README_SKIP_ROOT_LAB:-0}" != 1 ]; then
  # A sudo that fails loudly first on PATH: the command must not need one as root.
  shim="$(mktemp -d)"
  printf '#!/bin/sh\necho "readme-commands: sudo called as root: $*" >&2\nexit 97\n' > "$shim/sudo"
  chmod +x "$shim/sudo"
  echo; echo "== as root, no sudo: $lab_command"
  log="$(mktemp)"
  status=0
  (cd "$repo" && PATH="$shim:$PATH" bash -c "$lab_command") 2>&1 | tee "$log" || status=$?
  rm -rf "$shim"
  if [ "$status" -ne 0 ]; then echo "readme-commands: FAIL: the lab command as root exited $status" >&2; exit 1; fi
  check_lab "$log" "as root"
  rm -f "$log"
  echo "readme-commands: PASS: lab command as root"
fi

# --- 2. As a user with sudo, in the user's own clone ---------------------------------------
if ! command -v sudo >/dev/null 2>&1; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends sudo
fi
if ! id "$user" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$user"
fi
echo "$user ALL=(ALL) NOPASSWD: ALL" > "/etc/sudoers.d/90-$user"
chmod 0440 "/etc/sudoers.d/90-$user"
home="$(getent passwd "$user" | cut -d: -f6)"
clone="$home/masqd"
rm -rf "$clone"
git clone -q "$repo" "$clone"
chown -R "$user:" "$clone"
# Where git reads github.com from a local mirror owned by root (the machines this project's
# CI runs on: /etc/gitconfig's url.<dir>.insteadOf), the user's git must trust that folder,
# as a developer there would set up once (git 2.39 takes only "*", not a folder prefix).
# Nothing of the kind where GitHub itself is reached.
if git config --system --get-regexp '^url\..*\.insteadof$' 2>/dev/null | grep -q '^url\./'; then
  runuser -u "$user" -- env "HOME=$home" git config --global --add safe.directory '*'
fi
trap 'rm -rf "$clone"' EXIT

# The user's shell finds Swift where this one does (a fresh machine "with Swift" has it on
# the user's PATH); directories only root can enter are left out of it.
user_path=""
IFS=: read -r -a dirs <<< "$PATH"
for d in "${dirs[@]}"; do
  if runuser -u "$user" -- test -x "$d"; then user_path="${user_path:+$user_path:}$d"; fi
done
# A clean login-like environment, plus CI, the proxies and MASQD_* settings (e.g.
# MASQD_SKIP_WALKTHROUGH=1 for a quicker local check) from this one.
user_env=("HOME=$home" "USER=$user" "LOGNAME=$user" "PATH=$user_path")
while IFS= read -r name; do
  case "$name" in
    MASQD_README_*) ;;
    MASQD_*|CI|http_proxy|https_proxy|no_proxy) user_env+=("$name=${!name}") ;;
  esac
done < <(compgen -e)
as_user() {
  runuser -u "$user" -- env -i "${user_env[@]}" bash -c "cd \"$clone\" && $1"
}

echo; echo "== as $user (sudo): $lab_command"
log="$(mktemp)"
chmod 0644 "$log"
status=0
as_user "$lab_command" 2>&1 | tee "$log" || status=$?
if [ "$status" -ne 0 ]; then echo "readme-commands: FAIL: the lab command as $user exited $status" >&2; exit 1; fi
check_lab "$log" "as $user"
rm -f "$log"
echo "readme-commands: PASS: lab command as $user"

echo; echo "== as $user (sudo): $test_command"
as_user "$test_command"
# run-all hands the build folders back to the user that called it.
if find "$clone" -not -user "$user" -print -quit | grep -q .; then
  echo "readme-commands: FAIL: files in $user's clone left owned by someone else:" >&2
  find "$clone" -not -user "$user" | head -5 >&2
  exit 1
fi
echo "readme-commands: PASS: test command as $user"
