#!/usr/bin/env bash
# Builds the Debian package masqd_VERSION_ARCH.deb (README.md, "Static binary and package"):
#   /usr/sbin/masqd                                   the binary, with the Swift runtime and
#                                                     Foundation linked in statically
#   /usr/lib/masqd/masqd_fastpath.bpf.o               the kernel fast path's BPF program
#                                                     (--fast-path; Deploy/build-bpf.sh)
#   /lib/systemd/system/masqd.service                 Deploy/masqd.service, paths for /usr
#   /etc/masqd/masqd.yaml                             Deploy/masqd.yaml (conffile)
#   /etc/sysctl.d/99-masqd.conf                       Deploy/99-masqd.conf (conffile)
#   /usr/share/man/man8/masqd.8.gz                    from the command tree (generate-manual)
#   /usr/share/bash-completion/completions/masqd,
#   /usr/share/zsh/vendor-completions/_masqd,
#   /usr/share/fish/vendor_completions.d/masqd.fish   `masqd --generate-completion-script`
#   /usr/share/doc/masqd/{README.md,copyright,changelog.gz}
#   /usr/share/doc/masqd/examples/keepalived/          Deploy/keepalived/ (HA: keepalived.conf
#                                                     and the notify script, mode 0644: an
#                                                     example to copy to /etc/keepalived/, 0755)
#   /usr/share/lintian/overrides/masqd                Deploy/debian/lintian-overrides
# The maintainer scripts start nothing and turn no forwarding on: see Deploy/debian/.
#
# The version is MasqdVersion.string in Sources/MasqdCLI/Version.swift, the one place it is
# written. Needs the Swift toolchain, dpkg-dev (dpkg-shlibdeps) and, with --lintian, lintian.
#
# Usage: Deploy/package-deb.sh [--lintian] [--print-version]
#   --lintian        run lintian on the package; any error (E:) fails the script
#   --print-version  print the version and exit (what the package would be called)
# Environment: MASQD_SCRATCH=DIR the build folder (default .build-static: one release build,
# reused by every run), MASQD_DEB_DIR=DIR where the .deb goes (default .build-static/deb).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
scratch="${MASQD_SCRATCH:-$repo/.build-static}"
outdir="${MASQD_DEB_DIR:-$scratch/deb}"

say() { echo "package-deb: $*"; }
die() { echo "package-deb: $*" >&2; exit 1; }

lintian=no
for arg in "$@"; do
  case "$arg" in
    --lintian) lintian=yes ;;
    --print-version) ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $arg (usage: $0 [--lintian] [--print-version])" ;;
  esac
done

version_file="$repo/Sources/MasqdCLI/Version.swift"
version=$(sed -n 's/^ *public static let string = "\([^"]*\)"$/\1/p' "$version_file")
[[ "$version" =~ ^[0-9][0-9A-Za-z.+~-]*$ ]] ||
  die "$version_file: no 'public static let string = \"VERSION\"' line with a Debian-style version"
for arg in "$@"; do if [ "$arg" = --print-version ]; then echo "$version"; exit 0; fi; done

for tool in swift dpkg-deb dpkg-shlibdeps gzip strip; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install dpkg-dev binutils; Swift 6.1+)"
done
if [ "$lintian" = yes ]; then command -v lintian >/dev/null || die "lintian not found (apt-get install lintian)"; fi
arch=$(dpkg --print-architecture)

# --- The binary -----------------------------------------------------------------------------
# --static-swift-stdlib links the Swift runtime, Foundation (with ICU's data) and Dispatch
# into the binary; glibc, libstdc++ and the netfilter libraries stay shared, from Debian.
# --disable-local-rpath: no $ORIGIN RUNPATH (there is nothing next to /usr/sbin/masqd to load).
mkdir -p "$scratch"
say "swift build -c release --static-swift-stdlib (scratch $scratch)"
(cd "$repo" && swift build -c release --static-swift-stdlib --disable-local-rpath \
  --scratch-path "$scratch" --product masqd) >"$scratch/package-deb.log" 2>&1 ||
  { tail -n 30 "$scratch/package-deb.log" >&2; die "swift build failed (log: $scratch/package-deb.log)"; }
binary="$scratch/release/masqd"
if ldd "$binary" | grep -Eq 'libswift|libFoundation|libdispatch|libBlocksRuntime'; then
  ldd "$binary" >&2; die "$binary links a Swift runtime library dynamically"
