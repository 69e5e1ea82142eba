#!/bin/sh
# Checks the systemd files offline (no running systemd needed): `make check-units`.
#  1. systemd-analyze verify prints nothing for the service and socket units (it checks that
#     ExecStart= exists, so it verifies a temporary copy whose ExecStart= runs /bin/true);
#  2. systemd-analyze security --offline=true rates the service at most 1.5 (threshold 15);
#  3. systemd-sysusers and systemd-tmpfiles accept their files (applied to an empty root).
# Exit 0 when all pass; any output of verify is a failure (unknown keys are only warnings).
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

for unit in token-broker.service token-broker.socket; do
  sed 's|^ExecStart=/usr/bin/token-brokerd |ExecStart=/bin/true |' "$dir/$unit" >"$tmp/$unit"
done
out=$(systemd-analyze verify "$tmp/token-broker.service" "$tmp/token-broker.socket" 2>&1) || {
  printf '%s\nsystemd-analyze verify failed\n' "$out" >&2
  exit 1
}
if [ -n "$out" ]; then
  printf '%s\nsystemd-analyze verify printed the above: fix the units\n' "$out" >&2
  exit 1
fi
echo "verify: ok"

systemd-analyze security --offline=true --threshold=15 --no-pager "$dir/token-broker.service" \
  >"$tmp/security" 2>&1 || {
  cat "$tmp/security" >&2
  echo "systemd-analyze security: exposure above 1.5" >&2
  exit 1
}
grep 'Overall exposure level' "$tmp/security"

mkdir -p "$tmp/root/etc"
systemd-sysusers --root="$tmp/root" "$dir/token-broker.sysusers" >"$tmp/log" 2>&1 || {
  cat "$tmp/log" >&2
  exit 1
}
systemd-tmpfiles --root="$tmp/root" --create "$dir/token-broker.tmpfiles"
[ -d "$tmp/root/etc/token-broker/secrets" ] || {
  echo "systemd-tmpfiles did not create /etc/token-broker/secrets" >&2
  exit 1
}
echo "sysusers, tmpfiles: ok"
