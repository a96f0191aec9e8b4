#!/usr/bin/env bash
# Builds libpcap's rpcapd (and, optionally, a tcpdump that can open rpcap:// URLs) as the
# reference for `npm run bench -- rpcap` (RPCAPD_REF=...). Debian ships no rpcapd, and its
# libpcap0.8 and tcpdump are built without remote capture, so both come from source.
#
# Usage: scripts/bench/build-reference-rpcapd.sh LIBPCAP_SRC [TCPDUMP_SRC] [OUT_DIR]
#   LIBPCAP_SRC  a libpcap source tree or tarball (.tar.gz/.tar.xz), e.g. libpcap-1.10.3
#                (the version of the distribution's libpcap0.8: `dpkg -s libpcap0.8`)
#   TCPDUMP_SRC  optional: a tcpdump source tree or tarball (e.g. tcpdump-4.99.3), or "-"
#   OUT_DIR      default /tmp/rpcapd-ref (never inside the repository)
# Prints the rpcapd path last; then: RPCAPD_REF=<that path> npm run bench -- rpcap
# Needs gcc, make, flex and bison (a git checkout has no generated grammar/scanner), and
# libssl-dev for rpcapd's TLS (optional: without it rpcapd is built without -S).
set -euo pipefail

libpcap_src=${1:?usage: $0 LIBPCAP_SRC [TCPDUMP_SRC|-] [OUT_DIR]}
tcpdump_src=${2:--}
out=${3:-/tmp/rpcapd-ref}

for tool in gcc make flex bison; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is missing (apt-get install -y gcc make flex bison)" >&2; exit 1; }
done

# Unpacks a tree or tarball into $2 (tcpdump's configure finds ../libpcap by that name).
unpack() {
  rm -rf "$2" && mkdir -p "$2"
  if [ -d "$1" ]; then
    cp -a "$1"/. "$2"/
  else
    tar -xf "$1" -C "$2" --strip-components=1
  fi
}

mkdir -p "$out"
unpack "$libpcap_src" "$out/libpcap"
(
  cd "$out/libpcap"
  [ -x configure ] || { echo "$0: $libpcap_src has no configure script (libpcap 1.10.x trees and tarballs do)" >&2; exit 1; }
  ./configure --enable-remote >"$out/libpcap-configure.log" 2>&1 || { tail -20 "$out/libpcap-configure.log" >&2; exit 1; }
  # The top-level make builds libpcap.a and, with --enable-remote, rpcapd/rpcapd linked
  # statically against that libpcap.a (upstream's way): the system libpcap is not involved.
  make -j"$(nproc)" >"$out/libpcap-make.log" 2>&1 || { tail -20 "$out/libpcap-make.log" >&2; exit 1; }
)
rpcapd="$out/libpcap/rpcapd/rpcapd"
[ -x "$rpcapd" ] || { echo "$0: $rpcapd was not built (see $out/libpcap-make.log)" >&2; exit 1; }
"$rpcapd" -h 2>&1 | grep -i 'compiled with' >&2 || true

tcpdump=""
if [ "$tcpdump_src" != "-" ]; then
  unpack "$tcpdump_src" "$out/tcpdump"
  (
    cd "$out/tcpdump"
    # configure picks ../libpcap (the tree just built) before the system's libpcap.
    ./configure >"$out/tcpdump-configure.log" 2>&1 || { tail -20 "$out/tcpdump-configure.log" >&2; exit 1; }
    grep -q 'local pcap library... ../libpcap/libpcap.a' "$out/tcpdump-configure.log" || { echo "$0: tcpdump's configure did not take $out/libpcap" >&2; exit 1; }
    make -j"$(nproc)" >"$out/tcpdump-make.log" 2>&1 || { tail -20 "$out/tcpdump-make.log" >&2; exit 1; }
  )
  tcpdump="$out/tcpdump/tcpdump"
fi

# Smoke check: rpcapd with NULL auth on a free loopback port, 10 UDP packets captured through
# it by tcpdump (when built). setsid: rpcapd answers SIGTERM with kill(0, SIGKILL), its
# whole process group, which must not be ours.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
udp_port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
setsid "$rpcapd" -n -4 -b 127.0.0.1 -p "$port" >"$out/rpcapd-smoke.log" 2>&1 &
daemon=$!
trap 'kill -TERM "$daemon" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$0: rpcapd did not listen on 127.0.0.1:$port" >&2; exit 1; }
if [ -n "$tcpdump" ]; then
  (for _ in $(seq 100); do echo x >"/dev/udp/127.0.0.1/$udp_port"; sleep 0.05; done) &
  sender=$!
  timeout 20 "$tcpdump" -i "rpcap://127.0.0.1:$port/lo" -c 10 -w "$out/smoke.pcap" "udp dst port $udp_port" 2>"$out/tcpdump-smoke.log" \
    || { cat "$out/tcpdump-smoke.log" >&2; exit 1; }
  kill "$sender" 2>/dev/null || true
  grep -q '^10 packets captured' "$out/tcpdump-smoke.log" || { cat "$out/tcpdump-smoke.log" >&2; exit 1; }
  echo "smoke check: tcpdump captured 10 packets through rpcapd on 127.0.0.1:$port" >&2
  echo "tcpdump (rpcap:// capable): $tcpdump" >&2
else
  echo "smoke check: rpcapd listens on 127.0.0.1:$port (give TCPDUMP_SRC to capture through it)" >&2
fi
echo "$rpcapd"
