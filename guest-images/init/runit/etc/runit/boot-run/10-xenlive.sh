# xenlive: a Debian guest's stage 1 under runit (sourced by Debian's /etc/runit/1, as every
# /etc/runit/boot-run/*.sh is once /etc/runit/native.boot.run exists). The services of stage 2 are
# those of /etc/runit/runsvdir/xenlive: the network (DHCP with busybox's udhcpc), the network check,
# then a root login on hvc0. There is no udev. Until the guest is ready, everything here but one
# `mount` is a shell builtin: under QEMU TCG every process start costs a PV guest hundreds of
# milliseconds.
# shellcheck shell=sh

mount -a -T /etc/xenlive/fstab

# The host name is the guest's name, from the kernel command line (xl config: xenlive.hostname=NAME).
hostname=
read -r cmdline </proc/cmdline
for arg in $cmdline; do
    case $arg in xenlive.hostname=*) hostname=${arg#xenlive.hostname=} ;; esac
done
[ -z "$hostname" ] || echo "$hostname" >/proc/sys/kernel/hostname

# The guest is up: dom0 reports it ready when it reads this on the guest's console.
read -r uptime _ </proc/uptime
echo "XENLIVE-READY ${hostname:-guest} ${uptime}s" >/dev/hvc0

# The network's driver, beside the start of stage 2: the xenlive-dhcp service waits for its device.
# Loaded by that service instead, the device came ~3 s after stage 2 began under QEMU TCG.
{ ip link set lo up; modprobe -q xen-netfront; } </dev/null >/dev/null 2>&1 &
