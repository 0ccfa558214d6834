# ---- edgetune tune.sh engine (POSIX sh: dash, busybox ash, bash) ----
# The profile's items are the calls in edgetune_items() above; this part is
# the same in every rendered script.
#
# Exit codes
#   0  apply: everything applied | verify: no drift | check, restore: done
#   1  hard failure: nothing could be applied (state dir not writable, or every item failed)
#   2  usage error
#   3  degraded: some items were skipped (absent key/NIC, unsupported) or failed; the rest applied
#   4  verify: drift (a live value or file differs from the profile, or another file overrides it)
#
# Environment (roots can point at fake trees for tests)
#   PROC_ROOT=/proc  PROC_SYS_ROOT=$PROC_ROOT/sys  SYS_ROOT=/sys  ETC_ROOT=/etc
#   RUN_ROOT=/run  USR_ROOT=/usr  STATE_DIR=/var/lib/edgetune
#   EDGETUNE_SCOPE=all|netns|host   which sysctls to touch (netns: only per-namespace keys)
#   EDGETUNE_LOAD_MODULES=1         0: never run modprobe
#   EDGETUNE_ONLY=nic               apply only the NIC-level items (offloads, channels, rings, flow hash,
#                                   RSS, RPS/RFS/XPS, IRQ affinity): a NIC that came back after a reset
#   ETHTOOL=ethtool  NFT=nft  IPTABLES=iptables

set -u
set -f

PROC_ROOT=${PROC_ROOT:-/proc}
PROC_SYS_ROOT=${PROC_SYS_ROOT:-$PROC_ROOT/sys}
SYS_ROOT=${SYS_ROOT:-/sys}
ETC_ROOT=${ETC_ROOT:-/etc}
RUN_ROOT=${RUN_ROOT:-/run}
USR_ROOT=${USR_ROOT:-/usr}
STATE_DIR=${STATE_DIR:-/var/lib/edgetune}
EDGETUNE_SCOPE=${EDGETUNE_SCOPE:-all}
EDGETUNE_LOAD_MODULES=${EDGETUNE_LOAD_MODULES:-1}
EDGETUNE_ONLY=${EDGETUNE_ONLY:-}
ETHTOOL=${ETHTOOL:-ethtool}
NFT=${NFT:-nft}
IPTABLES=${IPTABLES:-iptables}

SYSCTL_FILE="$ETC_ROOT/sysctl.d/$EDGETUNE_SYSCTL_NAME"
NFT_TABLE=edgetune_notrack

recorded_now=0
n_changed=0 n_unchanged=0 n_skipped=0 n_failed=0 n_drift=0 n_pending=0 n_restored=0
sysctl_lines=''
missing_nics=''
# What the profile sets, one line per item ("sysctl KEY", "file PATH", "nic KIND PATTERN LABEL-GLOB",
# "notrack FORMAT", "conntrack"): apply restores recorded originals of anything not claimed here,
# so a profile change takes back what the new profile no longer sets.
claims=''
iptables_rules_now=''
nl='
'

report() { # status kind name detail...
  _st=$1 _kind=$2 _name=$3
  shift 3
  printf '%-16s %-9s %s%s\n' "$_st" "$_kind" "$_name" "${*:+ $*}"
  case $_st in
    changed) n_changed=$((n_changed + 1)) ;;
    unchanged | ok) n_unchanged=$((n_unchanged + 1)) ;;
    skipped-*) n_skipped=$((n_skipped + 1)) ;;
    failed) n_failed=$((n_failed + 1)) ;;
    drift | overridden) n_drift=$((n_drift + 1)) ;;
    reboot-required) n_pending=$((n_pending + 1)) ;;
    restored | removed) n_restored=$((n_restored + 1)) ;;
  esac
}

have() { command -v "$1" >/dev/null 2>&1; }

# One finding of check, counted in its summary.
warn() { printf 'WARN %s\n' "$1"; n_drift=$((n_drift + 1)); }

claim() { claims="$claims$*$nl"; }
claimed() { case "$nl$claims" in *"$nl$*$nl"*) return 0 ;; esac; return 1; }
# A NIC-only apply (EDGETUNE_ONLY=nic) skips every other kind of item.
nic_only() { [ "$EDGETUNE_ONLY" = nic ]; }

# Entry names of a directory, one per line (globbing is off everywhere else).
list_dir() {
  set +f
  for _e in "$1"/* "$1"/.[!.]*; do
    [ -e "$_e" ] || [ -L "$_e" ] || continue
    case ${_e##*/} in .edgetune.*) continue ;; esac
    printf '%s\n' "${_e##*/}"
  done
  set -f
}

# Collapses runs of blanks and tabs so "4096\t87380" compares equal to "4096 87380".
norm() { printf '%s' "$1" | tr -s ' \t\n' '   ' | sed 's/^ //; s/ $//'; }

