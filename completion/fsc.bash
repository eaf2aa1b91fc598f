# bash completion for fsc(1): commands, options, local files for put and
# -o, and the server's names (files, and folders ending with '/') for ls,
# get, rm, size, mv and watch (asked with `fsc ls`, given two seconds at
# most).
#
# Words are taken from the line up to the cursor and split on blanks only,
# so HOST:PORT and names with ':' stay whole whatever COMP_WORDBREAKS says.

_fsc_commands="ls size rm mkdir mv get put watch announce shell"

# Options per command, as `fsc COMMAND --help` lists them.
_fsc_command_options() {
  case $1 in
  ls) echo "-l -h -R --recursive --json --help" ;;
  size) echo "-h --help" ;;
  rm) echo "-r --recursive --help" ;;
  mkdir) echo "-p --parents --help" ;;
  mv) echo "--no-clobber --help" ;;
  get) echo "-o --output -c --continue -r --recursive --help" ;;
  put) echo "--as --no-clobber -c --continue -r --recursive --help" ;;
  watch) echo "--json --retry --help" ;;
  *) echo "--help" ;;
  esac
}

# Adds to COMPREPLY the words of $2 (one per line) that start with $1,
# quoted for the shell.
_fsc_add_matching() {
  local cur=$1 w
  while IFS= read -r w; do
    [ -n "$w" ] && [[ $w == "$cur"* ]] && COMPREPLY+=("$(printf '%q' "$w")")
  done <<<"$2"
}

# The server's file names, one per line; nothing when it does not answer
# within two seconds. $1 is fsc as typed, the rest its -s option.
_fsc_remote_names() {
  timeout 2 "$1" "${@:2}" -q ls 2>/dev/null
}

_fsc() {
  local line=${COMP_LINE:0:COMP_POINT}
  local -a words
  # No -r: a backslash keeps a blank inside a word ("a\ b" is one word).
  # shellcheck disable=SC2162
  read -a words <<<"$line"
  # A blank before the cursor starts a new, empty word.
  [[ $line == *[[:blank:]] ]] && words+=("")
  local cur=${words[${#words[@]} - 1]}
  local prev=${words[${#words[@]} - 2]:-}
  local fsc=${words[0]} server=() cmd= i w only_operands=

  COMPREPLY=()
  # The global options before the command, then the command.
  for ((i = 1; i < ${#words[@]} - 1; i++)); do
    w=${words[i]}
    if [ -n "$cmd" ]; then
      [ "$w" = -- ] && only_operands=1
      continue
    fi
    case $w in
    -s | --server) server=(-s "${words[i + 1]}"); ((i++)) ;;
    -s?*) server=(-s "${w#-s}") ;;
    --server=*) server=(-s "${w#--server=}") ;;
    -*) ;;
    *) cmd=$w ;;
    esac
  done

  if [ -z "$cmd" ]; then
    case $prev in
    -s | --server) return 0 ;; # HOST:PORT: nothing to offer
    esac
    if [[ $cur == -* ]]; then
      _fsc_add_matching "$cur" "$(printf '%s\n' -s --server -q --quiet --help --version)"
    else
      _fsc_add_matching "$cur" "$(printf '%s\n' $_fsc_commands)"
    fi
    return 0
  fi

  if [ -z "$only_operands" ] && [[ $cur == -* ]]; then
    _fsc_add_matching "$cur" "$(printf '%s\n' $(_fsc_command_options "$cmd"))"
    return 0
  fi
  case $cmd:$prev in
  get:-o | get:--output)
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    return 0
    ;;
  watch:--retry) return 0 ;;
  esac
  case $cmd in
  get | rm | size | mv | ls | watch)
    _fsc_add_matching "$cur" "$(_fsc_remote_names "$fsc" "${server[@]}")"
    ;;
  put)
    if [ "$prev" = --as ]; then
      _fsc_add_matching "$cur" "$(_fsc_remote_names "$fsc" "${server[@]}")"
    else
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
    fi
    ;;
  esac
  # bash replaces only the part of the word after its last ':' when ':' is
  # a word break: give it only that part.
  if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
    local colon_prefix=${cur%"${cur##*:}"}
    for i in "${!COMPREPLY[@]}"; do
      COMPREPLY[i]=${COMPREPLY[i]#"$colon_prefix"}
    done
  fi
  return 0
}

complete -F _fsc fsc
