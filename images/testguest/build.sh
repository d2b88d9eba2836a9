#!/usr/bin/env bash
# Builds the loco test guest from Debian packages and the Go agent:
#   OUTDIR/vmlinuz      Debian's linux-image-6.1.0-*-amd64 bzImage
#   OUTDIR/initrd.img   busybox-static, /init, kernel modules, loco-agent
#   OUTDIR/base.qcow2   blank 64 MiB disk (created once, never overwritten)
#   OUTDIR/SHA256SUMS, OUTDIR/kernel-version, OUTDIR/build-info
#
# Usage: build.sh [OUTDIR]     (default: <repo>/build/testguest)
# Env:   LOCO_KERNEL_PKG=linux-image-6.1.0-NN-amd64 pins the kernel package
#        instead of taking the newest one apt knows.
#
# Runs as root on Debian 12 (apt-get download, apt-get update). Running it
# again with unchanged inputs does nothing.
set -euo pipefail

die() {
	echo "build.sh: error: $*" >&2
	exit 1
}
log() { echo "build.sh: $*" >&2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
outdir=${1:-$repo/build/testguest}
mkdir -p "$outdir" || die "cannot create output directory $outdir"
outdir=$(cd "$outdir" && pwd)

for tool in apt-get apt-cache dpkg dpkg-deb cpio gzip sha256sum flock sort go qemu-img; do
	command -v "$tool" >/dev/null || die "$tool not found (apt-get install cpio qemu-utils; Go from go.dev)"
done

# Two test runs may build the same OUTDIR at once; the second one waits and
# then finds everything up to date.
exec 9>"$outdir/.lock"
flock 9 || die "cannot lock $outdir/.lock"

# Blank base disk: tests put qcow2 overlays on it, so it must never change.
ensure_base_disk() {
	if [ ! -e "$outdir/base.qcow2" ]; then
		qemu-img create -q -f qcow2 "$outdir/base.qcow2" 64M ||
			die "qemu-img create $outdir/base.qcow2 failed"
	fi
}

apt_updated=
apt_update() {
	[ -n "$apt_updated" ] && return 0
	log "running apt-get update"
	apt-get update -qq || die "apt-get update failed"
	apt_updated=1
}

newest_kernel_pkg() {
	apt-cache pkgnames linux-image-6.1.0- 2>/dev/null |
		grep -E '^linux-image-6\.1\.0-[0-9]+-amd64$' | sort -V | tail -n1
}

# candidate_versions PKG...: prints "PKG VERSION" lines (one apt-cache call:
# each one costs most of a second here).
candidate_versions() {
	apt-cache policy "$@" 2>/dev/null |
		awk '/^[^ ].*:$/ {pkg = substr($0, 1, length($0) - 1)} $1 == "Candidate:" {print pkg, $2}'
}

resolve() {
	kernel_pkg=${LOCO_KERNEL_PKG:-$(newest_kernel_pkg)}
	[ -n "$kernel_pkg" ] || return 1
	local versions
	versions=$(candidate_versions "$kernel_pkg" busybox-static)
	kernel_ver=$(awk -v p="$kernel_pkg" '$1 == p {print $2}' <<<"$versions")
	busybox_ver=$(awk '$1 == "busybox-static" {print $2}' <<<"$versions")
	case "$kernel_ver" in "" | "(none)") return 1 ;; esac
	case "$busybox_ver" in "" | "(none)") return 1 ;; esac
}

if ! resolve; then
	apt_update
	resolve || die "apt has no installable ${kernel_pkg:-linux-image-6.1.0-*-amd64} or busybox-static (is this Debian 12?)"
fi