sysctl_path() {
  case $1 in
    */*) printf '%s/%s' "$PROC_SYS_ROOT" "$1" ;;
    *) printf '%s/%s' "$PROC_SYS_ROOT" "$(printf '%s' "$1" | tr . /)" ;;
  esac
}

# State records: one file per original value, named by an encoding of the item.
enc() { printf '%s' "$1" | sed 's/%/%25/g; s#/#%2F#g'; }
dec() { printf '%s' "$1" | sed 's#%2F#/#g; s/%25/%/g'; }

ensure_state() {
  [ -d "$STATE_DIR/sysctl" ] && [ -d "$STATE_DIR/files" ] && [ -d "$STATE_DIR/nic" ] && [ -d "$STATE_DIR/misc" ] && return 0
  mkdir -p "$STATE_DIR/sysctl" "$STATE_DIR/files" "$STATE_DIR/nic" "$STATE_DIR/misc" 2>/dev/null
}

# Records an original value once: a later apply must not overwrite the first original.
# Sets recorded_now=1 when this call made the record, so a failed first change can drop it again.
record() { # dir name value
  _rf="$STATE_DIR/$1/$(enc "$2")"
  recorded_now=0
  [ -e "$_rf" ] && return 0
  printf '%s\n' "$3" >"$_rf.tmp" && mv -f "$_rf.tmp" "$_rf" && recorded_now=1
}
unrecord() { [ "$recorded_now" = 1 ] && rm -f "$STATE_DIR/$1/$(enc "$2")"; recorded_now=0; }

# Writes stdin to $1 through a temp file in the same directory and a rename,
# so the target is always either the old or the new file, never truncated.
write_atomic() {
  _dir=$(dirname "$1")
  mkdir -p "$_dir" 2>/dev/null || return 1
  _tmp=$(mktemp "$_dir/.edgetune.XXXXXX" 2>/dev/null) || return 1
  if cat >"$_tmp" && chmod 0644 "$_tmp" && mv -f "$_tmp" "$1"; then
    return 0
  fi
  rm -f "$_tmp"
  return 1
}

# Element-wise max (at-least) or min (at-most) of two integer tuples; the wanted value for exact.
merge_value() { # live want compare
  if [ "$3" = exact ]; then printf '%s' "$2"; return; fi
  case "$1 $2" in *[!0-9\ ]*) printf '%s' "$2"; return ;; esac
  _out='' _rest=$1
  for _w in $2; do
    _l=${_rest%% *}
    _rest=${_rest#"$_l"}
    _rest=${_rest# }
    if [ -n "$_l" ]; then
      if [ "$3" = at-least ] && [ "$_l" -gt "$_w" ]; then _w=$_l; fi
      if [ "$3" = at-most ] && [ "$_l" -lt "$_w" ]; then _w=$_l; fi
    fi
    _out="$_out${_out:+ }$_w"
  done
  printf '%s' "$_out"
}

in_scope() { # scope
  case $EDGETUNE_SCOPE in
    all) return 0 ;;
    netns) [ "$1" = netns ] ;;
    host) [ "$1" != netns ] ;;
    *) return 0 ;;
  esac
}

# Files that `sysctl --system` (procps) reads after ours and that set $1 to another value.
sysctl_overrides() { # key value
  _ours=$EDGETUNE_SYSCTL_NAME
  _seen=''
  _later=''
  for _d in "$ETC_ROOT/sysctl.d" "$RUN_ROOT/sysctl.d" "$USR_ROOT/local/lib/sysctl.d" "$USR_ROOT/lib/sysctl.d"; do
    [ -d "$_d" ] || continue
    for _b in $(list_dir "$_d"); do
      case $_b in *.conf) ;; *) continue ;; esac
      case " $_seen " in *" $_b "*) continue ;; esac
      _seen="$_seen $_b"
      [ "$_b" = "$_ours" ] && continue
      if [ "$(printf '%s\n%s\n' "$_ours" "$_b" | LC_ALL=C sort | tail -n 1)" = "$_b" ]; then
        _later="$_later $_d/$_b"
      fi
    done
  done
  [ -f "$ETC_ROOT/sysctl.conf" ] && _later="$_later $ETC_ROOT/sysctl.conf"
  for _f in $_later; do
    _v=$(awk -v k="$1" '{
        line = $0; sub(/^[ \t]*-?[ \t]*/, "", line)
        if (line ~ /^[#;]/ || index(line, "=") == 0) next
        kk = substr(line, 1, index(line, "=") - 1); gsub(/[ \t]/, "", kk); gsub("/", ".", kk)
        if (kk != k) next
        v = substr(line, index(line, "=") + 1); gsub(/^[ \t]+|[ \t]+$/, "", v); gsub(/[ \t]+/, " ", v); last = v; found = 1
      } END { if (found) print last }' "$_f" 2>/dev/null)
    if [ -n "$_v" ] && [ "$_v" != "$2" ]; then printf '%s %s\n' "$_f" "$_v"; fi
  done
}

# ---- item handlers: one per kind, each acting by $MODE ----

sysctl_item() { # key value compare scope
  _key=$1 _want=$2 _cmp=$3 _scope=$4
  nic_only && return 0
  claim sysctl "$_key"
  _p=$(sysctl_path "$_key")
  if ! in_scope "$_scope"; then
    [ "$MODE" = check ] || report skipped-scope sysctl "$_key" "($_scope key; EDGETUNE_SCOPE=$EDGETUNE_SCOPE)"
    return 0
  fi
  if [ ! -e "$_p" ]; then
    [ "$MODE" = apply ] && sysctl_lines="$sysctl_lines-$_key = $_want$nl"
    [ "$MODE" = check ] || report skipped-missing sysctl "$_key" "(no ${_p#"$PROC_SYS_ROOT"/} on this kernel or in this namespace)"
    return 0
  fi
  _live=$(norm "$(cat "$_p" 2>/dev/null)")
  _target=$(merge_value "$_live" "$_want" "$_cmp")
  case $MODE in
    check)
      # hugepages_check reports the pages the kernel holds against the profile's.
      [ "$_key" = vm.nr_hugepages ] && return 0
      if [ "$_live" != "$_target" ]; then
        case $_cmp in
          at-least) _what='below recommended value' ;;
          at-most) _what='above recommended maximum' ;;
          *) _what='differs from recommended value' ;;
        esac
        printf 'WARN kernel parameter %s: %s current="%s" recommended="%s"\n' "$_what" "$_key" "$_live" "$_want"
        n_drift=$((n_drift + 1))
      fi
      ;;
    verify)
      if [ "$_live" = "$_target" ]; then
        if [ "$_cmp" != exact ] && [ "$_live" != "$_want" ]; then report ok sysctl "$_key" "$_live ($_cmp $_want)"; else report ok sysctl "$_key" "$_live"; fi
      else
        report drift sysctl "$_key" "live=\"$_live\" profile=\"$_want\" ($_cmp)"
      fi
      # Scanned once: the lines are printed in a pipe (a subshell), the count kept here.
      _ovr=$(sysctl_overrides "$_key" "$_target")
      if [ -n "$_ovr" ]; then
        printf '%s\n' "$_ovr" | while read -r _of _ov; do
          printf '%-16s %-9s %s %s\n' overridden sysctl "$_key" "by $_of (sets \"$_ov\"; sysctl --system reads it after $EDGETUNE_SYSCTL_NAME)"
        done
        n_drift=$((n_drift + 1))
      fi
      ;;
    apply)
      sysctl_lines="$sysctl_lines$_key = $_target$nl"
      if [ "$_live" = "$_target" ]; then
        if [ "$_cmp" != exact ] && [ "$_live" != "$_want" ]; then report unchanged sysctl "$_key" "$_live (kept: $_cmp $_want)"; else report unchanged sysctl "$_key" "$_live"; fi
        return 0
      fi
      if ! record sysctl "$_key" "$_live"; then
        report failed sysctl "$_key" "(cannot record the original value in $STATE_DIR; not changed)"
        return 0
      fi
      _err=$( { printf '%s\n' "$_target" >"$_p"; } 2>&1)
      _now=$(norm "$(cat "$_p" 2>/dev/null)")
      if [ "$_now" = "$_target" ]; then
        report changed sysctl "$_key" "$_live -> $_target"
      else
        # Nothing changed: the original needs no restore.
        [ "$_now" = "$_live" ] && unrecord sysctl "$_key"
        report failed sysctl "$_key" "wrote \"$_target\", reads \"$_now\"${_err:+ (${_err##*: })}"
      fi
      ;;
  esac
}

