#!/usr/bin/env bash
# Sources fsc's bash completion and checks what it offers, against a real
# fsd on 127.0.0.1:0 serving a temporary folder.
#
# Usage: test_fsc_completion.sh COMPLETION_FILE FSD FSC
set -uo pipefail
comp=$1
fsd=$(realpath "$2")
fsc=$(realpath "$3")
tmp=$(mktemp -d)
fsd_pid=
trap '[ -z "$fsd_pid" ] || kill "$fsd_pid"; rm -rf "$tmp"' EXIT

mkdir "$tmp/root" "$tmp/cwd"
for f in alpha.txt beta.bin "gamma space.txt"; do
  echo "$f" > "$tmp/root/$f"
done
touch "$tmp/cwd/local.txt"

"$fsd" --root "$tmp/root" --listen 127.0.0.1:0 2>"$tmp/fsd.log" &
fsd_pid=$!
for _ in $(seq 200); do
  grep -q 'listening on' "$tmp/fsd.log" && break
  sleep 0.05
done
addr=$(sed -n 's/^fsd: listening on //p' "$tmp/fsd.log")
[ -n "$addr" ] || { echo "fsd did not start"; cat "$tmp/fsd.log"; exit 1; }

# shellcheck source=/dev/null
source "$comp"
complete -p fsc >/dev/null || { echo "sourcing $comp registered no completion for fsc"; exit 1; }

failures=0
# expect "LINE BEFORE THE CURSOR" CANDIDATE...: runs the completion function
# as bash would on <TAB> and compares the candidates.
expect() {
  local line=$1
  shift
  COMP_LINE=$line
  COMP_POINT=${#line}
  read -r -a COMP_WORDS <<<"$line"
  COMP_CWORD=${#COMP_WORDS[@]}
  COMPREPLY=()
  _fsc
  local got want
  got=$(printf '%s\n' "${COMPREPLY[@]}" | sort)
  want=$(printf '%s\n' "$@" | sort)
  if [ "$got" = "$want" ]; then
    echo "ok: '${line/$fsc/fsc}<TAB>' -> ${*:-(nothing)}"
  else
    echo "FAIL: '${line/$fsc/fsc}<TAB>'"
    echo "  want: $(echo $want)"
    echo "  got:  $(echo $got)"
    failures=$((failures + 1))
  fi
}

cd "$tmp/cwd" || exit 1
export FSC_SERVER=$addr
expect "$fsc g" get
expect "$fsc s" size shell
expect "$fsc " ls size rm mkdir mv get put watch announce shell
expect "$fsc --v" --version
expect "$fsc get " alpha.txt beta.bin 'gamma\ space.txt'
expect "$fsc get a" alpha.txt
expect "$fsc get alpha.txt " alpha.txt beta.bin 'gamma\ space.txt'
expect "$fsc get gamma\\ s" 'gamma\ space.txt'
expect "$fsc rm b" beta.bin
expect "$fsc size -h " alpha.txt beta.bin 'gamma\ space.txt'
expect "$fsc get --c" --continue
expect "$fsc ls -" -l -h -R --recursive --json --help
expect "$fsc mkdir -" -p --parents --help
expect "$fsc rm --r" --recursive
expect "$fsc put l" local.txt
expect "$fsc put local.txt --as a" alpha.txt
expect "$fsc get alpha.txt -o l" local.txt
expect "$fsc watch --retry " 
unset FSC_SERVER
# The server named on the command line, in each spelling fsc accepts.
expect "$fsc -s $addr get b" beta.bin
expect "$fsc --server $addr get b" beta.bin
expect "$fsc --server=$addr -q get b" beta.bin
expect "$fsc -s " 
# No server there: no names, and no error on the terminal.
expect "$fsc -s 127.0.0.1:1 get " 

echo "completion: $failures failure(s)"
[ "$failures" -eq 0 ]