# Everything the outputs depend on. When this matches the last build, the
# outputs are current.
inputs_hash() {
	{
		echo "$kernel_pkg $kernel_ver busybox-static $busybox_ver"
		go version
		(cd "$here" && sha256sum build.sh init udhcpc.script modules.txt)
		(cd "$repo" && sha256sum go.mod &&
			find images/testguest/agent -name '*.go' ! -name '*_test.go' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
	} | sha256sum | awk '{print $1}'
}
inputs=$(inputs_hash)

if [ -f "$outdir/build-info" ] && grep -qx "inputs=$inputs" "$outdir/build-info" &&
	[ -f "$outdir/vmlinuz" ] && [ -f "$outdir/initrd.img" ] &&
	[ -f "$outdir/SHA256SUMS" ] && [ -f "$outdir/kernel-version" ]; then
	ensure_base_disk
	log "up to date: $outdir ($kernel_pkg $kernel_ver)"
	exit 0
fi

# fetch PKG VERSION: prints the path of PKG's .deb in OUTDIR/debs,
# downloading it unless that exact version is already there.
fetch() {
	local pkg=$1 ver=$2 f
	mkdir -p "$outdir/debs"
	for f in "$outdir/debs/${pkg}_"*.deb; do
		[ -f "$f" ] || continue
		if [ "$(dpkg-deb -f "$f" Version 2>/dev/null)" = "$ver" ]; then
			echo "$f"
			return 0
		fi
	done
	log "downloading $pkg=$ver"
	# apt-get download as root warns that _apt cannot write here; harmless.
	if ! (cd "$outdir/debs" && apt-get download -q "$pkg=$ver" >&2 2>/dev/null); then
		apt_update
		(cd "$outdir/debs" && apt-get download -q "$pkg=$ver" >&2) || die "apt-get download $pkg=$ver failed"
	fi
	for f in "$outdir/debs/${pkg}_"*.deb; do
		if [ "$(dpkg-deb -f "$f" Version 2>/dev/null)" = "$ver" ]; then
			echo "$f"
			return 0
		fi
	done
	die "downloaded $pkg=$ver but cannot find its .deb in $outdir/debs"
}
kernel_deb=$(fetch "$kernel_pkg" "$kernel_ver")
busybox_deb=$(fetch busybox-static "$busybox_ver")

work=$outdir/work
rm -rf "$work"
mkdir -p "$work/kernel" "$work/busybox" "$work/root"
trap 'rm -rf "$work"' EXIT

log "extracting $(basename "$kernel_deb")"
dpkg -x "$kernel_deb" "$work/kernel" || die "dpkg -x $kernel_deb failed"
dpkg -x "$busybox_deb" "$work/busybox" || die "dpkg -x $busybox_deb failed"

kver=${kernel_pkg#linux-image-}
vmlinuz=$work/kernel/boot/vmlinuz-$kver
moddir=$work/kernel/lib/modules/$kver/kernel
[ -f "$vmlinuz" ] || die "$kernel_deb has no boot/vmlinuz-$kver"
[ -d "$moddir" ] || die "$kernel_deb has no lib/modules/$kver/kernel"
busybox=$work/busybox/bin/busybox
[ -x "$busybox" ] || die "$busybox_deb has no executable bin/busybox"

# --- kernel modules -------------------------------------------------------

# Module names use - and _ interchangeably; index the tree by the _ form.
declare -A modpath=()
while IFS= read -r f; do
	n=$(basename "$f")
	n=${n%%.ko*}
	n=${n//-/_}
	[ -n "${modpath[$n]:-}" ] || modpath[$n]=$f
done < <(find "$moddir" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' | LC_ALL=C sort)

mkdir -p "$work/root/lib/modules"
# install_module NAME: writes an uncompressed NAME.ko into the initramfs.
# busybox insmod cannot read compressed modules.
install_module() {
	local n=$1 src=${modpath[$1]} dst=$work/root/lib/modules/$1.ko
	case "$src" in
	*.ko) cp "$src" "$dst" ;;
	*.ko.xz) "$busybox" unxz -c "$src" >"$dst" ;;
	*.ko.gz) gzip -dc "$src" >"$dst" ;;
	*.ko.zst) command -v zstd >/dev/null || die "$src needs zstd (apt-get install zstd)"
		zstd -qdc "$src" >"$dst" ;;
	esac || die "cannot install module $n from $src"
}

# Dependencies come from the "depends=" field of the module's .modinfo
# section, the same field `modinfo -F depends` prints. Read it directly:
# kmod may not be installed and busybox modinfo wants a modules.dep.
module_depends() {
	tr '\0' '\n' <"$work/root/lib/modules/$1.ko" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '
}

declare -A visited=()
load_order=()
add_module() {
	local n=${1//-/_} d
	[ -n "${visited[$n]:-}" ] && return 0
	visited[$n]=1
	[ -n "${modpath[$n]:-}" ] || die "module $1 is not in $kernel_pkg (built in? check boot/config-$kver)"
	install_module "$n"
	for d in $(module_depends "$n"); do
		add_module "$d"
	done
	load_order+=("$n")
}
while read -r m _; do
	case "$m" in "" | "#"*) continue ;; esac
	add_module "$m"
done <"$here/modules.txt"
printf '%s\n' "${load_order[@]}" >"$work/root/lib/modules/load-order"
log "modules: ${load_order[*]}"

# --- root filesystem ------------------------------------------------------

root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc,root}
cp "$busybox" "$root/bin/busybox"
# Applet links made here rather than by `busybox --install` at boot, so the
# archive lists them and boot does less work.
"$busybox" --list-full | while read -r applet; do
	[ "$applet" = bin/busybox ] && continue
	[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
install -m 0755 "$here/init" "$root/init"
install -m 0755 "$here/udhcpc.script" "$root/etc/udhcpc.script"
echo "loco-guest" >"$root/etc/hostname"

log "building loco-agent"
(cd "$repo" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -buildvcs=false \
	-ldflags='-s -w' -o "$root/bin/loco-agent" ./images/testguest/agent) ||
	die "go build ./images/testguest/agent failed"

# Reproducible archive: fixed owner, modes and mtimes, sorted names.
chmod -R u=rwX,go=rX "$root"
chmod 0755 "$root/init" "$root/etc/udhcpc.script" "$root/bin/busybox" "$root/bin/loco-agent"
chmod 1777 "$root/tmp"
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	cpio -o -H newc --reproducible -R 0:0 --quiet | gzip -n -9 >"$work/initrd.img") ||
	die "creating the initramfs archive failed"

# --- outputs --------------------------------------------------------------

cp "$vmlinuz" "$outdir/vmlinuz.tmp" && mv "$outdir/vmlinuz.tmp" "$outdir/vmlinuz"
mv "$work/initrd.img" "$outdir/initrd.img"
echo "$kver" >"$outdir/kernel-version"
(cd "$outdir" && sha256sum vmlinuz initrd.img >SHA256SUMS.tmp && mv SHA256SUMS.tmp SHA256SUMS) ||
	die "sha256sum failed"
ensure_base_disk
# Written last: its inputs= line marks the build complete.
cat >"$outdir/build-info.tmp" <<EOF
kernel_package=$kernel_pkg
kernel_package_version=$kernel_ver
busybox_package_version=$busybox_ver
go=$(go version)
modules=${load_order[*]}
initrd_bytes=$(stat -c %s "$outdir/initrd.img")
inputs=$inputs
EOF
mv "$outdir/build-info.tmp" "$outdir/build-info"
log "built $outdir ($kernel_pkg $kernel_ver)"
cat "$outdir/SHA256SUMS" >&2