# A whole file owned by edgetune, content on stdin.
file_item() { # path-under-ETC_ROOT
  _f="$ETC_ROOT/$1"
  nic_only && { cat >/dev/null; return 0; }
  claim file "$_f"
  _content=$(cat; echo x)
  _content=${_content%x}
  case $MODE in
    verify)
      if [ -f "$_f" ] && [ "$(cat "$_f"; echo x)" = "${_content}x" ]; then report ok file "$_f"; else report drift file "$_f" "(missing or differs from the profile)"; fi
      ;;
    apply)
      if [ -f "$_f" ] && [ "$(cat "$_f"; echo x)" = "${_content}x" ]; then report unchanged file "$_f"; return 0; fi
      if ! backup_file "$_f"; then report failed file "$_f" "(cannot back it up in $STATE_DIR; not changed)"; return 0; fi
      if printf '%s' "$_content" | write_atomic "$_f"; then report changed file "$_f"; else report failed file "$_f" "(write failed; previous file left in place)"; fi
      ;;
  esac
}

backup_file() {
  _b="$STATE_DIR/files/$(enc "$1")"
  [ -e "$_b" ] || [ -e "$_b.absent" ] && return 0
  # Directories edgetune creates are removed again by restore (when empty).
  _pd=$(dirname "$1")
  _todo=''
  while [ ! -d "$_pd" ]; do _todo="$_pd $_todo"; _pd=$(dirname "$_pd"); done
  for _pd in $_todo; do : >"$STATE_DIR/files/$(enc "$_pd").dir"; done
  if [ -e "$1" ]; then cp -p "$1" "$_b.tmp" && mv -f "$_b.tmp" "$_b"; else : >"$_b.absent"; fi
}

finish_sysctl_file() {
  [ "$MODE" = apply ] || [ "$MODE" = verify ] || return 0
  nic_only && return 0
  [ -n "$HAS_SYSCTLS" ] || return 0
  # Claimed here: file_item below runs in a pipeline's subshell.
  claim file "$SYSCTL_FILE"
  if [ "$MODE" = verify ]; then
    if [ -f "$SYSCTL_FILE" ]; then report ok file "$SYSCTL_FILE"; else report drift file "$SYSCTL_FILE" "(missing: values will not survive a reboot)"; fi
    return 0
  fi
  printf '# Written by edgetune tune.sh (profile %s, %s). Do not edit: re-run tune.sh apply.\n# Named to sort after 99-sysctl.conf so these values win at boot. "-" marks keys absent at apply time.\n%s' \
    "$EDGETUNE_PROFILE" "$EDGETUNE_DIGEST" "$sysctl_lines" | file_item "sysctl.d/$EDGETUNE_SYSCTL_NAME"
}

module_item() { # name
  [ "$MODE" = apply ] || [ "$MODE" = verify ] || return 0
  nic_only && return 0
  if [ -d "$SYS_ROOT/module/$1" ]; then report "$( [ "$MODE" = apply ] && echo unchanged || echo ok)" module "$1" loaded; return 0; fi
  if [ "$MODE" = verify ]; then report skipped-missing module "$1" "(not loaded)"; return 0; fi
  if [ "$EDGETUNE_LOAD_MODULES" != 1 ] || ! have modprobe; then report skipped-missing module "$1" "(not loaded; modprobe unavailable or disabled)"; return 0; fi
  if modprobe "$1" 2>/dev/null; then report changed module "$1" loaded; else report failed module "$1" "(modprobe failed)"; fi
}

kernel_args() { # args
  [ "$MODE" = apply ] || [ "$MODE" = verify ] || return 0
  nic_only && return 0
  _missing=''
  for _a in $1; do
    case " $(cat "$PROC_ROOT/cmdline" 2>/dev/null) " in *" $_a "*) ;; *) _missing="$_missing $_a" ;; esac
  done
  if [ -z "$_missing" ]; then report "$( [ "$MODE" = apply ] && echo unchanged || echo ok)" kernel-args "$1"; else report reboot-required kernel-args "${_missing# }" "(add to the kernel command line, e.g. GRUB_CMDLINE_LINUX, and reboot)"; fi
}

# ---- NICs ----

nic_devs() { # pattern -> matching interface names, one per line
  for _n in $(list_dir "$SYS_ROOT/class/net"); do
    # shellcheck disable=SC2254 # the pattern is a validated glob on purpose
    case $_n in $1) printf '%s\n' "$_n" ;; esac
  done
}

# Runs "$2" for every interface matching $1, or reports the pattern as missing.
for_nics() { # pattern handler args...
  case $MODE in apply | verify) ;; *) return 0 ;; esac
  _pat=$1 _h=$2
  shift 2
  _devs=$(nic_devs "$_pat")
  if [ -z "$_devs" ]; then
    case " $missing_nics " in *" $_pat "*) ;; *)
      missing_nics="$missing_nics $_pat"
      report skipped-missing nic "$_pat" "(no interface matches; its settings are not applied)" ;;
    esac
    return 0
  fi
  for _dev in $_devs; do "$_h" "$_dev" "$@"; done
}

need_ethtool() { # kind name
  case $MODE in apply | verify) ;; *) return 1 ;; esac
  have "$ETHTOOL" && return 0
  report skipped-missing "$1" "$2" "(ethtool not installed)"
  return 1
}

offload_name() {
  case $1 in
    tso) echo tcp-segmentation-offload ;; gso) echo generic-segmentation-offload ;;
    gro) echo generic-receive-offload ;; lro) echo large-receive-offload ;;
    rx) echo rx-checksumming ;; tx) echo tx-checksumming ;;
  esac
}

offload_state() { # dev feature -> "on", "off", "on [fixed]", or ""
  "$ETHTOOL" -k "$1" 2>/dev/null | sed -n "s/^$(offload_name "$2"): //p"
}

# Reports the outcome of a NIC change: compares a read-back with the wanted value.
nic_result() { # kind name before wanted now err
  if [ "$4" = "$5" ]; then report changed "$1" "$2" "$3 -> $4"
  else
    case $6 in
      *"not supported"*) report skipped-unsupported "$1" "$2" "(driver does not support it)" ;;
      *) report failed "$1" "$2" "wanted \"$4\", reads \"$5\"${6:+ (${6##*: })}" ;;
    esac
  fi
}

