#!/usr/bin/env bash
# Turns the user's own Windows 98 SE CD image and product key into a loco
# base disk, without clicking through setup (README.md next to this file):
#   OUTDIR/win98.qcow2     the installed disk (the base for configs/lego-loco.hcl)
#   OUTDIR/work/           msbatch.inf, the boot floppy, the setup log
#
# Usage: build.sh --iso WIN98SE.ISO --key XXXXX-XXXXX-XXXXX-XXXXX-XXXXX [--out OUTDIR]
#                 [--size 2G] [--prepare-only]
#   --key may instead come from WIN98_KEY. --prepare-only stops after the
#   disk, msbatch.inf and floppy are made (no QEMU).
#
# Nothing is downloaded and no Windows file is shipped: everything Windows
# comes from the user's CD. Inputs are checked before anything is written;
# a failed run removes what it made.
set -euo pipefail

die() {
	echo "win98/build.sh: error: $*" >&2
	exit 1
}
log() { echo "win98/build.sh: $*" >&2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
iso= key=${WIN98_KEY:-} out=$repo/build/win98 size=2G prepare_only=
while [ $# -gt 0 ]; do
	case "$1" in
	--iso) iso=${2:-} && shift 2 || die "--iso needs a path" ;;
	--key) key=${2:-} && shift 2 || die "--key needs a product key" ;;
	--out) out=${2:-} && shift 2 || die "--out needs a directory" ;;
	--size) size=${2:-} && shift 2 || die "--size needs a size such as 2G" ;;
	--prepare-only) prepare_only=1 && shift ;;
	-h | --help) sed -n '2,14p' "$0" && exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done

# --- input checks: nothing is written before all of them pass -------------

for tool in isoinfo geteltorito mcopy mformat mkfs.fat sfdisk qemu-img; do
	command -v "$tool" >/dev/null || die "$tool not found: apt-get install genisoimage mtools dosfstools fdisk qemu-utils"
done
mbr=/usr/lib/syslinux/mbr/mbr.bin
[ -r "$mbr" ] || die "$mbr not found: apt-get install syslinux-common (a plain MBR that boots the active partition)"
[ -n "$iso" ] || die "no CD image: give your Windows 98 SE CD as --iso FILE (an .iso made from your own CD; loco ships none)"
[ -f "$iso" ] && [ -r "$iso" ] || die "--iso $iso: no such readable file"
listing=$(isoinfo -f -i "$iso" 2>/dev/null) || die "--iso $iso is not an ISO 9660 CD image"
for want in /SETUP.EXE /WIN98/BASE4.CAB /WIN98/PRECOPY1.CAB; do
	grep -qix "${want};1\|${want}" <<<"$listing" ||
		die "--iso $iso is not a Windows 98 CD: it has no $want (is it Windows 95, ME, or another disc?)"
done
isoinfo -d -i "$iso" 2>/dev/null | grep -q "El Torito" ||
	die "--iso $iso has no boot image (El Torito): the Windows 98 SE retail CD is bootable, an OEM upgrade CD is not"
[ -n "$key" ] || die "no product key: give --key XXXXX-XXXXX-XXXXX-XXXXX-XXXXX (from your CD's sleeve) or set WIN98_KEY"
key=$(tr '[:lower:]' '[:upper:]' <<<"$key")
[[ $key =~ ^[A-Z0-9]{5}(-[A-Z0-9]{5}){4}$ ]] ||
	die "product key \"$key\" is not of the form XXXXX-XXXXX-XXXXX-XXXXX-XXXXX"
case "$size" in *[0-9][MG]) ;; *) die "--size $size: write it as e.g. 2G or 1500M" ;; esac
mkdir -p "$out" || die "cannot create $out"
out=$(cd "$out" && pwd)
[ ! -e "$out/win98.qcow2" ] || die "$out/win98.qcow2 exists: remove it to build again (it is never overwritten)"

# --- build in a scratch directory; only a finished disk is moved in -------

work=$(mktemp -d "$out/.work.XXXXXX")
done_ok=
cleanup() { [ -n "$done_ok" ] || { rm -rf "$work"; log "failed: nothing left behind"; }; }
trap cleanup EXIT

