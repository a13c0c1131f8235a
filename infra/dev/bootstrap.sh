# Installs what is missing, and nothing twice: Debian packages, Bun (npm, pinned), node modules,
# the Kafka broker jars (Maven Central, pinned), and the kernel filesystems the agent needs.

# Each line: a file or command that proves the package is there, then the Debian package.
APT_NEEDS=(
  "clang clang" "llc llvm" "/usr/include/bpf/libbpf.h libbpf-dev" "bpftool bpftool" "ip iproute2"
  "tcpdump tcpdump" "tshark tshark" "capsh libcap2-bin" "nft nftables" "iptables iptables"
  "/usr/lib/postgresql postgresql" "psql postgresql-client" "mvn maven" "java openjdk-17-jre-headless"
  "javac openjdk-17-jdk-headless" "npm npm" "make make" "python3 python3" "go golang-go"
  "sockperf sockperf" "curl curl" "chromium chromium"
)

have() { case "$1" in /*) [ -e "$1" ] ;; *) command -v "$1" >/dev/null 2>&1 ;; esac; }

ensure_apt() {
  local missing=() entry
  for entry in "${APT_NEEDS[@]}"; do
    # shellcheck disable=SC2086
    set -- $entry
    have "$1" || missing+=("$2")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
}

ensure_bun() {
  local current
  current=$("$BUN_BIN_DIR/bun" --version 2>/dev/null || true)
  [ "$current" = "$BUN_VERSION" ] && return 0
  say "installing bun $BUN_VERSION from npm"
  mkdir -p "$INDIGO_CACHE_DIR/bun"
  npm install --prefix "$INDIGO_CACHE_DIR/bun" --no-save --no-package-lock --no-audit --no-fund \
    "bun@$BUN_VERSION" >/dev/null || die "npm install bun@$BUN_VERSION failed"
  [ "$("$BUN_BIN_DIR/bun" --version)" = "$BUN_VERSION" ] || die "bun $BUN_VERSION did not install"
}

ensure_node_modules() {
  local stamp=$ROOT/node_modules/.indigo-installed
  if [ -f "$stamp" ] && [ "$stamp" -nt "$ROOT/bun.lock" ]; then return 0; fi
  say "installing node modules"
  (cd "$ROOT" && bun install --frozen-lockfile >/dev/null) || die "bun install failed"
  touch "$stamp"
}

ensure_kafka_jars() {
  local dir=$INDIGO_CACHE_DIR/kafka/$KAFKA_VERSION
  [ -f "$dir/.complete" ] && return 0
  say "fetching the Apache Kafka $KAFKA_VERSION broker jars from Maven Central"
  rm -rf "$dir" && mkdir -p "$dir/lib"
  mvn -q -B -f "$ROOT/infra/kafka/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$dir/lib" >"$dir/mvn.log" 2>&1 || die "mvn failed: see $dir/mvn.log"
  touch "$dir/.complete"
}

ensure_kernel_fs() {
  grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf || die "failed to mount bpffs"
  if ! grep -q ' tracefs ' /proc/mounts; then
    mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || say "tracefs not mounted (not needed by tp_btf)"
  fi
}

bootstrap() {
  [ "$(id -u)" = 0 ] || die "./dev needs root (eBPF, network namespaces, apt)"
  ensure_apt
  ensure_bun
  ensure_node_modules
  ensure_kafka_jars
  ensure_kernel_fs
}