# Shared shape of every NIC setting: read, compare, record, set, read back.
nic_setting() { # kind dev label wanted current setter...
  _k=$1 _d=$2 _label=$3 _want=$4 _cur=$5
  shift 5
  _name="$_d${_label:+ $_label}"
  case $MODE in
    verify)
      if [ "$_cur" = "$_want" ]; then report ok "$_k" "$_name" "$_cur"; else report drift "$_k" "$_name" "live=\"$_cur\" profile=\"$_want\""; fi ;;
    apply)
      if [ "$_cur" = "$_want" ]; then report unchanged "$_k" "$_name" "$_cur"; return 0; fi
      if [ -z "$_cur" ]; then report skipped-unsupported "$_k" "$_name" "(cannot read it on this NIC)"; return 0; fi
      record nic "$_d|$_k|$_label" "$_cur" || { report failed "$_k" "$_name" "(cannot record the original)"; return 0; }
      _err=$("$@" 2>&1)
      _now=$(nic_read "$_k" "$_d" "$_label")
      [ "$_k" = flowhash ] && _now=$(letters_sorted "$_now")
      [ "$_now" = "$_cur" ] && unrecord nic "$_d|$_k|$_label"
      nic_result "$_k" "$_name" "$_cur" "$_want" "$_now" "$_err" ;;
  esac
}

# Current value of a NIC setting, in the same form the profile uses.
nic_read() { # kind dev label
  case $1 in
    offload) offload_state "$2" "$3" | sed 's/ \[fixed\]//' ;;
    channel)
      case $3 in rx) _f=RX ;; tx) _f=TX ;; *) _f=Combined ;; esac
      "$ETHTOOL" -l "$2" 2>/dev/null | awk -v f="$_f:" '/^Current/{c=1} c && $1==f {print $2}' ;;
    ring) "$ETHTOOL" -g "$2" 2>/dev/null | awk -v f="$(echo "$3" | tr '[:lower:]' '[:upper:]')" '/^Current/{c=1} c && $1==f":" {print $2}' ;;
    flowhash) "$ETHTOOL" -n "$2" rx-flow-hash "$3" 2>/dev/null | awk '
        /L2DA/{s=s "m"} /VLAN tag/{s=s "v"} /L3 proto/{s=s "t"} /IP SA/{s=s "s"} /IP DA/{s=s "d"}
        /L4 bytes 0 & 1/{s=s "f"} /L4 bytes 2 & 3/{s=s "n"} END{print s}' ;;
    rps | xps | rfs) _qf="$SYS_ROOT/class/net/$2/queues/$3"; [ -r "$_qf" ] && mask_norm "$(cat "$_qf" 2>/dev/null)" ;;
    irq) cat "$PROC_ROOT/irq/$3/smp_affinity_list" 2>/dev/null ;;
    rss) "$ETHTOOL" -x "$2" 2>/dev/null | awk '/^ *[0-9]+:/{for(i=2;i<=NF;i++) printf "%s ", $i}' | sed 's/ $//' ;;
    conntrack) cat "$SYS_ROOT/module/nf_conntrack/parameters/hashsize" 2>/dev/null ;;
    coalesce) "$ETHTOOL" -c "$2" 2>/dev/null | awk -v f="$3" '/^Adaptive RX:/ { if (f == "adaptive-rx") v = $3; if (f == "adaptive-tx") v = $5 }
        $1 == f ":" { v = $2 } END { if (v != "n/a") print v }' ;;
  esac
}

letters_sorted() { printf '%s' "$1" | fold -w1 | LC_ALL=C sort | tr -d '\n'; }

nic_offload() { # pattern feature on|off
  claim nic offload "$1" "$2"
  need_ethtool offload "$1 $2" || return 0
  for_nics "$1" _nic_offload "$2" "$3"
}
_nic_offload() {
  _st=$(offload_state "$1" "$2")
  case $_st in
    "") [ "$MODE" = check ] || report skipped-unsupported offload "$1 $2" "(not reported by ethtool -k)"; return 0 ;;
    *fixed*) if [ "${_st%% *}" != "$3" ] && [ "$MODE" = apply ]; then report failed offload "$1 $2" "(fixed $_st by the driver)"; return 0; fi ;;
  esac
  nic_setting offload "$1" "$2" "$3" "${_st%% *}" "$ETHTOOL" -K "$1" "$2" "$3"
}

nic_channels() { # pattern field count
  claim nic channel "$1" "$2"
  need_ethtool channel "$1 $2" || return 0
  for_nics "$1" _nic_channels "$2" "$3"
}
_nic_channels() { nic_setting channel "$1" "$2" "$3" "$(nic_read channel "$1" "$2")" "$ETHTOOL" -L "$1" "$2" "$3"; }

nic_rings() { # pattern rx|tx size
  claim nic ring "$1" "$2"
  need_ethtool ring "$1 $2" || return 0
  for_nics "$1" _nic_rings "$2" "$3"
}
_nic_rings() { nic_setting ring "$1" "$2" "$3" "$(nic_read ring "$1" "$2")" "$ETHTOOL" -G "$1" "$2" "$3"; }

# only: nic_coalesce
nic_coalesce() { # pattern ethtool-C-param value
  claim nic coalesce "$1" "$2"
  need_ethtool coalesce "$1 $2" || return 0
  for_nics "$1" _nic_coalesce "$2" "$3"
}
_nic_coalesce() { nic_setting coalesce "$1" "$2" "$3" "$(nic_read coalesce "$1" "$2")" "$ETHTOOL" -C "$1" "$2" "$3"; }
# end only

nic_flowhash() { # pattern flowtype letters
  claim nic flowhash "$1" "$2"
  need_ethtool flowhash "$1 $2" || return 0
  for_nics "$1" _nic_flowhash "$2" "$(letters_sorted "$3")" "$3"
}
_nic_flowhash() {
  _cur=$(nic_read flowhash "$1" "$2")
  nic_setting flowhash "$1" "$2" "$3" "$(letters_sorted "$_cur")" "$ETHTOOL" -N "$1" rx-flow-hash "$2" "$4"
}

