#!/usr/bin/env bash
# Provenance: berth's own copy of the shared harness ../shared/vm/run-in-cgroup2-vm.sh (written
# for this project; the shared README records the facts measured with it). Kept here so the test
# suite does not depend on a folder outside the checkout. Changes from the shared script: none
# but this header; keep them in step when either changes (CACHE_FORMAT guards the cache format).
# Used by test/integration/cgroups-v2-vm.test.ts to prove the cgroup v2 driver on a pure v2 kernel.
#
# run-in-cgroup2-vm.sh -- run one shell command inside a throwaway QEMU guest whose kernel
# has a pure cgroup v2 hierarchy (cgroup_no_v1=all), with cpuset cpu io memory hugetlb pids
# rdma misc all enabled in the root cgroup's cgroup.subtree_control. The host's own cgroup
# setup is not touched.
#
# The guest's root filesystem is this host's "/" shared read-only over virtio-9p with a
# tmpfs overlay on top: everything is writable inside the guest and every write is thrown
# away. /tmp, /run and /dev/shm are fresh tmpfs mounts (if the caller's cwd is under /tmp,
# that subtree stays visible). The command runs as root, in the root cgroup, in the caller's
# working directory, with the caller's exported environment, stdin from /dev/null. Its
# stdout/stderr are streamed back; the script exits with the command's exit status.
#
# Usage:   run-in-cgroup2-vm.sh 'command string'        (run by bash -c style)
#          run-in-cgroup2-vm.sh -- prog arg1 arg2 ...   (argv, quoted for you)
# Env knobs (all optional):
#   VM_MEM=2G  VM_CPUS=<host cores, max 4>  VM_TIMEOUT=900 (s, whole VM lifetime)
#   VM_ACCEL=auto|kvm|tcg   VM_MACHINE=microvm|pc   VM_BOOT_TIMEOUT=45 (s, until cmd starts)
#   VM_RW_DIRS=/a:/b   host dirs shared READ-WRITE at the same path (writes persist)
#   VM_APPEND='...'    extra guest kernel command line
#   VM_TCG_THREAD=single|multi  TCG only: multi = vCPUs run in parallel, but rare boot hangs
#   VM_KEEP=1          keep the per-run dir (console.log, qemu.log)
#   VM_VERBOSE=1       progress + guest console on stderr
#   VMCG2_HOME=/tmp/vm-cg2   holds cache/ (kernel, busybox, initramfs) and runs/
# Exit status: the command's; 124 = VM_TIMEOUT hit; 125 = VM/guest setup failed.
# In the guest: /dev/vda is a 1 GiB null block device (reads return zeroes, writes are
# dropped) for io.max/io.stat tests; lo is up; the host root is also at /.vmcg2/lower.
# Needs root: apt-get, and 9p passthrough must be able to read every host file.
set -euo pipefail

VMCG2_HOME=${VMCG2_HOME:-/tmp/vm-cg2}
CACHE=$VMCG2_HOME/cache
VM_MEM=${VM_MEM:-2G}
ncpu=$(nproc 2>/dev/null || echo 2); [ "$ncpu" -gt 4 ] && ncpu=4
VM_CPUS=${VM_CPUS:-$ncpu}
VM_TIMEOUT=${VM_TIMEOUT:-900}
VM_BOOT_TIMEOUT=${VM_BOOT_TIMEOUT:-45}
VM_ACCEL=${VM_ACCEL:-auto}
VM_MACHINE=${VM_MACHINE:-microvm}
VM_KEEP=${VM_KEEP:-0}
VM_VERBOSE=${VM_VERBOSE:-0}
VM_RW_DIRS=${VM_RW_DIRS:-}
VM_APPEND=${VM_APPEND:-}
VM_TCG_THREAD=${VM_TCG_THREAD:-single}
# modules (load order) that Debian's amd64 kernel builds as =m and the guest needs
MODS="virtio_ring virtio virtio_mmio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
      9pnet 9pnet_virtio netfs fscache 9p overlay virtio_blk"
CACHE_FORMAT=7   # bump when the guest init below changes (forces a cache rebuild)

log() { if [ "$VM_VERBOSE" = 1 ]; then echo "[vmcg2] $*" >&2; fi; }
die() { echo "run-in-cgroup2-vm: $*" >&2; exit 125; }