fi
built_version=$("$binary" --version)
[ "$built_version" = "$version" ] || die "$binary --version says $built_version, Version.swift $version"

# --- The man page: swift-argument-parser's generate-manual --------------------------------
# The tool behind the GenerateManual plugin, run on the static binary. (The plugin itself,
# `swift package generate-manual`, first builds every product again without
# --static-swift-stdlib, relinking masqd dynamically in the same scratch path: a second
# release link for nothing.) Section 8: a system administration command in /usr/sbin.
say "swift build --product generate-manual"
# The same build flags as masqd's: with others, the modules both use would be built again.
(cd "$repo" && swift build -c release --static-swift-stdlib --disable-local-rpath \
  --scratch-path "$scratch" --product generate-manual) \
  >>"$scratch/package-deb.log" 2>&1 || { tail -n 30 "$scratch/package-deb.log" >&2; die "building generate-manual failed"; }
generate_manual="$scratch/release/generate-manual"
# The date of the commit, not of the build: the same source gives the same page.
page_date=$(git -C "$repo" log -1 --format=%cs 2>/dev/null || date -u +%F)

# --- The tree -------------------------------------------------------------------------------
stage="$scratch/deb-root"
rm -rf "$stage"
install -d -m 0755 "$stage/DEBIAN" "$stage/usr/sbin" "$stage/lib/systemd/system" \
  "$stage/etc/masqd" "$stage/etc/sysctl.d" "$stage/usr/share/man/man8" \
  "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
  "$stage/usr/share/fish/vendor_completions.d" "$stage/usr/share/doc/masqd"

# Stripped: the symbol table and debug info are 20 MB of the 80; Swift's metadata is not in them.
strip --strip-unneeded --remove-section=.comment --remove-section=.note -o "$stage/usr/sbin/masqd" "$binary"
chmod 0755 "$stage/usr/sbin/masqd"
"$stage/usr/sbin/masqd" --version >/dev/null || die "the stripped binary does not run"

# The fast path's BPF program, where `masqd run --fast-path` looks when none is next to the
# binary. Built with the Swift toolchain's clang (build-bpf.sh); not stripped: libbpf needs its BTF.
install -d -m 0755 "$stage/usr/lib/masqd"
"$repo/Deploy/build-bpf.sh" "$stage/usr/lib/masqd" >>"$scratch/package-deb.log" 2>&1 ||
  { tail -n 10 "$scratch/package-deb.log" >&2; die "building the BPF object failed (needs libbpf-dev)"; }

# The unit and the sysctl file are install.sh's, with the packaged paths (/usr, not /usr/local).
sed -e 's|/usr/local/sbin/masqd|/usr/sbin/masqd|g' \
    -e 's|^Documentation=file:/usr/local/share/doc/masqd/README.md$|Documentation=man:masqd(8) file:/usr/share/doc/masqd/README.md|' \
    -e 's|/usr/local/share/doc/masqd|/usr/share/doc/masqd|g' \
    "$repo/Deploy/masqd.service" >"$stage/lib/systemd/system/masqd.service"
if grep -n '/usr/local' "$stage/lib/systemd/system/masqd.service" | grep -v '^[0-9]*:#'; then
  die "masqd.service still names /usr/local outside comments"
fi
grep -q '^Documentation=man:masqd(8) ' "$stage/lib/systemd/system/masqd.service" ||
  die "Deploy/masqd.service: its Documentation= line is not the one this script rewrites"
install -m 0644 "$repo/Deploy/masqd.yaml" "$stage/etc/masqd/masqd.yaml"
install -m 0644 "$repo/Deploy/99-masqd.conf" "$stage/etc/sysctl.d/99-masqd.conf"

mkdir -p "$scratch/man"
"$generate_manual" "$binary" --section 8 --date "$page_date" --output-directory "$scratch/man" >/dev/null
[ -s "$scratch/man/masqd.8" ] || die "generate-manual wrote no masqd.8"
gzip -9n <"$scratch/man/masqd.8" >"$stage/usr/share/man/man8/masqd.8.gz"

# bash-completion sources its files: the generated script's #! line has no use there.
"$binary" --generate-completion-script bash | sed '1{/^#!/d}' >"$stage/usr/share/bash-completion/completions/masqd"
"$binary" --generate-completion-script zsh >"$stage/usr/share/zsh/vendor-completions/_masqd"
"$binary" --generate-completion-script fish >"$stage/usr/share/fish/vendor_completions.d/masqd.fish"