nic_rss() { # pattern "equal N" | "weight w1 w2 ..."
  claim nic rss "$1" "*"
  need_ethtool rss "$1" || return 0
  for_nics "$1" _nic_rss "$2"
}
_nic_rss() {
  _tbl=$("$ETHTOOL" -x "$1" 2>/dev/null | awk '/^ *[0-9]+:/{for(i=2;i<=NF;i++) printf "%s ", $i}')
  if [ -z "$_tbl" ]; then report skipped-unsupported rss "$1" "(no RSS indirection table)"; return 0; fi
  # shellcheck disable=SC2086 # $2 is "equal N" or "weight ...": words on purpose
  _want=$(rss_table "$(printf '%s' "$_tbl" | wc -w)" $2)
  # shellcheck disable=SC2086
  nic_setting rss "$1" indirection "$_want" "$(norm "$_tbl")" "$ETHTOOL" -X "$1" $2
}
# Expected indirection table for a spec and table size (ethtool fills entries by weight, in queue order).
rss_table() { # size equal N | size weight w...
  _size=$1 _kind=$2
  shift 2
  if [ "$_kind" = equal ]; then
    awk -v n="$1" -v s="$_size" 'BEGIN{for(i=0;i<s;i++) printf "%s%d", (i?" ":""), i%n}'
  else
    awk -v ws="$*" -v s="$_size" 'BEGIN{n=split(ws,w," "); t=0; for(i=1;i<=n;i++) t+=w[i]; j=1; acc=w[1];
      for(i=0;i<s;i++){ while (j<n && i*t >= acc*s) { j++; acc+=w[j] } printf "%s%d", (i?" ":""), j-1 }}'
  fi
}

mask_norm() { # kernel mask "00000000,00000003" -> "3"
  _m=$(printf '%s' "$1" | tr -d ',\n ' | sed 's/^0*//')
  printf '%s' "${_m:-0}"
}

