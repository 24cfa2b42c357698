# xenlive: what dom0's scripts share (sourced by bash: xenlive-boot, xenlive-console).
#
# Status lines go to dom0's console, which Xen passes on to the serial port:
#
#   xenlive-status: <subject> <state> [detail]
#
# subjects: dom0, toolstack, plan, guest <name>, guests, web; `build.py smoke` reads these lines.
#
# Written for bash builtins where possible: every process start costs ~75 ms in a PV dom0 under TCG.

XEN_BIN=/usr/lib/xen-4.17/bin
NETWORK=no BRIDGE=xenbr0 DOMAIN=xen.lan NAT=no
# shellcheck source=/dev/null
[[ -r /etc/xenlive/xenlive.conf ]] && . /etc/xenlive/xenlive.conf
# shellcheck source=/dev/null
[[ -r /etc/xenlive/init.conf ]] && . /etc/xenlive/init.conf  # what dom0's init asks of xenlive-boot
PATH=$XEN_BIN:$PATH                          # xl and friends without Debian's version wrapper script

GUESTS_TSV=/etc/xenlive/guests.tsv          # name image type autostart skip (tab-separated)
MEDIUM=/run/xenlive/medium                  # where dom0's initramfs mounted the ISO
IMAGES=/run/xenlive/images                  # guest images, mounted read-only from the medium
COW=/run/xenlive/cow                        # tmpfs holding each guest's written blocks
CONSOLE_LOGS=/var/log/xen/console           # xenconsoled --log=guest writes guest-NAME.log here
STATE=/run/xenlive/state                    # NAME.created, NAME.done (ready), NAME.net (network reported)
OUT=/dev/hvc0
[[ -w $OUT ]] || OUT=/dev/console

status() {  # the line on the console, and on stdout (the service's log) with dom0's uptime
    local uptime IFS=$' \t\n'
    read -r uptime _ </proc/uptime
    printf 'xenlive-status: %s\n' "$*" >"$OUT"
    printf 'xenlive-status: %s (dom0 uptime %ss)\n' "$*" "$uptime"
}
