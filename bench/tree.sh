# bench/tree.sh: the "tree" case of bench/compare (sourced by it): a tree of
# many small files sent and fetched with fsc against rsync's daemon, and a
# recursive listing of a large tree, and the floor under them: the same
# files made by bench/mkfiles with the kernel alone. Every function prints
# one number.
#
# Settings (environment, read by bench/compare):
#   TREE_FILES=N      files in the transfer tree (10000), of TREE_FILE_SIZE
#   TREE_FILE_SIZE=B  bytes per file (4096)
#   TREE_DIRS=N       folders they are spread over (100)
#   LS_FILES=N        files in the listed tree (100000), over LS_DIRS (1000)

# make_tree DIR FILES DIRS SIZE: DIRS folders d0000.. with FILES files in all.
make_tree() {
  local dir=$1 files=$2 dirs=$3 size=$4
  python3 - "$dir" "$files" "$dirs" "$size" <<'PY'
import os, sys
root, files, dirs, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
blob = os.urandom(size)
for i in range(files):
    d = os.path.join(root, "d%04d" % (i % dirs))
    if i < dirs:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d.bin" % i), "wb") as fh:
        fh.write(blob[i % 251:] + blob[:i % 251])
PY
}

# start_rsyncd PORT: modules "up" (writable, $tmp/rsync-up) and "src" (the
# source tree, read-only), as an rsync daemon run by this user (and, when
# that is root, writing as root rather than as the default "nobody").
start_rsyncd() {
  local conf=$tmp/rsyncd.conf
  mkdir -p "$tmp/rsync-up"
  cat >"$conf" <<CONF
use chroot = no
uid = $(id -un)
gid = $(id -gn)
pid file = $tmp/rsyncd.pid
log file = $tmp/rsyncd.log
[up]
  path = $tmp/rsync-up
  read only = no
[src]
  path = $tmp/tree-src
  read only = yes
CONF
  rsync --daemon --no-detach --config="$conf" --port="$1" --address=127.0.0.1 &
  started=$!
  pids+=("$started")
  wait_port "$1"
}

# Seconds since T0_NS.
secs_since() {
  awk -v t0="$1" -v t1="$(now_ns)" 'BEGIN { printf "%.3f", (t1 - t0) / 1e9 }'
}

# Every round writes into a folder of a new name, and nothing is deleted
# until the rounds are over: on ext4 without a journal (as on the machines
# measured here), each file created in the minute after many deletions
# scans past every inode freed in that minute (recently_deleted()), which
# made a round after a deletion take seconds longer for either side, and
# measured that rather than the transfer.
# (Each round runs in a subshell of alternate(): the name comes from the
# clock, not from a counter.)
ROUND_N=0
next_round() { ROUND_N=$(now_ns); }

# tput_fsc PORT: fsc put -r of the source tree into a new folder.
tput_fsc() {
  local t0
  next_round
  sync
  t0=$(now_ns)
  "$FSC" -s "127.0.0.1:$1" -q put -r "$tmp/tree-src" --as "t$ROUND_N" >/dev/null
  secs_since "$t0"
}

# tput_rsync [--fsync]: rsync -a of the source tree to the daemon's "up".
tput_rsync() {
  local t0
  next_round
  sync
  t0=$(now_ns)
  rsync -a "$@" "$tmp/tree-src/" "rsync://127.0.0.1:$P_RSYNC/up/t$ROUND_N/"
  secs_since "$t0"
}

# tget_fsc: fsc get -r of the tree fsd serves, into a new folder.
tget_fsc() {
  local t0
  next_round
  sync
  t0=$(now_ns)
  "$FSC" -s "127.0.0.1:$P_FSD_TREE" -q get -r src -o "$tmp/tget-$ROUND_N" >/dev/null
  secs_since "$t0"
}

tget_rsync() {
  local t0
  next_round
  sync
  t0=$(now_ns)
  rsync -a "rsync://127.0.0.1:$P_RSYNC/src/" "$tmp/tget-$ROUND_N/"
  secs_since "$t0"
}