ncpus() {
  _pos=$(cat "$SYS_ROOT/devices/system/cpu/possible" 2>/dev/null)
  if [ -n "$_pos" ]; then echo $(( ${_pos##*-} + 1 )); else getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1; fi
}

# Bits a hex mask needs, to check it against the CPU count.
mask_bits() { # normalized hex
  _h=$1
  _first=$(printf '%s' "$_h" | cut -c1)
  _b=$(( (${#_h} - 1) * 4 ))
  _v=$((0x$_first))
  while [ "$_v" -gt 0 ]; do _b=$((_b + 1)); _v=$((_v / 2)); done
  echo "$_b"
}

queue_setting() { # kind dev queuefile wanted
  _qf="$SYS_ROOT/class/net/$2/queues/$3"
  if [ ! -e "$_qf" ]; then report skipped-missing "$1" "$2 $3" "(no $3 on this kernel)"; return 0; fi
  _cur=$(nic_read "$1" "$2" "$3")
  nic_setting "$1" "$2" "$3" "$4" "$_cur" queue_write "$_qf" "$4"
}
queue_write() { printf '%s\n' "$2" >"$1"; }

nic_rps() { # pattern mask flowcnt
  claim nic rps "$1" "*"
  [ -n "$3" ] && claim nic rfs "$1" "*"
  for_nics "$1" _nic_rps "$(mask_norm "$2")" "$3"
}
_nic_rps() {
  if [ "$MODE" = apply ] && [ "$(mask_bits "$2")" -gt "$(ncpus)" ]; then report failed rps "$1" "(mask $2 names CPUs beyond the $(ncpus) this node has)"; return 0; fi
  for _q in $(list_dir "$SYS_ROOT/class/net/$1/queues"); do
    case $_q in rx-*) ;; *) continue ;; esac
    queue_setting rps "$1" "$_q/rps_cpus" "$2"
    [ -n "$3" ] && queue_setting rfs "$1" "$_q/rps_flow_cnt" "$3"
  done
  return 0
}

nic_xps() { # pattern spread|mask
  claim nic xps "$1" "*"
  for_nics "$1" _nic_xps "$2"
}
_nic_xps() {
  _i=0 _n=$(ncpus)
  if [ "$2" != spread ] && [ "$MODE" = apply ] && [ "$(mask_bits "$(mask_norm "$2")")" -gt "$_n" ]; then report failed xps "$1" "(mask $2 names CPUs beyond the $_n this node has)"; return 0; fi
  for _q in $(list_dir "$SYS_ROOT/class/net/$1/queues" | sort -t- -k2 -n); do
    case $_q in tx-*) ;; *) continue ;; esac
    if [ "$2" = spread ]; then _w=$(cpu_bit $((_i % _n))); else _w=$(mask_norm "$2"); fi
    queue_setting xps "$1" "$_q/xps_cpus" "$_w"
    _i=$((_i + 1))
  done
  return 0
}
cpu_bit() { # cpu -> normalized hex mask with only that bit
  _g=$(( $1 / 32 )) _s=$(printf '%x' $(( 1 << ($1 % 32) )))
  while [ "$_g" -gt 0 ]; do _s="${_s}00000000"; _g=$((_g - 1)); done
  printf '%s' "$_s"
}

cpulist_expand() { # "0-3,6" -> "0 1 2 3 6"
  printf '%s' "$1" | tr ',' '\n' | awk -F- '{ b = ($2 == "") ? $1 : $2; for (i = $1; i <= b; i++) printf "%d ", i }'
}

nic_irq() { # pattern cpulist spread(1|0)
  claim nic irq "$1" "*"
  for_nics "$1" _nic_irq "$2" "$3"
}
_nic_irq() {
  _irqs=$(awk -v d="$1" 'index($0, d) && $1 ~ /^[0-9]+:$/ { sub(":", "", $1); print $1 }' "$PROC_ROOT/interrupts" 2>/dev/null)
  if [ -z "$_irqs" ]; then report skipped-missing irq "$1" "(no IRQs: virtual NIC or IRQs named otherwise)"; return 0; fi
  set -- "$1" "$(cpulist_expand "$2")" "$3"
  _cpus=$2
  for _irq in $_irqs; do
    if [ "$3" = 1 ]; then
      [ -n "$_cpus" ] || _cpus=$2
      _c=${_cpus%% *}
      _cpus=${_cpus#"$_c"}
      _cpus=${_cpus# }
    else
      _c=$(printf '%s' "$2" | sed 's/ $//; s/ /,/g')
    fi
    nic_setting irq "$1" "$_irq" "$_c" "$(nic_read irq "$1" "$_irq")" irq_write "$_irq" "$_c"
  done
}
irq_write() { printf '%s\n' "$2" >"$PROC_ROOT/irq/$1/smp_affinity_list"; }
# only: irqbalance
# irqbalance rewrites IRQ affinity: ban the NICs' CPUs from it, or stop it.
irqbalance() { # ban cpulist | stop
  case $MODE in apply | verify) ;; *) return 0 ;; esac
  nic_only && return 0
  if [ "$1" = stop ]; then irqbalance_stop; return 0; fi
  # Debian reads /etc/default/irqbalance, RHEL /etc/sysconfig/irqbalance.
  _rel=default/irqbalance
  [ -d "$ETC_ROOT/sysconfig" ] && [ ! -f "$ETC_ROOT/$_rel" ] && _rel=sysconfig/irqbalance
  _ib="$ETC_ROOT/$_rel"
  _old=$(cat "$_ib" 2>/dev/null)
  _new=$( [ -f "$_ib" ] && grep -v '^IRQBALANCE_BANNED_CPULIST=' "$_ib"; printf 'IRQBALANCE_BANNED_CPULIST=%s' "$2")
  file_item "$_rel" <<EOF
$_new
EOF
  [ "$MODE" = apply ] && [ "$_old" != "$(cat "$_ib" 2>/dev/null)" ] && irqbalance_restart
  return 0
}
# end only
# It reads its environment file at start only.
irqbalance_restart() {
  have systemctl && systemctl is-active --quiet irqbalance 2>/dev/null || return 0
  if systemctl try-restart irqbalance 2>/dev/null; then report restarted service irqbalance; else report failed service irqbalance "(try-restart failed)"; fi
}
# only: irqbalance
irqbalance_stop() {
  claim irqbalance
  if ! have systemctl; then report skipped-missing service irqbalance "(no systemctl)"; return 0; fi
  _act=$(systemctl is-active irqbalance 2>/dev/null) _en=$(systemctl is-enabled irqbalance 2>/dev/null)
  if [ "$_act" != active ] && [ "$_en" != enabled ]; then report "$( [ "$MODE" = apply ] && echo unchanged || echo ok)" service irqbalance "stopped"; return 0; fi
  if [ "$MODE" = verify ]; then report drift service irqbalance "$_act $_en"; return 0; fi
  record misc irqbalance "$_act $_en" || { report failed service irqbalance "(cannot record its state)"; return 0; }
  systemctl disable --now irqbalance >/dev/null 2>&1
  if systemctl is-active --quiet irqbalance; then report failed service irqbalance "(still running)"; else report changed service irqbalance "$_act $_en -> stopped"; fi
}
# end only
restore_irqbalance() {
  read -r _act _en <"$STATE_DIR/misc/irqbalance"
  [ "$_en" = enabled ] && systemctl enable irqbalance >/dev/null 2>&1
  [ "$_act" = active ] && systemctl start irqbalance >/dev/null 2>&1
  if [ "$_act" != active ] || systemctl is-active --quiet irqbalance; then report restored service irqbalance "$_act $_en"; rm -f "$STATE_DIR/misc/irqbalance"
  else report failed service irqbalance "(cannot start it)"; fi
}

# only: hugepages_check
# check only: the pages the kernel holds against the profile's (an allocation can fall short of the sysctl).
hugepages_check() { # 2MiB|1GiB pages
  [ "$MODE" = check ] || return 0
  if [ "$1" = 2MiB ]; then _hp="$PROC_SYS_ROOT/vm/nr_hugepages"; else _hp="$SYS_ROOT/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages"; fi
  _have=$(cat "$_hp" 2>/dev/null)
  [ "${_have:-0}" -ge "$2" ] || warn "huge pages short: $1 allocated=\"${_have:-0}\" wanted=\"$2\""
}
# end only

# check only, whatever the profile: conntrack fill, the proxy's fds, NIC drop/error counters rising.
# (Not in the header, which ships: user-data has no room.) Environment:
#   EDGETUNE_CHECK_INTERVAL=1   seconds between two reads of the NIC counters; 0 skips them
#   PROXY_PID                   the proxy's PIDs whose open fds to weigh; default: pidof haproxy
check_health() {
  _c=$(cat "$PROC_SYS_ROOT/net/netfilter/nf_conntrack_count" 2>/dev/null) _m=$(cat "$PROC_SYS_ROOT/net/netfilter/nf_conntrack_max" 2>/dev/null)
  if [ -n "$_c" ] && [ "${_m:-0}" -gt 0 ] && [ $((_c * 100)) -ge $((_m * 80)) ]; then warn "conntrack table near full: nf_conntrack_count current=\"$_c\" max=\"$_m\" ($((_c * 100 / _m))%)"; fi
  for _pid in ${PROXY_PID:-$(pidof haproxy 2>/dev/null)}; do
    _lim=$(awk '/^Max open files/ { print $4 }' "$PROC_ROOT/$_pid/limits" 2>/dev/null)
    case $_lim in '' | *[!0-9]*) continue ;; esac
    _n=$(list_dir "$PROC_ROOT/$_pid/fd" | wc -l)
    [ $((_n * 100)) -ge $((_lim * 80)) ] && warn "proxy file descriptors near the limit: pid $_pid open=\"$((_n))\" limit=\"$_lim\" ($((_n * 100 / _lim))%)"
  done
  _iv=${EDGETUNE_CHECK_INTERVAL:-1}
  [ "$_iv" = 0 ] && return 0
  _a=$(nic_counters)
  sleep "$_iv"
  _rose=$(printf '%s\n--\n%s\n' "$_a" "$(nic_counters)" | awk '$1 == "--" { s = 1; next } !s { v[$1 " " $2] = $3; next }
    $3 > v[$1 " " $2] { d[$1] = d[$1] " " $2 " +" ($3 - v[$1 " " $2]) } END { for (n in d) print n d[n] }' | sort)
  _oifs=$IFS
  IFS=$nl
  for _l in $_rose; do warn "NIC drop/error counters rising: $_l (over ${_iv}s)"; done
  IFS=$_oifs
}
nic_counters() {
  for _n in $(list_dir "$SYS_ROOT/class/net"); do
    [ "$_n" = lo ] && continue
    for _s in rx_dropped rx_errors tx_errors rx_missed_errors; do
      printf '%s %s %s\n' "$_n" "$_s" "$(cat "$SYS_ROOT/class/net/$_n/statistics/$_s" 2>/dev/null || echo 0)"
    done
  done
}

conntrack_hashsize() { # buckets
  nic_only && return 0
  claim conntrack
  _hp="$SYS_ROOT/module/nf_conntrack/parameters/hashsize"
  if [ ! -e "$_hp" ]; then [ "$MODE" = check ] || [ "$MODE" = restore ] || report skipped-missing conntrack hashsize "(nf_conntrack not loaded)"; return 0; fi
  [ "$MODE" = check ] && return 0
  _cur=$(cat "$_hp" 2>/dev/null)
  _want=$(merge_value "$_cur" "$1" at-least)
  nic_setting conntrack hashsize "" "$_want" "$_cur" queue_write "$_hp" "$_want"
}

notrack_ports() { # "80 443" format
  _ports=$1
  case $MODE in apply | verify) ;; *) return 0 ;; esac
  nic_only && return 0
  claim notrack "$2"
  if [ "$2" = nftables ]; then
    if ! have "$NFT"; then report skipped-missing notrack "$_ports" "(nft not installed)"; return 0; fi
    _set=$(printf '%s' "$_ports" | sed 's/ /, /g')
    if [ "$MODE" = verify ]; then
      if "$NFT" list table inet "$NFT_TABLE" >/dev/null 2>&1; then report ok notrack "tcp $_ports"; else report drift notrack "tcp $_ports" "(table inet $NFT_TABLE missing)"; fi
      return 0
    fi
    : >"$STATE_DIR/misc/nft-table"
    if printf 'table inet %s\ndelete table inet %s\ntable inet %s {\n  chain prerouting { type filter hook prerouting priority raw; policy accept; tcp dport { %s } notrack; }\n  chain output { type filter hook output priority raw; policy accept; tcp sport { %s } notrack; }\n}\n' \
      "$NFT_TABLE" "$NFT_TABLE" "$NFT_TABLE" "$_set" "$_set" | "$NFT" -f - 2>/dev/null; then
      report changed notrack "tcp $_ports" "(nftables table inet $NFT_TABLE)"
    else report failed notrack "tcp $_ports" "(nft -f failed)"; fi
  else
    if ! have "$IPTABLES"; then report skipped-missing notrack "$_ports" "(iptables not installed)"; return 0; fi
    for _pt in $_ports; do
      for _rule in "PREROUTING -p tcp --dport $_pt -j NOTRACK" "OUTPUT -p tcp --sport $_pt -j NOTRACK"; do
        iptables_rules_now="$iptables_rules_now$_rule$nl"
        # shellcheck disable=SC2086 # rule words on purpose; ports are validated integers
        if "$IPTABLES" -t raw -C $_rule 2>/dev/null; then
          report "$( [ "$MODE" = apply ] && echo unchanged || echo ok)" notrack "$_rule"
        elif [ "$MODE" = verify ]; then report drift notrack "$_rule" "(rule missing)"
        elif "$IPTABLES" -t raw -A $_rule 2>/dev/null; then
          printf '%s\n' "$_rule" >>"$STATE_DIR/misc/iptables-rules"; report changed notrack "$_rule"
        else report failed notrack "$_rule"; fi
      done
    done
  fi
}

# ---- taking back one record: shared by restore and by apply after a profile change ----

# One recorded original put back; the record goes once the value reads back.
restore_sysctl() { # record-name
  _key=$(dec "$1")
  _orig=$(cat "$STATE_DIR/sysctl/$1")
  _p=$(sysctl_path "$_key")
  if [ ! -e "$_p" ]; then report skipped-missing sysctl "$_key" "(gone; original was \"$_orig\")"; rm -f "$STATE_DIR/sysctl/$1"; return 0; fi
  { printf '%s\n' "$_orig" >"$_p"; } 2>/dev/null
  if [ "$(norm "$(cat "$_p")")" = "$_orig" ]; then report restored sysctl "$_key" "$_orig"; rm -f "$STATE_DIR/sysctl/$1"
  else report failed sysctl "$_key" "(could not write back \"$_orig\")"; fi
}

restore_nic() { # record-name
  _spec=$(dec "$1")
  _orig=$(cat "$STATE_DIR/nic/$1")
  _d=${_spec%%|*} _rest=${_spec#*|}
  _k=${_rest%%|*} _label=${_rest#*|}
  if [ "$_k" != conntrack ] && [ ! -e "$SYS_ROOT/class/net/$_d" ]; then report skipped-missing "$_k" "$_d $_label" "(interface gone)"; rm -f "$STATE_DIR/nic/$1"; return 0; fi
  case $_k in
    offload) "$ETHTOOL" -K "$_d" "$_label" "$_orig" 2>/dev/null ;;
    channel) "$ETHTOOL" -L "$_d" "$_label" "$_orig" 2>/dev/null ;;
    ring) "$ETHTOOL" -G "$_d" "$_label" "$_orig" 2>/dev/null ;;
    coalesce) "$ETHTOOL" -C "$_d" "$_label" "$_orig" 2>/dev/null ;;
    flowhash) "$ETHTOOL" -N "$_d" rx-flow-hash "$_label" "$_orig" 2>/dev/null ;;
    rss) "$ETHTOOL" -X "$_d" default 2>/dev/null ;;
    rps | xps | rfs) queue_write "$SYS_ROOT/class/net/$_d/queues/$_label" "$_orig" 2>/dev/null ;;
    irq) irq_write "$_label" "$_orig" 2>/dev/null ;;
    conntrack) queue_write "$SYS_ROOT/module/nf_conntrack/parameters/hashsize" "$_orig" 2>/dev/null ;;
  esac
  _now=$(nic_read "$_k" "$_d" "$_label")
  [ "$_k" = flowhash ] && { _now=$(letters_sorted "$_now"); _orig=$(letters_sorted "$_orig"); }
  if [ "$_k" = rss ] || [ "$_now" = "$_orig" ]; then report restored "$_k" "$_d $_label" "$_orig"; rm -f "$STATE_DIR/nic/$1"
  else report failed "$_k" "$_d $_label" "(wanted \"$_orig\", reads \"$_now\")"; fi
}

