#!/bin/sh
# Pharos [detect_hook] of the DDoS benchmark: appends "<date +%s.%N> <PHAROS_PHASE> <event JSON>"
# to alarms.log next to itself.
ts=$(date +%s.%N)
dir=$(dirname "$0")
ev=$(cat)
printf '%s %s %s\n' "$ts" "$PHAROS_PHASE" "$ev" >> "$dir/alarms.log"
exit 0