if [ $# -eq 0 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2
fi
if [ "$1" = "--" ]; then shift; CMD=$(printf '%q ' "$@"); else CMD="$*"; fi
[ "$(id -u)" = 0 ] || die "must run as root"
CALLER_CWD=$(pwd -P)

# ------------------------------------------------------------------ host setup (cached)
apt_updated=0
APTLOG=$VMCG2_HOME/apt.log
apt_q() {   # run apt-get quietly; show its log only when it fails
  mkdir -p "$VMCG2_HOME"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@" > "$APTLOG" 2>&1 < /dev/null && return 0
  tail -n 20 "$APTLOG" >&2; return 1
}
apt_update_once() {
  [ $apt_updated = 1 ] && return 0
  log "apt-get update"
  apt_q update || die "apt-get update failed"
  apt_updated=1
}
apt_install() {
  log "apt-get install $*"
  apt_q install -y --no-install-recommends "$@" && return 0
  apt_update_once
  apt_q install -y --no-install-recommends "$@" || die "apt-get install $* failed"
}
apt_download() {  # into cwd, not installed: no /boot, no initramfs hooks, no package conflicts
  apt_q -o APT::Sandbox::User=root download "$1" && return 0
  apt_update_once
  apt_q -o APT::Sandbox::User=root download "$1" || die "apt-get download $1 failed"
}

extract_vmlinux() {  # $1 = bzImage, $2 = output ELF (like the kernel's scripts/extract-vmlinux)
  local img=$1 out=$2 off magic
  for magic in '\xfd7zXZ\x00' '\x1f\x8b\x08' '\x28\xb5\x2f\xfd'; do
    for off in $(LC_ALL=C grep -obUaP "$magic" "$img" 2>/dev/null | cut -d: -f1 | head -5); do
      case $magic in
        *7zXZ*) command -v xz >/dev/null || apt_install xz-utils
                tail -c +$((off+1)) "$img" | xz -dcq --single-stream > "$out" 2>/dev/null ;;
        *x1f*)  tail -c +$((off+1)) "$img" | gzip -dcq > "$out" 2>/dev/null ;;
        *)      command -v zstd >/dev/null || continue
                tail -c +$((off+1)) "$img" | zstd -dcq > "$out" 2>/dev/null ;;
      esac
      [ "$(head -c 4 "$out" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] && return 0
    done
  done
  rm -f "$out"; return 1
}

setup_host() {
  command -v qemu-system-x86_64 >/dev/null || apt_install qemu-system-x86
  [ -f "$CACHE/ready-$CACHE_FORMAT" ] && return 0
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"; flock -w 1800 9 || die "timed out waiting for $CACHE/.lock"
  if [ -f "$CACHE/ready-$CACHE_FORMAT" ]; then exec 9>&-; return 0; fi
  rm -rf "$CACHE"/build.* "$CACHE"/ready-*
  local tmp kpkg kver m f bbx
  tmp=$(mktemp -d "$CACHE/build.XXXXXX"); cd "$tmp"
  # Debian's generic amd64 flavour; the -cloud flavour has no 9p support at all
  apt-cache show linux-image-amd64 >/dev/null 2>&1 || apt_update_once
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [ -n "$kpkg" ] || die "cannot resolve linux-image-amd64"
  log "downloading $kpkg and busybox-static (unpacked into $CACHE, not installed)"
  apt_download "$kpkg"; apt_download busybox-static
  mkdir k bb
  dpkg-deb -x "$kpkg"_*.deb k || die "cannot unpack $kpkg"
  dpkg-deb -x busybox-static_*.deb bb || die "cannot unpack busybox-static"
  bbx=$tmp/bb/bin/busybox; [ -x "$bbx" ] || die "no busybox in busybox-static"
  kver=$(ls k/lib/modules | head -1)
  [ -f "k/boot/vmlinuz-$kver" ] || die "no vmlinuz in $kpkg"
  mkdir -p ir/bin ir/lib/modules ir/proc ir/sys ir/dev ir/mnt
  cp "$bbx" ir/bin/busybox
  for m in $MODS; do
    f=$(find "k/lib/modules/$kver" -name "$m.ko*" | head -1)
    if [ -z "$f" ]; then
      grep -q "/$m.ko" "k/lib/modules/$kver/modules.builtin" && continue
      die "kernel module $m not found in $kpkg"
    fi
    case $f in
      *.xz) "$bbx" xzcat "$f" ;; *.gz) "$bbx" zcat "$f" ;; *.zst) zstd -dcq "$f" ;; *) cat "$f" ;;
    esac > "ir/lib/modules/$m.ko" || die "cannot unpack module $m"
  done
  write_guest_init ir
  (cd ir && find . | "$bbx" cpio -o -H newc 2>/dev/null | gzip -1) > initrd.gz || die "cpio failed"
  # An uncompressed vmlinux can be booted through its PVH entry point: this skips the
  # real-mode setup and the XZ decompressor, which take ~3 s under TCG.
  if grep -q '^CONFIG_PVH=y' "k/boot/config-$kver" && extract_vmlinux "k/boot/vmlinuz-$kver" vmlinux; then
    mv vmlinux "$CACHE/vmlinux"
  fi
  cp "k/boot/vmlinuz-$kver" "$CACHE/vmlinuz"; cp "k/boot/config-$kver" "$CACHE/config"
  mv initrd.gz "$CACHE/initrd.gz"; echo "$kpkg $kver" > "$CACHE/kernel-version"
  cd /; rm -rf "$tmp"; touch "$CACHE/ready-$CACHE_FORMAT"; exec 9>&-
}

