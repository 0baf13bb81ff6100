#!/usr/bin/env bash
# What VM replicas need, on Debian or Ubuntu: QEMU with its firmware, and a
# guest kernel unpacked (not installed: the host keeps its own) into DIR/root,
# where Flotilla looks for it unless FLOTILLA_VM_KERNEL names another folder.
#   usage: setup.sh [DIR]        (default .flotilla/vm)
# The kernel package is Debian's cloud kernel (virtio as modules) or Ubuntu's
# kvm kernel; FLOTILLA_VM_KERNEL_PACKAGE names another meta-package.
set -euo pipefail

dir=${1:-.flotilla/vm}
sudo=""
if [ "$(id -u)" != 0 ]; then sudo=sudo; fi

if ! command -v qemu-system-x86_64 >/dev/null || [ ! -e /usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so ]; then
	echo "installing QEMU (qemu-system-x86)..."
	$sudo apt-get update -qq
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 seabios
fi

. /etc/os-release
case "${FLOTILLA_VM_KERNEL_PACKAGE:-$ID}" in
debian) meta=linux-image-cloud-amd64 ;;
ubuntu) meta=linux-image-kvm ;;
*) meta=${FLOTILLA_VM_KERNEL_PACKAGE} ;;
esac

pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
if [ -z "$pkg" ]; then
	$sudo apt-get update -qq
	pkg=$(apt-cache depends "$meta" | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
if [ -z "$pkg" ]; then
	echo "no kernel package behind $meta; set FLOTILLA_VM_KERNEL_PACKAGE" >&2
	exit 1
fi
version=${pkg#linux-image-}
if [ -e "$dir/root/boot/vmlinuz-$version" ]; then
	echo "guest kernel $version is in $dir/root"
	exit 0
fi

echo "fetching guest kernel $pkg..."
mkdir -p "$dir"
tmp=$(mktemp -d "$dir/fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# Ubuntu ships the modules in a package of their own.
pkgs=("$pkg")
if apt-cache show "linux-modules-$version" >/dev/null 2>&1; then pkgs+=("linux-modules-$version"); fi
(cd "$tmp" && apt-get download -qq "${pkgs[@]}" 2>&1 | grep -v "couldn't be accessed by user '_apt'" || true)
mkdir "$tmp/root"
for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
# One kernel at a time: Flotilla takes the one in root/boot.
rm -rf "$dir/root"
mv "$tmp/root" "$dir/root"
chmod -R u+rwX "$dir/root"
echo "guest kernel $version is in $dir/root"
