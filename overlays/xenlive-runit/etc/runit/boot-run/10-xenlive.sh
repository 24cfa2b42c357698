# xenlive: dom0's stage 1 under runit (sourced by Debian's /etc/runit/1, as every
# /etc/runit/boot-run/*.sh is once /etc/runit/native.boot.run exists). It ends by starting xenlive-boot,
# which creates the guests; everything else runs as services of stage 2 (/etc/sv/xenlive-*, supervised
# by runsvdir).
#
# The live root came from the initramfs (scripts/xenlive) with /dev, /proc, /sys and /run mounted.
# This starts what every service needs: the kernel modules of Xen's backends and of the devices
# present, and xenstored, once, as Debian's /etc/init.d/xen would at boot (xenstored cannot be
# restarted without losing the domains' state, so it is not supervised). It calls the programs
# directly: under QEMU TCG every process start costs ~75 ms in dom0, and the init script's ~25
# starts and its 1 s polling took ~4 s where this takes well under one (measured).
#
# Its paths come from dom0's runtime contract (contract.sh, generated from xenlive/contract.py); under
# ${XENLIVE_ROOT} (tests/scripts) every path it touches lies below that directory.
# shellcheck shell=sh

. "${XENLIVE_ROOT-}/usr/lib/xenlive/contract.sh"
# shellcheck source=/dev/null
. "$SETTINGS"

# The autostart guests' kernels and initramfs, read from the medium into memory beside the rest of the
# boot (xl create finds them there).
"$LIB/xenlive-boot" prefetch </dev/null >/dev/null 2>&1 &

[ -e "$ROOT/dev/pts/ptmx" ] || { mkdir -p "$ROOT/dev/pts" && mount -t devpts -o gid=5,mode=0620 devpts "$ROOT/dev/pts"; }
mkdir -p "$ROOT/dev/shm" && mount -t tmpfs -o mode=1777,nosuid,nodev shm "$ROOT/dev/shm"
logs=$SERVICE_LOGS
mkdir -p "$ROOT/run/lock" "$ROOT/run/xen" "$ROOT/run/xenstored" "$ROOT/run/sshd" "$RUN" "$CONSOLE_LOGS" \
    "$logs/xenconsoled" "$logs/xenlive-uplink" "$logs/xenlive-dnsmasq" "$logs/xenlive-sshd" "$logs/xenlive-web"
read -r hostname <"$ROOT/etc/hostname" && echo "$hostname" >"$PROC/sys/kernel/hostname"
# root's password (dom0.ssh.root_password_hash): 20-xenlive-root-password.sh, from xenlive/services.py.

# Xen's own devices, which xenstored needs. The guests' backends and disks' modules are loaded by
# `xenlive-boot prefetch` beside this, and the bridge's by the network's job below: one modprobe of
# them all here kept xenstored waiting 0.5-2 s longer under QEMU TCG. The drivers of the other
# devices are loaded by the xenlive-coldplug service, off the guests' way.
modprobe -a -q xenfs xen-evtchn xen-gntdev xen-gntalloc
[ -e "$PROC/xen/capabilities" ] || mount -t xenfs xenfs "$PROC/xen"

# The guests' network (recipe: network), beside the rest of stage 1: dom0's packet filter first
# (/etc/xenlive/network.nft: NAT out through dom0's uplink, no SSH or web console from the guests),
# and only then the bridge with dom0's address on it; xenlive-boot waits for the bridge before it
# creates a guest. A bridge made by a service of stage 2 instead kept xenlive-boot waiting ~3 s.
# The modules of the bridge and of the rules are loaded by one modprobe first: left to the kernel,
# each netfilter module is a modprobe of its own (~13 of them), and xenlive-boot waited ~4 s for the
# bridge under QEMU TCG.
if [ "$NETWORK" = yes ]; then
    {
        modprobe -a -q bridge nft_reject_inet nft_chain_nat nft_masq
        nft -f "$ROOT/etc/xenlive/network.nft" && {
            [ "$NAT" != yes ] || echo 1 >"$PROC/sys/net/ipv4/ip_forward"
            ip -batch - <<EOB
link set lo up
link add $BRIDGE type bridge stp_state 0 forward_delay 0
address add $DOM0_CIDR dev $BRIDGE
link set $BRIDGE up
EOB
        }
    } </dev/null >"$SERVICE_LOGS/network.log" 2>&1 &
else
    ip link set lo up
fi

# xenstored, then dom0's own entries in the store (xen-init-dom0). Xen's C xenstored rather than
# Debian's default, the OCaml oxenstored: by the time both demo guests had reported their network
# checks it had used 2.2-2.5 s of dom0's CPU against 3.4-4.7 s (3.1-3.6 s without oxenstored's access
# log) under QEMU TCG, while the guests boot beside it (two rounds).
read -r capabilities <"$PROC/xen/capabilities"
if [ "${capabilities#*control_d}" != "$capabilities" ]; then
    XENSTORED_ROOTDIR=$ROOT/run/xenstored "$XEN_BIN/${XENSTORED:-xenstored}" --pid-file "$XENSTORE_PID"
    i=0
    until xenstore-read -s / >/dev/null 2>&1 || [ "$i" -ge 300 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    "$XEN_BIN/xen-init-dom0" >/dev/null
fi

# The guests: xenlive-boot creates them now, while stage 2 starts its services, and then reports on
# them until they are ready (its copy of the status lines: /var/log/xenlive/xenlive-boot.log). Started
# as a service of stage 2 instead, it printed `dom0 up` ~4 s after stage 2 began under QEMU TCG.
"$LIB/xenlive-boot" </dev/null >>"$SERVICE_LOGS/xenlive-boot.log" 2>&1 &
