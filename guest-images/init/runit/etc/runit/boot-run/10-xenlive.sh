# xenlive: a Debian guest's stage 1 under runit (sourced by Debian's /etc/runit/1, as every
# /etc/runit/boot-run/*.sh is once /etc/runit/native.boot.run exists). The services of stage 2 are
# those of /etc/runit/runsvdir/xenlive: a root login on hvc0, DHCP (busybox udhcpc) and the network
# check. There is no udev: Xen's virtual devices need two drivers, loaded here.
# shellcheck shell=sh

# /dev, /proc, /sys and /run come mounted from the initramfs.
mkdir -p /dev/pts /dev/shm /run/lock
mount -t devpts -o gid=5,mode=0620,nosuid,noexec devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm

# The host name is the guest's name, from the kernel command line (xl config: xenlive.hostname=NAME).
read -r cmdline </proc/cmdline
for arg in $cmdline; do
    case $arg in xenlive.hostname=*) echo "${arg#xenlive.hostname=}" >/proc/sys/kernel/hostname ;; esac
done
ip link set lo up
modprobe -a -q xen-netfront

# The guest is up: dom0 reports it ready when it reads this on the guest's console.
read -r uptime _ </proc/uptime
echo "XENLIVE-READY $(cat /proc/sys/kernel/hostname) ${uptime}s" >/dev/hvc0