write_guest_init() {  # $1 = initramfs dir
  local d=$1 mods; mods=$(echo $MODS)
  cat > "$d/init" <<EOF
#!/bin/busybox sh
# stage 1, PID 1 in the initramfs: modules, 9p root + tmpfs overlay, switch_root
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
die() { echo "vmcg2-init: FATAL: \$*" > /dev/console; echo o > /proc/sysrq-trigger; sleep 10; poweroff -f; }
for m in $mods; do insmod /lib/modules/\$m.ko || die "insmod \$m"; done
mkdir -p /mnt/lower /mnt/rw /mnt/out /newroot
O="trans=virtio,version=9p2000.L,msize=262144"
mount -t 9p -o "\$O,ro,cache=loose" hostroot /mnt/lower || die "mount 9p hostroot"
mount -t 9p -o "\$O,cache=none" vmout /mnt/out || die "mount 9p vmout"
mount -t tmpfs -o mode=0755 vmcg2-rw /mnt/rw
mkdir -p /mnt/rw/upper /mnt/rw/work
mount -t overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work overlay /newroot || die "mount overlay"
mkdir -p /newroot/.vmcg2/out /newroot/.vmcg2/lower
cp /bin/busybox /stage2 /newroot/.vmcg2/
mount --move /mnt/out /newroot/.vmcg2/out
mount --move /mnt/lower /newroot/.vmcg2/lower
i=0   # extra read-write shares (VM_RW_DIRS): tags rw0..rwN, paths listed in out/rwdirs
while read -r p; do
  [ -n "\$p" ] || continue
  mkdir -p "/newroot\$p" && mount -t 9p -o "\$O,cache=none" rw\$i "/newroot\$p" || die "mount rw\$i at \$p"
  i=\$((i+1))
done < /newroot/.vmcg2/out/rwdirs
for d in proc sys dev; do mount --move /\$d /newroot/\$d; done
exec switch_root /newroot /.vmcg2/busybox sh /.vmcg2/stage2
EOF
  chmod 755 "$d/init"
  cat > "$d/stage2" <<'EOF'
# stage 2, PID 1 on the overlay root: cgroup2, tmpfs mounts, run the command, power off
BB=/.vmcg2/busybox; OUT=/.vmcg2/out
fin() { $BB sync; echo o > /proc/sysrq-trigger; $BB sleep 10; $BB poweroff -f; }
trap fin EXIT
$BB mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
$BB mkdir -p /dev/pts /dev/shm /dev/mqueue /run/lock /run/.hosttmp
$BB mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
$BB mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
$BB mount -t mqueue mqueue /dev/mqueue 2>/dev/null
$BB mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || echo "vmcg2: cgroup2 mount failed" > /dev/console
for c in $($BB cat /sys/fs/cgroup/cgroup.controllers); do
  echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control || echo "vmcg2: cannot enable $c" > /dev/console
done
# fresh tmpfs on /tmp; the caller's cwd (its top dir below /tmp) and VM_RW_DIRS below /tmp
# stay visible through rbinds of the overlay's /tmp
$BB mount --rbind /tmp /run/.hosttmp
$BB mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
keep() { [ -n "$1" ] && $BB mkdir -p "/tmp/$1" && $BB mount --rbind "/run/.hosttmp/$1" "/tmp/$1"; }
CWD=$($BB cat $OUT/cwd)
case "$CWD" in /tmp/?*) r=${CWD#/tmp/}; keep "${r%%/*}" ;; esac
while read -r p; do case "$p" in /tmp/?*) keep "${p#/tmp/}" ;; esac; done < $OUT/rwdirs
$BB hostname vmcg2
$BB ip link set lo up 2>/dev/null
[ -x /bin/bash ] && SH=/bin/bash || SH=/bin/sh
: > $OUT/started
cd /
$SH -c '. /.vmcg2/out/env; cd -- "$(cat /.vmcg2/out/cwd)" || exit 125; exec '"$SH"' /.vmcg2/out/cmd' \
  < /dev/null > $OUT/stdout 2> $OUT/stderr
