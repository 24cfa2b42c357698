# xenlive: a Debian guest's shutdown under runit (sourced by Debian's /etc/runit/3 in place of the sysv
# shutdown scripts, once /etc/runit/native.boot.run exists). The guest's disk is a copy-on-write snapshot
# that dom0 throws away; runit syncs, and Xen takes the domain down when runit powers off.
# shellcheck shell=sh
sync