# tfloor_mk MODE: bench/mkfiles makes the same tree with MODE (tmpfile, as
# fsc get -r stores a file; rename, as fsd commits one) on both cores:
# the kernel's share of the rows above, with nothing else running.
tfloor_mk() {
  next_round
  sync
  "$MKFILES" -t 2 -m "$1" "$tmp/tfloor-$ROUND_N" "${TREE_FILES:-10000}" \
    "${TREE_DIRS:-100}" "${TREE_FILE_SIZE:-4096}"
}

# lsr_fsc: fsc ls -R of the large tree.
lsr_fsc() {
  local t0 n
  t0=$(now_ns)
  n=$("$FSC" -s "127.0.0.1:$P_FSD_LS" ls -R | wc -l)
  [ "$n" -ge "$LS_FILES" ] || die "ls -R listed $n entries, want $LS_FILES files"
  secs_since "$t0"
}

# tree_case: sets up the trees and servers, runs the rounds, adds the rows.
tree_case() {
  local n=${TREE_FILES:-10000} sz=${TREE_FILE_SIZE:-4096} nd=${TREE_DIRS:-100}
  local lsn=${LS_FILES:-100000} lsd=${LS_DIRS:-1000}
  LS_FILES=$lsn
  P_RSYNC=$((PORT_BASE + 11))
  P_FSD_TREE=$((PORT_BASE + 12))
  P_FSD_TREE_NF=$((PORT_BASE + 13))
  P_FSD_LS=$((PORT_BASE + 14))
  log "tree: $n files of $sz bytes in $nd folders; ls -R of $lsn files in $lsd folders"
  make_tree "$tmp/tree-src" "$n" "$nd" "$sz"
  mkdir -p "$tmp/fsd-tree/src" "$tmp/fsd-tree-nf" "$tmp/fsd-ls"
  cp -a "$tmp/tree-src/." "$tmp/fsd-tree/src/"
  make_tree "$tmp/fsd-ls" "$lsn" "$lsd" 0
  sync
  start_rsyncd "$P_RSYNC"
  start_fsd "$tmp/fsd-tree" "$P_FSD_TREE"
  start_fsd "$tmp/fsd-tree-nf" "$P_FSD_TREE_NF" --no-fsync
  start_fsd "$tmp/fsd-ls" "$P_FSD_LS"
  alternate tput_fsc "tput_fsc $P_FSD_TREE" tput_rs "tput_rsync --fsync"
  alternate tputnf_fsc "tput_fsc $P_FSD_TREE_NF" tputnf_rs "tput_rsync"
  alternate tget_fsc tget_fsc tget_rs tget_rsync
  alternate tfloor_tmp "tfloor_mk tmpfile" tfloor_ren "tfloor_mk rename"
  alternate lsr_fsc lsr_fsc
  local what="$n files of $((sz / 1024)) KiB"
  row "put a tree of $what" "s" "fsc put -r" tput_fsc "rsync -a --fsync to rsync daemon" tput_rs "%.2f" lower 0.5
  row "put a tree of $what, fsd --no-fsync" "s" "fsc put -r" tputnf_fsc "rsync -a to rsync daemon" tputnf_rs "%.2f" lower 0.5
  row "get a tree of $what" "s" "fsc get -r" tget_fsc "rsync -a from rsync daemon" tget_rs "%.2f" lower 0.5
  row "create the same files, kernel alone, 2 threads: O_TMPFILE + linkat (get -r's way)" "s" "bench/mkfiles" tfloor_tmp "—" "" "%.2f" lower ""
  row "create the same files, kernel alone, 2 threads: temp name + rename (fsd's way)" "s" "bench/mkfiles" tfloor_ren "—" "" "%.2f" lower ""
  row "ls -R of $lsn files in $lsd folders" "s" "fsc ls -R" lsr_fsc "—" "" "%.2f" lower ""
}
