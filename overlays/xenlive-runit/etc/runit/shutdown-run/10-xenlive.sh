# xenlive: dom0's last words before runit powers the machine off (sourced by Debian's /etc/runit/3, in
# place of the sysv shutdown scripts, once /etc/runit/native.boot.run exists). The guests are already
# stopped (rc.shutdown); the root file system lives in memory and the medium is read-only, so there is
# nothing to unmount: runit syncs and powers off.
# shellcheck shell=sh
. "${XENLIVE_ROOT-}/usr/lib/xenlive/contract.sh"
echo "$STATUS_PREFIX dom0 down" >"$CONSOLE"
