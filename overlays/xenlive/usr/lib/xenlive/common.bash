# xenlive: what dom0's scripts share (sourced by bash: xenlive-boot, xenlive-console).
# shellcheck shell=bash disable=SC2034  # what it sets is for the scripts that source it
#
# Paths, names, the guest table's columns and the state flags come from dom0's runtime contract,
# /usr/lib/xenlive/contract.sh, which xenlive generates from xenlive/contract.py: a script here never
# spells them itself. Under ${XENLIVE_ROOT} (tests/scripts) every one of them lies below that directory.
#
# Status lines go to dom0's console, which Xen passes on to the serial port:
#
#   xenlive-status: <subject> <state> [detail]
#
# subjects and states: xenlive/contract.py STATUS (dom0, toolstack, web, network, plan, guest NAME,
# guests), listed in docs/console-protocol.md; `xenlive smoke` reads these lines.
#
# Per-guest state flags: $STATE/NAME.FLAG, one file each (STATE_FLAGS):
#   created  xl create succeeded             done  the guest printed its ready marker
#   net      its network verdict was printed ("ok ADDRESS" or "failed")
#   gone     it crashed or went away before it was ready (why)
#   panic    its kernel's panic line (why it crashed)
#
# Written for bash builtins where possible: every process start in a PV dom0 under QEMU TCG is slow.

# shellcheck source=/dev/null
. "${XENLIVE_ROOT-}/usr/lib/xenlive/contract.sh"
NETWORK=no BRIDGE=xenbr0 DOMAIN=xen.lan NAT=no
# shellcheck source=/dev/null
[[ -r $SETTINGS ]] && . "$SETTINGS"
# shellcheck source=/dev/null
[[ -r $INIT_CONF ]] && . "$INIT_CONF"  # what dom0's init asks of xenlive-boot
[[ -n ${XEN_BIN:-} ]] && PATH=$XEN_BIN:$PATH  # xl and friends without Debian's version wrapper script
read -r -a IMAGE_FILES <<<"$IMAGE_FILES"   # disk.img vmlinux initrd.img: what each guest image holds
OUT=$CONSOLE
[[ -w $OUT ]] || OUT=$ROOT/dev/console

status() {  # the line on the console, and on stdout (the service's log) with dom0's uptime
    local uptime IFS=$' \t\n'
    read -r uptime _ <"$PROC/uptime"
    printf '%s %s\n' "$STATUS_PREFIX" "$*" >"$OUT"
    printf '%s %s (dom0 uptime %ss)\n' "$STATUS_PREFIX" "$*" "$uptime"
}

guests_table() {  # reads $GUESTS_TSV into one array per column, g_COLUMN: g_name[] g_image[] g_type[] ...
    # The columns are the contract's (GUEST_COLUMNS), in its order; comment and empty lines are skipped;
    # an empty field reads as "-". Sets ROWS, the number of guests.
    local -a columns fields
    local line i
    read -r -a columns <<<"$GUEST_COLUMNS"
    for i in "${!columns[@]}"; do
        columns[i]=g_${columns[i]}
        eval "${columns[i]}=()"
    done
    ROWS=0
    while IFS= read -r line; do
        [[ -z $line || $line == \#* ]] && continue
        IFS=$'\t' read -r -a fields <<<"$line"
        for i in "${!columns[@]}"; do
            eval "${columns[i]}[ROWS]=\${fields[i]:--}"
        done
        ROWS=$((ROWS + 1))
    done <"$GUESTS_TSV"
}