install -m 0644 "$repo/README.md" "$stage/usr/share/doc/masqd/README.md"
install -m 0644 "$repo/Deploy/debian/copyright" "$stage/usr/share/doc/masqd/copyright"
install -d -m 0755 "$stage/usr/share/doc/masqd/examples/keepalived"
install -m 0644 "$repo/Deploy/keepalived/keepalived.conf" "$repo/Deploy/keepalived/masqd-notify" \
  "$stage/usr/share/doc/masqd/examples/keepalived/"
commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
{
  echo "masqd ($version) unstable; urgency=medium"
  echo
  echo "  * Built from commit $commit."
  echo
  echo " -- masqd maintainers <masqd@packages.invalid>  $(date -u -R -d "$page_date")"
} | gzip -9n >"$stage/usr/share/doc/masqd/changelog.gz"
find "$stage/usr" "$stage/etc" "$stage/lib" -type f ! -path '*/sbin/*' -exec chmod 0644 {} +

# Yams builds its own copy of libyaml into the binary (its CYaml target); using Debian's
# libyaml-0-2 instead would mean patching Yams. Lintian calls that an error: overridden, with
# this reason, in the package's override file.
install -d -m 0755 "$stage/usr/share/lintian/overrides"
install -m 0644 "$repo/Deploy/debian/lintian-overrides" "$stage/usr/share/lintian/overrides/masqd"

for script in postinst prerm postrm; do
  install -m 0755 "$repo/Deploy/debian/$script" "$stage/DEBIAN/$script"
done
printf '%s\n' /etc/masqd/masqd.yaml /etc/sysctl.d/99-masqd.conf >"$stage/DEBIAN/conffiles"

# Depends: what the binary links (dpkg-shlibdeps, from the libraries' own shlibs files), and
# the tools masqd runs. iptables | nftables: masqd installs its rules with iptables today;
# the nftables backend (issue #17, another branch) makes nft enough — until it lands, a system
# with only nftables must also have iptables (iptables-nft).
shlib_dir="$scratch/shlibdeps"
rm -rf "$shlib_dir"
mkdir -p "$shlib_dir/debian"
printf 'Source: masqd\n\nPackage: masqd\nArchitecture: any\n' >"$shlib_dir/debian/control"
shlibs=$(cd "$shlib_dir" && dpkg-shlibdeps -O -e"$stage/usr/sbin/masqd" 2>"$shlib_dir/warnings" |
  sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { cat "$shlib_dir/warnings" >&2; die "dpkg-shlibdeps found no dependencies"; }
depends="$shlibs, iptables | nftables, iproute2"

installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<EOF
Package: masqd
Version: $version
Architecture: $arch
Maintainer: masqd maintainers <masqd@packages.invalid>
Installed-Size: $installed_size
Depends: $depends
Section: net
Priority: optional
Description: user-space NAT (IP masquerading) for Linux routers
 masqd masquerades a LAN behind a router's WAN address in user space: iptables
 rules steer forwarded traffic into NFQUEUE, and masqd translates each packet
 and hands it back in its verdict. It tracks the WAN address, forwards ports,
 translates ICMP errors, reassembles fragments, hairpins, and has FTP, IRC, TFTP
 and SIP helpers. It fails closed: with masqd stopped, traffic across the WAN
 stops instead of leaking out untranslated.
 .
 Installing starts nothing: set wan and lan in /etc/masqd/masqd.yaml, then
 systemctl enable --now masqd (README: /usr/share/doc/masqd/README.md).
EOF

mkdir -p "$outdir"
deb="$outdir/masqd_${version}_${arch}.deb"
dpkg-deb --build --root-owner-group -Zxz "$stage" "$deb" >/dev/null
say "built $deb ($(du -k "$deb" | cut -f1) KiB; binary $(du -k "$stage/usr/sbin/masqd" | cut -f1) KiB stripped, $(du -k "$binary" | cut -f1) KiB not)"
say "Depends: $depends"

if [ "$lintian" = yes ]; then
  say "lintian $deb"
  status=0
  lintian --fail-on error "$deb" || status=$?
  [ "$status" -eq 0 ] || die "lintian reports errors (above)"
  say "lintian: no errors"
fi