restore_file() { # record-name (a backup, or <name>.absent for a file edgetune created)
  if [ "${1%.absent}" != "$1" ]; then
    _f=$(dec "${1%.absent}")
    if rm -f "$_f"; then report removed file "$_f"; rm -f "$STATE_DIR/files/$1"; else report failed file "$_f" "(cannot remove)"; fi
  else
    _f=$(dec "$1")
    if write_atomic "$_f" <"$STATE_DIR/files/$1"; then report restored file "$_f"; rm -f "$STATE_DIR/files/$1"; else report failed file "$_f" "(cannot write back)"; fi
  fi
  case $_f in */irqbalance) irqbalance_restart ;; esac
}

remove_nft_table() {
  "$NFT" delete table inet "$NFT_TABLE" 2>/dev/null
  report removed notrack "table inet $NFT_TABLE"
  rm -f "$STATE_DIR/misc/nft-table"
}

remove_iptables_rules() { # keep: rules (one per line) to leave in place
  _kept=''
  while read -r _rule; do
    case "$nl$1$nl" in *"$nl$_rule$nl"*) _kept="$_kept$_rule$nl"; continue ;; esac
    # shellcheck disable=SC2086 # rule words on purpose
    "$IPTABLES" -t raw -D $_rule 2>/dev/null
    report removed notrack "$_rule"
  done <"$STATE_DIR/misc/iptables-rules"
  if [ -n "$_kept" ]; then printf '%s' "$_kept" >"$STATE_DIR/misc/iptables-rules"; else rm -f "$STATE_DIR/misc/iptables-rules"; fi
}

