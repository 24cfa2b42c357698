# xenlive: a Debian guest's stage 1 under runit (sourced by Debian's /etc/runit/1, as every
# /etc/runit/boot-run/*.sh is once /etc/runit/native.boot.run exists). The services of stage 2 are
# those of /etc/runit/runsvdir/xenlive: a root login on hvc0, the network (its driver, DHCP with
# busybox's udhcpc) and the network check. There is no udev. Everything here but one `mount` is a
# shell builtin: under QEMU TCG every process start costs a PV guest hundreds of milliseconds.
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
