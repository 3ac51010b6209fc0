#!/usr/bin/env bash
# Installs what tftpkit needs on a fresh machine, idempotently:
#   bash scripts/setup.sh           Deno (the version in .deno-version, from the npm registry)
#   bash scripts/setup.sh --peers   also the real TFTP peers the tests drive (Debian packages:
#                                   tftp-hpa, atftp, busybox, curl, tftpd-hpa, dnsmasq-base,
#                                   nftables, iproute2; atftpd unpacked into .tools/atftpd because
#                                   it conflicts with tftpd-hpa as a package) and the firmware
#                                   tests/firmware_test.ts boots (qemu-system-x86, qemu-system-arm,
#                                   ovmf, ipxe-qemu, u-boot-qemu, grub-efi-amd64-bin, pxelinux,
#                                   syslinux-common, tcpdump, binutils)
# Deno lands in .tools/bin/deno unless a deno of the pinned version is already on PATH.
# Prints the directory to put on PATH as its last line.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
want="$(tr -d ' \n' < "$root/.deno-version")"
mkdir -p "$tools/bin"

have_deno() {
  local d="$1"
  [ -x "$d" ] && "$d" --version 2>/dev/null | head -n1 | grep -q "^deno $want "
}

if have_deno "$tools/bin/deno"; then
  :
elif command -v deno >/dev/null && have_deno "$(command -v deno)"; then
  ln -sf "$(command -v deno)" "$tools/bin/deno"
else
  echo "setup: installing Deno $want from the npm registry into .tools/" >&2
  command -v npm >/dev/null || { echo "setup: npm is needed to install Deno" >&2; exit 1; }
  rm -rf "$tools/npm"
  npm install --silent --no-save --no-audit --no-fund --prefix "$tools/npm" "deno@$want" >&2
  bin="$(find "$tools/npm/node_modules/@deno" -maxdepth 2 -type f -name deno | head -n1)"
  [ -n "$bin" ] || { echo "setup: the deno npm package has no binary for this platform" >&2; exit 1; }
  ln -sf "$bin" "$tools/bin/deno"
  have_deno "$tools/bin/deno" || { echo "setup: installed deno does not run" >&2; exit 1; }
fi

if [ "${1:-}" = "--peers" ]; then
  need=()
  for pair in tftp:tftp-hpa atftp:atftp busybox:busybox curl:curl in.tftpd:tftpd-hpa \
    dnsmasq:dnsmasq-base nft:nftables ip:iproute2; do
    cmd="${pair%%:*}" pkg="${pair#*:}"
    command -v "$cmd" >/dev/null || [ -x "/usr/sbin/$cmd" ] || need+=("$pkg")
  done
  # The firmware tests: QEMU (TCG), the firmware images and boot loaders it boots, a capture tool
  # and an assembler for their multiboot payload. Checked by a file each package installs.
  for pair in /usr/bin/qemu-system-x86_64:qemu-system-x86 \
    /usr/bin/qemu-system-aarch64:qemu-system-arm /usr/share/ovmf/OVMF.fd:ovmf \
    /usr/lib/ipxe/qemu/efi-e1000.rom:ipxe-qemu /usr/lib/u-boot/qemu_arm64/u-boot.bin:u-boot-qemu \
    /usr/lib/grub/x86_64-efi/efinet.mod:grub-efi-amd64-bin /usr/lib/PXELINUX/pxelinux.0:pxelinux \
    /usr/lib/syslinux/modules/bios/mboot.c32:syslinux-common /usr/bin/tcpdump:tcpdump \
    /usr/bin/as:binutils; do
    path="${pair%%:*}" pkg="${pair#*:}"
    [ -e "$path" ] || need+=("$pkg")
  done
  atftpd="$tools/atftpd/usr/sbin/atftpd"
  if [ ${#need[@]} -gt 0 ] || [ ! -x "$atftpd" ]; then
    [ "$(id -u)" = 0 ] || { echo "setup: installing ${need[*]:-atftpd} needs root" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    echo "setup: apt-get update" >&2
    apt-get update -qq >&2
    if [ ${#need[@]} -gt 0 ]; then
      echo "setup: installing ${need[*]}" >&2
      apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
    fi
    if [ ! -x "$atftpd" ]; then
      echo "setup: unpacking atftpd into .tools/atftpd" >&2
      tmp="$(mktemp -d)"
      (cd "$tmp" && apt-get download -qq atftpd >&2)
      dpkg -x "$tmp"/atftpd_*.deb "$tools/atftpd"
      rm -rf "$tmp"
    fi
  fi
  # Debian's tftpd-hpa package may start a daemon on port 69; the tests need the port.
  if command -v systemctl >/dev/null && systemctl is-active --quiet tftpd-hpa 2>/dev/null; then
    systemctl stop tftpd-hpa || true
  fi
fi
echo "$tools/bin"