# A NIC record "dev|kind|label" is still wanted when a claim of that kind matches its device and label.
nic_claimed() { # dev kind label
  _found=1
  _oifs=$IFS
  IFS=$nl
  for _c in $claims; do
    IFS=$_oifs
    # shellcheck disable=SC2086 # claim words on purpose
    set -- "$1" "$2" "$3" $_c
    IFS=$nl
    if [ "$4" != nic ] || [ "$5" != "$2" ]; then continue; fi
    # shellcheck disable=SC2254 # patterns from the profile, validated
    case $1 in $6) case $3 in $7) _found=0 ;; esac ;; esac
  done
  IFS=$_oifs
  return $_found
}

# After a full apply: put back what an earlier profile set and this one no longer does.
restore_unclaimed() {
  for _r in $(list_dir "$STATE_DIR/sysctl"); do
    case $_r in *.tmp) continue ;; esac
    claimed sysctl "$(dec "$_r")" || restore_sysctl "$_r"
  done
  for _r in $(list_dir "$STATE_DIR/files"); do
    case $_r in *.tmp | *.dir) continue ;; esac
    claimed file "$(dec "${_r%.absent}")" || restore_file "$_r"
  done
  for _r in $(list_dir "$STATE_DIR/nic"); do
    case $_r in *.tmp) continue ;; esac
    _spec=$(dec "$_r")
    _d=${_spec%%|*} _rest=${_spec#*|}
    _k=${_rest%%|*} _label=${_rest#*|}
    if [ "$_k" = conntrack ]; then claimed conntrack || restore_nic "$_r"
    else nic_claimed "$_d" "$_k" "$_label" || restore_nic "$_r"; fi
  done
  if [ -e "$STATE_DIR/misc/nft-table" ] && ! claimed notrack nftables; then remove_nft_table; fi
  if [ -f "$STATE_DIR/misc/irqbalance" ] && ! claimed irqbalance; then restore_irqbalance; fi
  if [ -f "$STATE_DIR/misc/iptables-rules" ]; then
    if claimed notrack iptables; then remove_iptables_rules "$iptables_rules_now"; else remove_iptables_rules ''; fi
  fi
}

# ---- restore: from recorded state only, so it works whatever the profile is now ----

restore_all() {
  if [ ! -d "$STATE_DIR" ]; then
    echo "summary: restore status=nothing (no state in $STATE_DIR)"
    return 0
  fi
  for _r in $(list_dir "$STATE_DIR/sysctl"); do restore_sysctl "$_r"; done
  for _r in $(list_dir "$STATE_DIR/nic"); do restore_nic "$_r"; done
  for _r in $(list_dir "$STATE_DIR/files"); do
    case $_r in *.tmp | *.dir) continue ;; esac
    restore_file "$_r"
  done
  # Deepest first, so nested directories edgetune created come out in order.
  for _r in $(list_dir "$STATE_DIR/files" | grep '\.dir$' | awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-); do
    rmdir "$(dec "${_r%.dir}")" 2>/dev/null
    rm -f "$STATE_DIR/files/$_r"
  done
  [ -e "$STATE_DIR/misc/nft-table" ] && remove_nft_table
  [ -f "$STATE_DIR/misc/irqbalance" ] && restore_irqbalance
  [ -f "$STATE_DIR/misc/iptables-rules" ] && remove_iptables_rules ''
  if [ "$n_failed" -eq 0 ]; then
    rm -rf "$STATE_DIR"
    echo "summary: restore status=restored restored=$n_restored failed=0"
    return 0
  fi
  echo "summary: restore status=degraded restored=$n_restored failed=$n_failed (kept the failed records in $STATE_DIR)"
  return 3
}

usage() {
  cat <<EOF
usage: tune.sh apply|verify|check|restore|show
  apply    apply profile "$EDGETUNE_PROFILE", recording originals in \$STATE_DIR
  verify   exit 4 naming every setting that drifted or is overridden
  check    print a WARN line per kernel parameter worse than recommended, huge pages short,
           conntrack or proxy fds >= 80 %, NIC drops rising; change nothing
  restore  put back every recorded original and remove edgetune's files
  show     print the profile digest and items
Exit codes: 0 ok, 1 hard failure, 2 usage, 3 degraded, 4 drift (verify).
EOF
}

main() {
  MODE=${1:-}
  case $EDGETUNE_ONLY in
    '' | nic) ;;
    *) echo "tune.sh: EDGETUNE_ONLY=$EDGETUNE_ONLY; allowed: nic or unset" >&2; return 2 ;;
  esac
  case $MODE in
    apply)
      if ! ensure_state; then
        echo "summary: status=failed reason=\"cannot create state directory $STATE_DIR\" profile=$EDGETUNE_PROFILE"
        return 1
      fi
      printf '%s\n' "$EDGETUNE_DIGEST" >"$STATE_DIR/misc/profile-digest"
      edgetune_items
      finish_sysctl_file
      nic_only || restore_unclaimed
      if [ "$n_failed" -gt 0 ] && [ $((n_changed + n_unchanged + n_restored)) -eq 0 ]; then _status=failed _rc=1
      elif [ $((n_failed + n_skipped)) -gt 0 ]; then _status=degraded _rc=3
      else _status=applied _rc=0; fi
      echo "summary: status=$_status changed=$n_changed unchanged=$n_unchanged skipped=$n_skipped failed=$n_failed reboot_required=$n_pending restored=$n_restored profile=$EDGETUNE_PROFILE digest=$EDGETUNE_DIGEST${EDGETUNE_ONLY:+ scope=$EDGETUNE_ONLY}"
      return $_rc ;;
    verify)
      edgetune_items
      finish_sysctl_file
      if [ "$n_drift" -gt 0 ]; then _status=drift _rc=4; else _status=ok _rc=0; fi
      echo "summary: verify status=$_status ok=$n_unchanged drift=$n_drift skipped=$n_skipped reboot_required=$n_pending profile=$EDGETUNE_PROFILE"
      return $_rc ;;
    check)
      edgetune_items
      check_health
      echo "summary: check warnings=$n_drift profile=$EDGETUNE_PROFILE"
      return 0 ;;
    restore) restore_all ;;
    show) printf 'profile=%s digest=%s\n' "$EDGETUNE_PROFILE" "$EDGETUNE_DIGEST"; sed -n '/^edgetune_items() {$/,/^}$/p' "$0" ;;
    -h | --help | help) usage ;;
    *) usage >&2; return 2 ;;
  esac
}

main "$@"
