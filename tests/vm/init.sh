#!/bin/busybox sh
# /init of the VM tier's initramfs: mount the host's root (read-only 9p) under a tmpfs overlay,
# mount the results share over the run directory, chroot in and run the host-written run.sh.
# The kernel passes `wayheap_results=PATH` from its command line as an environment variable.
/bin/busybox --install -s /bin
export PATH=/bin

fail() {
    echo "WAYHEAP-INIT-FAILED: $*"
    poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "WAYHEAP-INIT up at $(cut -d' ' -f1 /proc/uptime)s"
[ -n "$wayheap_results" ] || fail "no wayheap_results= on the kernel command line"

opts=trans=virtio,version=9p2000.L,msize=524288
mount -t 9p -o "$opts,ro,cache=loose" hostroot /lower || fail "mounting the host root share"
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot \
    || fail "overlayfs over the host root"
N=/newroot
# No tmpfs over /tmp or /run: the overlay is writable already, and the checkout (so the test
# binaries and the results directory) may itself live under /tmp.
mount -t proc proc $N/proc
mount -t sysfs sysfs $N/sys
mount -t devtmpfs devtmpfs $N/dev
mkdir -p $N/dev/pts $N/dev/shm
mount -t devpts devpts $N/dev/pts
mount -t tmpfs tmpfs $N/dev/shm
mount -t debugfs debugfs $N/sys/kernel/debug
mkdir -p "$N$wayheap_results"
mount -t 9p -o "$opts" results "$N$wayheap_results" || fail "mounting the results share"

chroot $N /bin/sh "$wayheap_results/run.sh"
echo "$?" > "$N$wayheap_results/exit-status"
sync
umount "$N$wayheap_results"
poweroff -f
