#!/bin/sh
# FastNetMon notify script: $1 IP, $2 direction, $3 pps, $4 ban|unban|attack_details, details on
# stdin. Appends "<date +%s.%N> <action> <ip> <direction> <pps>" to alarms.log next to itself and
# keeps the ban details (they hold the attack type); it must read stdin.
ts=$(date +%s.%N)
dir=$(dirname "$0")
echo "$ts $4 $1 $2 $3" >> "$dir/alarms.log"
cat > "$dir/details_$1_$4.txt"
exit 0
