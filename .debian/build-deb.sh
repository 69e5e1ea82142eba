#!/bin/sh
# Builds token-broker_VERSION-REVISION_ARCH.deb and token-broker-fleet_VERSION-REVISION_ARCH.deb
# (the fleet's helper, for `[fleet]` only: README "Fleet") from built binaries (README "Install
# and run under systemd"): `make deb` passes the release build, the install test the debug build.
#   sh .debian/build-deb.sh BINDIR OUTDIR [REVISION]
# DEB_COMPRESSION (xz unless set; the install test passes none, to be quick) goes to dpkg-deb -Z.
# VERSION is what `BINDIR/token-brokerd --version` prints (tokenctl must print the same); the
# packages are VERSION-REVISION (REVISION 1 unless given). Prints the path of each .deb, the
# daemon's first.
# Needs dpkg-dev (dpkg-shlibdeps, dpkg-deb) and binutils (strip); no root (the files' owner
# in the package is root:root through --root-owner-group).
set -eu
[ $# -ge 2 ] || { echo "usage: $0 BINDIR OUTDIR [REVISION]" >&2; exit 64; }
bin=$1 out=$2 revision=${3:-1}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

version=$("$bin/token-brokerd" --version)
ctl=$("$bin/tokenctl" --version)
[ "$version" = "$ctl" ] || {
  echo "token-brokerd --version says $version, tokenctl --version says $ctl: make them agree" >&2
  exit 1
}
arch=$(dpkg --print-architecture)
debversion=$version-$revision
name=token-broker_${debversion}_$arch
maintainer=$(sed -n 's/^Maintainer: //p' "$here/control")
# Reproducible: the time of the last commit, when there is one.
: "${SOURCE_DATE_EPOCH:=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 1700000000)}"
export SOURCE_DATE_EPOCH

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
root=$work/$name
umask 022

install -D -m 0755 "$bin/token-brokerd" "$root/usr/bin/token-brokerd"
install -D -m 0755 "$bin/tokenctl" "$root/usr/bin/tokenctl"
# As Debian strips executables (dh_strip): no symbols, no .comment or .note sections.
strip --strip-all --remove-section=.comment --remove-section=.note "$root/usr/bin/token-brokerd" \
  "$root/usr/bin/tokenctl"
install -D -m 0644 "$repo/systemd/token-broker.service" "$root/lib/systemd/system/token-broker.service"
install -D -m 0644 "$repo/systemd/token-broker.socket" "$root/lib/systemd/system/token-broker.socket"
install -D -m 0644 "$repo/systemd/token-broker.sysusers" "$root/usr/lib/sysusers.d/token-broker.conf"
install -D -m 0644 "$repo/systemd/token-broker.tmpfiles" "$root/usr/lib/tmpfiles.d/token-broker.conf"
# A conffile; root:root 0640 in the package (dpkg-deb cannot name a group that does not exist
# yet), made root:token-broker by the tmpfiles.d file that postinst applies.
install -D -m 0640 "$repo/etc/token-broker/broker.toml" "$root/etc/token-broker/broker.toml"
mkdir -p "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
  "$root/usr/share/fish/vendor_completions.d"
"$bin/tokenctl" --generate-completion-script bash >"$root/usr/share/bash-completion/completions/tokenctl"
"$bin/tokenctl" --generate-completion-script zsh >"$root/usr/share/zsh/vendor-completions/_tokenctl"
"$bin/tokenctl" --generate-completion-script fish >"$root/usr/share/fish/vendor_completions.d/tokenctl.fish"
chmod 0644 "$root/usr/share/bash-completion/completions/tokenctl" "$root/usr/share/zsh/vendor-completions/_tokenctl" \
  "$root/usr/share/fish/vendor_completions.d/tokenctl.fish"
# Manual pages: NAME, then each command's --help as it is (README has the rest).
manpage() { # NAME SECTION SUMMARY: the page, from NAME --help on stdin
  printf '.TH %s %s "" "token-broker %s"\n.SH NAME\n%s \\- %s\n.SH DESCRIPTION\n.nf\n' \
    "$(echo "$1" | tr a-z A-Z)" "$2" "$version" "$1" "$3"
  sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\&\\1/"
  printf '.fi\n.SH SEE ALSO\n/usr/share/doc/token-broker/README.md\n'
}
mkdir -p "$root/usr/share/man/man1" "$root/usr/share/man/man8"
"$bin/token-brokerd" --help | manpage token-brokerd 8 "OAuth2 and API token broker on a Unix socket" |
  gzip -9n >"$root/usr/share/man/man8/token-brokerd.8.gz"
"$bin/tokenctl" --help | manpage tokenctl 1 "gets tokens from token-brokerd and steers it" |
  gzip -9n >"$root/usr/share/man/man1/tokenctl.1.gz"
chmod 0644 "$root/usr/share/man/man8/token-brokerd.8.gz" "$root/usr/share/man/man1/tokenctl.1.gz"
doc=$root/usr/share/doc/token-broker
install -D -m 0644 "$repo/README.md" "$doc/README.md"
install -D -m 0644 "$here/copyright" "$doc/copyright"
install -D -m 0644 "$here/lintian-overrides" "$root/usr/share/lintian/overrides/token-broker"
date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
cat >"$work/changelog" <<EOF
token-broker ($debversion) unstable; urgency=medium

  * Built from the token-broker repository (README "Install and run under
    systemd").

 -- $maintainer  $date
EOF
gzip -9n <"$work/changelog" >"$doc/changelog.Debian.gz"
chmod 0644 "$doc/changelog.Debian.gz"

# The libraries the binaries need, as Debian package names (no Swift toolchain on the target).
mkdir -p "$work/src/debian"
printf 'Source: token-broker\n\nPackage: token-broker\nArchitecture: any\n' >"$work/src/debian/control"
shlibdeps() { # BINARY...: the Depends: of what they load
  shlibs=$(cd "$work/src" && dpkg-shlibdeps -O $(for b in "$@"; do printf ' -e%s' "$b"; done) \
    2>"$work/shlibdeps.log") || { cat "$work/shlibdeps.log" >&2; exit 1; }
  deps=${shlibs#shlibs:Depends=}
  [ -n "$deps" ] && [ "$deps" != "$shlibs" ] || { echo "dpkg-shlibdeps found no dependencies" >&2; exit 1; }
  echo "$deps"
}
depends=$(shlibdeps "$root/usr/bin/token-brokerd" "$root/usr/bin/tokenctl")

build_package() { # ROOT CONTROL DEPENDS DEB: DEBIAN/control and md5sums, reproducible times, the .deb
  sz=$(du -sk --exclude=DEBIAN "$1" | cut -f1)
  sed -e "s/@VERSION@/$debversion/g" -e "s/@ARCH@/$arch/" -e "s/@DEPENDS@/$3/" -e "s/@SIZE@/$sz/" "$2" \
    >"$1/DEBIAN/control"
  (cd "$1" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort | xargs md5sum) \
    >"$1/DEBIAN/md5sums"
  chmod 0644 "$1/DEBIAN/control" "$1/DEBIAN/md5sums"
  find "$1" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$1" "$4" >/dev/null
  echo "$4"
}

mkdir -p "$root/DEBIAN"
for script in postinst prerm postrm; do install -m 0755 "$here/$script" "$root/DEBIAN/$script"; done
printf '/etc/token-broker/broker.toml\n' >"$root/DEBIAN/conffiles"
chmod 0644 "$root/DEBIAN/conffiles"
build_package "$root" "$here/control" "$depends" "$out/$name.deb"

# token-broker-fleet: the helper token-brokerd starts under [fleet] (postgres-nio with
# Foundation and ICU's data, about 70 MB), for the sites that run a fleet.
fleet_name=token-broker-fleet_${debversion}_$arch
froot=$work/$fleet_name
install -D -m 0755 "$bin/token-broker-fleet" "$froot/usr/libexec/token-broker/token-broker-fleet"
strip --strip-all --remove-section=.comment --remove-section=.note "$froot/usr/libexec/token-broker/token-broker-fleet"
fdoc=$froot/usr/share/doc/token-broker-fleet
install -D -m 0644 "$here/copyright" "$fdoc/copyright"
install -D -m 0644 "$here/lintian-overrides-fleet" "$froot/usr/share/lintian/overrides/token-broker-fleet"
sed -e "1s/^token-broker /token-broker-fleet /" "$work/changelog" | gzip -9n >"$fdoc/changelog.Debian.gz"
chmod 0644 "$fdoc/changelog.Debian.gz"
fdepends=$(shlibdeps "$froot/usr/libexec/token-broker/token-broker-fleet")
mkdir -p "$froot/DEBIAN"
build_package "$froot" "$here/control-fleet" "$fdepends" "$out/$fleet_name.deb"