echo $? > $OUT/rc.tmp && $BB mv $OUT/rc.tmp $OUT/rc
EOF
}

# ------------------------------------------------------------------ accelerator choice
pick_accel() {
  case $VM_ACCEL in kvm|tcg) echo "$VM_ACCEL"; return;; esac
  # KVM only with real hardware virtualisation visible (vmx/svm). A /dev/kvm without it
  # (e.g. PVM-style nested KVM inside a microVM) cannot run a stock distro kernel.
  if [ -r /dev/kvm ] && [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then echo kvm; else echo tcg; fi
}

# ------------------------------------------------------------------ run
setup_host
mkdir -p "$VMCG2_HOME/runs"
RUN=$(mktemp -d "$VMCG2_HOME/runs/run.XXXXXX")
OUTD=$RUN/out
QPID=""; TAILS=""
stop_qemu() {   # QPID is our `timeout` wrapper; qemu is its only child
  local kids
  if [ -n "$QPID" ]; then
    kids=$(pgrep -P "$QPID" 2>/dev/null || true)
    kill "$QPID" 2>/dev/null || true          # timeout passes SIGTERM on to qemu
    for _ in $(seq 20); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
    for p in $kids $QPID; do kill -9 "$p" 2>/dev/null || true; done
    wait "$QPID" 2>/dev/null || true
    QPID=""
  fi
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  stop_qemu
  for p in $TAILS; do kill "$p" 2>/dev/null || true; done
  if [ "$VM_KEEP" = 1 ]; then echo "run-in-cgroup2-vm: kept $RUN" >&2; else rm -rf "$RUN"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP

mkdir -p "$OUTD"
printf '%s\n' "$CMD" > "$OUTD/cmd"
printf '%s\n' "$CALLER_CWD" > "$OUTD/cwd"
export -p | grep -vE '^declare -[a-zA-Z-]* (PWD|OLDPWD|SHLVL|_|HOSTNAME|BASH_ENV|ENV|SHELLOPTS|BASHOPTS|UID|EUID|PPID)(=|$)' \
  > "$OUTD/env" || true
: > "$OUTD/rwdirs"
RWDIRS=()
if [ -n "$VM_RW_DIRS" ]; then
  IFS=: read -r -a rwlist <<< "$VM_RW_DIRS"
  for p in "${rwlist[@]}"; do
    [ -n "$p" ] || continue
    p=$(cd "$p" 2>/dev/null && pwd -P) || die "VM_RW_DIRS: no such directory: $p"
    RWDIRS+=("$p"); printf '%s\n' "$p" >> "$OUTD/rwdirs"
  done
fi

ACCEL=$(pick_accel)
MACHINE=$VM_MACHINE
KERNEL=$CACHE/vmlinuz; [ -f "$CACHE/vmlinux" ] && KERNEL=$CACHE/vmlinux
[ "$MACHINE" = microvm ] && [ "$KERNEL" = "$CACHE/vmlinuz" ] && MACHINE=pc   # microvm boots PVH only

start_vm() {
  local acc app dev tsc_khz i od=${OUTD//,/,,}   # qemu option values: ',' must be doubled
  rm -f "$OUTD"/started "$OUTD"/rc "$OUTD"/rc.tmp
  : > "$OUTD/stdout"; : > "$OUTD/stderr"; : > "$RUN/console.log"
  app="console=ttyS0 quiet loglevel=4 panic=-1 oops=panic mitigations=off 8250.nr_uarts=1"
  app="$app cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1"
  if [ "$ACCEL" = kvm ]; then
    acc=(-accel kvm -cpu host)
  else
    # thread=single by default: multi-threaded TCG (MTTCG) hung in ~2-3% of boots here
    # (stop_machine/IPI soft lockups); VM_TCG_THREAD=multi trades that for parallelism
    acc=(-accel "tcg,thread=$VM_TCG_THREAD" -cpu max)
    # Under TCG the guest TSC is the host TSC: tell the guest its rate (PIT calibration is
    # flaky under emulation and microvm has no HPET/PM timer to fall back on -> boot hangs)
    # and that it is reliable (otherwise "TSCs unsynchronized" -> jiffies clocksource).
    tsc_khz=$(awk -F: '/^cpu MHz/{printf "%d", $2*1000; exit}' /proc/cpuinfo)
    [ -n "$tsc_khz" ] && app="$app tsc_early_khz=$tsc_khz"
    app="$app tsc=reliable"
  fi
  if [ "$MACHINE" = microvm ]; then
    app="$app pci=off"
    dev=(-M microvm
         -fsdev local,id=fs0,path=/,security_model=passthrough,readonly=on,multidevs=remap
         -device virtio-9p-device,fsdev=fs0,mount_tag=hostroot
         -fsdev "local,id=fs1,path=$od,security_model=passthrough"
         -device virtio-9p-device,fsdev=fs1,mount_tag=vmout
         -blockdev driver=null-co,node-name=null0,size=1073741824,read-zeroes=on
         -device virtio-blk-device,drive=null0)
    for i in "${!RWDIRS[@]}"; do
      dev+=(-fsdev "local,id=rw$i,path=${RWDIRS[$i]//,/,,},security_model=passthrough,multidevs=remap"
            -device "virtio-9p-device,fsdev=rw$i,mount_tag=rw$i")
    done
  else
    app="$app i8042.noaux i8042.nokbd"
    dev=(-M pc
         -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap
         -virtfs "local,path=$od,mount_tag=vmout,security_model=passthrough"
         -blockdev driver=null-co,node-name=null0,size=1073741824,read-zeroes=on
         -device virtio-blk-pci,drive=null0)
    for i in "${!RWDIRS[@]}"; do
      dev+=(-virtfs "local,path=${RWDIRS[$i]//,/,,},mount_tag=rw$i,security_model=passthrough,multidevs=remap")
    done
  fi
  log "accel=$ACCEL machine=$MACHINE kernel=$(basename "$KERNEL") ($(cat "$CACHE/kernel-version")) run=$RUN"
  timeout -k 10 "$VM_TIMEOUT" qemu-system-x86_64 "${acc[@]}" "${dev[@]}" -m "$VM_MEM" -smp "$VM_CPUS" \
    -nodefaults -no-user-config -display none -monitor none -no-reboot \
    -serial "file:$RUN/console.log" \
    -kernel "$KERNEL" -initrd "$CACHE/initrd.gz" -append "$app $VM_APPEND" \
    > "$RUN/qemu.log" 2>&1 < /dev/null &
  QPID=$!
}

show_diag() {
  { echo "--- qemu.log:"; tail -n 20 "$RUN/qemu.log"; echo "--- guest console (tail):"; tail -n 40 "$RUN/console.log"; } >&2
}

T0=$SECONDS
for attempt in 1 2; do
  start_vm
  [ "$VM_VERBOSE" = 1 ] && { tail -q -s 0.1 -n +1 -f --pid="$QPID" "$RUN/console.log" >&2 & TAILS="$TAILS $!"; }
  # wait until the guest has started the command (or qemu died, or the boot watchdog fires)
  deadline=$(( SECONDS + VM_BOOT_TIMEOUT ))
  { while [ ! -e "$OUTD/started" ] && kill -0 "$QPID" && [ $SECONDS -lt $deadline ]; do
      sleep 0.05
    done; } 2>/dev/null   # (also silences bash's "Aborted ..." job notices)
  [ -e "$OUTD/started" ] && break
  echo "run-in-cgroup2-vm: guest did not start the command (attempt $attempt, accel=$ACCEL)" >&2
  stop_qemu; show_diag
  [ $attempt = 2 ] && exit 125
  [ "$ACCEL" = kvm ] && [ "$VM_ACCEL" = auto ] && ACCEL=tcg   # broken KVM: fall back to TCG
done
log "command started $(( SECONDS - T0 ))s after launch"
tail -q -s 0.1 -n +1 -f --pid="$QPID" "$OUTD/stdout" & TAILS="$TAILS $!"
tail -q -s 0.1 -n +1 -f --pid="$QPID" "$OUTD/stderr" >&2 & TAILS="$TAILS $!"
set +e; wait "$QPID" 2>/dev/null; QRC=$?; set -e
QPID=""
for p in $TAILS; do wait "$p" 2>/dev/null || true; done; TAILS=""

if [ -s "$OUTD/rc" ]; then exit "$(cat "$OUTD/rc")"; fi
if [ "$QRC" = 124 ] || [ $(( SECONDS - T0 )) -ge "$VM_TIMEOUT" ]; then
  echo "run-in-cgroup2-vm: VM killed after VM_TIMEOUT=${VM_TIMEOUT}s" >&2; show_diag; exit 124
fi
echo "run-in-cgroup2-vm: guest did not report an exit status (qemu rc=$QRC)" >&2; show_diag
exit 125
