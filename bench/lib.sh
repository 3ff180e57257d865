# Helpers shared by the bench/ scripts; source it after `cd` to the repository root ($REPO set).

# Installs Debian package $2 when command $1 is missing.
need_pkg() { # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "== installing $2 ($1)" >&2
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null
}

# Sets PHAROS_BIN, building the release binary when it is unset.
pharos_bin() {
  if [ -z "${PHAROS_BIN:-}" ]; then
    echo "== cargo build --release -p pharos" >&2
    nice -n 10 cargo build --release -p pharos --quiet
    PHAROS_BIN=$REPO/target/release/pharos
  fi
}

# Waits until a socket is bound to UDP 127.0.0.1:PORT (10 s at most).
wait_udp_bound() { # port
  local hex; hex=$(printf '%04X' "$1")
  for _ in $(seq 1 200); do
    grep -q "0100007F:$hex " /proc/net/udp && return 0
    sleep 0.05
  done
  echo "nothing bound UDP 127.0.0.1:$1" >&2; return 1
}

# Kernel drop count (the `drops` column of /proc/net/udp) of the socket bound to 127.0.0.1:PORT.
udp_drops() { # port
  local hex; hex=$(printf '%04X' "$1")
  awk -v p="0100007F:$hex" '$2 == p { print $NF; found=1 } END { if (!found) print 0 }' /proc/net/udp
}