# msbatch.inf: setup's answers, with the user's key.
sed -e "s/@KEY@/$key/" "$here/msbatch.inf.in" >"$work/msbatch.inf"

# The hard disk, raw while it is prepared: one active FAT32 (LBA)
# partition from sector 63 (what DOS expects), a plain MBR, and the CD's
# WIN98 folder copied to C:\WIN98 so setup never needs the CD drive's DOS
# driver, and keeps its cabinets for drivers added later.
raw=$work/disk.raw
truncate -s "$size" "$raw"
printf 'start=63, type=c, bootable\n' | sfdisk -q --label dos "$raw" >/dev/null || die "partitioning the disk failed"
dd if="$mbr" of="$raw" bs=440 count=1 conv=notrunc status=none
sectors=$(($(stat -c %s "$raw") / 512 - 63))
mkfs.fat -F 32 -n WIN98 --offset 63 -h 63 "$raw" $((sectors / 2)) >/dev/null || die "formatting C: failed"
export MTOOLS_SKIP_CHECK=1
c="$raw@@$((63 * 512))"
mmd -i "$c" ::WIN98
log "copying the CD's WIN98 folder to C:\\WIN98"
mkdir "$work/cd"
for f in $(grep -i '^/WIN98/[^/]*$' <<<"$listing"); do
	name=${f#/WIN98/}
	name=${name%;1}
	isoinfo -i "$iso" -x "$f" >"$work/cd/$name" || die "reading $f from the CD failed"
	mcopy -i "$c" -o "$work/cd/$name" "::WIN98/$name" || die "copying $name to C: failed"
	rm -f "$work/cd/$name"
done
mcopy -i "$c" "$work/msbatch.inf" ::WIN98/MSBATCH.INF

# The boot floppy: the CD's own El Torito image (Windows 98's startup
# disk), with an AUTOEXEC.BAT that runs setup from C: without questions
# and a CONFIG.SYS without the startup disk's menu.
floppy=$work/boot.img
geteltorito -o "$floppy" "$iso" 2>/dev/null || die "extracting the CD's boot image failed"
[ "$(stat -c %s "$floppy")" -eq 1474560 ] || die "the CD's boot image is not a 1.44 MB floppy"
mcopy -i "$floppy" -o "$here/autoexec.bat" ::AUTOEXEC.BAT || die "writing the floppy's AUTOEXEC.BAT failed"
mcopy -i "$floppy" -o "$here/config.sys" ::CONFIG.SYS || die "writing the floppy's CONFIG.SYS failed"

qemu-img convert -q -f raw -O qcow2 "$raw" "$work/win98.qcow2" || die "qemu-img convert failed"
rm -f "$raw"
if [ -n "$prepare_only" ]; then
	log "prepared in $work (--prepare-only: setup not run)"
	mv "$work" "$out/prepared"
	done_ok=1
	exit 0
fi

# --- setup: the floppy once, then the disk through setup's reboots -------
# The profile of configs/lego-loco.hcl, so setup detects the hardware the
# guests will have. No display: progress is setup's log on the disk, and
# the run ends when setup's last step powers the guest off.
command -v qemu-system-i386 >/dev/null || die "qemu-system-i386 not found: apt-get install qemu-system-x86"
log "running Windows 98 setup (about 30-60 minutes under TCG, less with KVM)"
timeout 3h qemu-system-i386 -machine pc -m 128 -cpu pentium2 -accel kvm -accel tcg \
	-display none -vga cirrus -nic user,model=ne2k_pci -device sb16 -audiodev none,id=snd0 \
	-drive file="$work/win98.qcow2",format=qcow2,if=ide -fda "$floppy" -boot once=a,order=c \
	-serial file:"$work/serial.log" || {
	cp "$work/serial.log" "$out/setup-failed.log" 2>/dev/null || true
	die "setup did not finish within 3 hours (QEMU's serial log: $out/setup-failed.log)"
}
mv "$work/win98.qcow2" "$out/win98.qcow2"
done_ok=1
rm -rf "$work"
log "done: $out/win98.qcow2"
