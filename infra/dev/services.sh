# Daemons ./dev starts: each has a pid file, a log, and is recognised by a string on its command line
# (so a recycled pid is never mistaken for ours).

# proc_alive PIDFILE MARKER: the pid is alive and MARKER is on its command line or in its environment
# (services of two stacks run the same entry file; their INDIGO_STATE_DIR tells them apart).
proc_alive() {
  local pidfile=$1 marker=$2 pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  cat "/proc/$pid/cmdline" "/proc/$pid/environ" 2>/dev/null | tr '\0' '\n' | grep -qxF -- "$marker"
}

# A port someone else listens on would make our health checks talk to their server: refuse to start. A port
# that is the local end of an open connection refuses the bind as surely (the kernel hands the ports of
# ip_local_port_range to outgoing connections): the service would die at start.
ensure_port_free() {
  local port=$1 what=$2
  if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
    die "port $port for $what is already in use by another process (override it with its INDIGO_*_PORT variable)"
  fi
  if ss -Htn state established state syn-sent "sport = :$port" 2>/dev/null | grep -q .; then
    die "port $port for $what is the local port of an open connection (the kernel gives ports in $(tr -s '\t' - </proc/sys/net/ipv4/ip_local_port_range) to outgoing connections; pick one below with its INDIGO_*_PORT variable)"
  fi
}

# spawn_daemon PIDFILE LOGFILE COMMAND...: detached from this shell's session and terminal.
spawn_daemon() {
  local pidfile=$1 logfile=$2
  shift 2
  setsid "$@" >"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

stop_daemon() {
  local pidfile=$1 marker=$2 seconds=${3:-20} pid
  if proc_alive "$pidfile" "$marker"; then
    pid=$(cat "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_for "$seconds" "exit of $pid" bash -c "! kill -0 $pid"; then
      say "pid $pid ignored SIGTERM for ${seconds}s: killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pidfile"
}

# Bun services of this repo, by name: the entry file each runs. `demo` is the demo chain (infra/demo/): its
# hops run in network namespaces and in a cgroup the agent is scoped to, so it starts before the agent.
declare -A SERVICE_ENTRY=(
  [projector]=packages/projector/src/main.ts
  [api]=packages/api/src/main.ts
  [demo]=infra/demo/main.ts
  [agent]=packages/agent/src/cli/main.ts
)
SERVICE_ORDER=(projector api demo agent)

# Arguments of a service: a file under the state folder, one argument per line, written by a service started
# before it (the agent's name the demo's cgroup, namespace and interfaces). None for the others.
declare -A SERVICE_ARGS=(
  [agent]=demo/agent.args
)
service_args() {
  local file=${SERVICE_ARGS[$1]:-}
  [ -z "$file" ] || cat "$INDIGO_STATE_DIR/$file"
}

# The projector names the demo's services from the rules file the demo writes once its cgroups exist (it reads
# the file again when it changes); a user's own INDIGO_SERVICE_RULES wins.
service_env() {
  [ "$1" != projector ] || echo "INDIGO_SERVICE_RULES=${INDIGO_SERVICE_RULES:-$INDIGO_STATE_DIR/demo/service-rules.json}"
}

service_pidfile() { echo "$INDIGO_STATE_DIR/services/$1.pid"; }
service_entry() { echo "$ROOT/${SERVICE_ENTRY[$1]}"; }
service_marker() { echo "INDIGO_STATE_DIR=$INDIGO_STATE_DIR"; }
service_running() { proc_alive "$(service_pidfile "$1")" "$(service_marker "$1")"; }

service_start() {
  local name=$1
  mkdir -p "$INDIGO_STATE_DIR/services"
  service_running "$name" && return 0
  [ -z "$(service_port "$name")" ] || ensure_port_free "$(service_port "$name")" "$name"
  local args envs
  mapfile -t args < <(service_args "$name")
  mapfile -t envs < <(service_env "$name")
  spawn_daemon "$(service_pidfile "$name")" "$INDIGO_STATE_DIR/services/$name.log" \
    env "${envs[@]}" bun "$(service_entry "$name")" "${args[@]}"
}

service_stop() { stop_daemon "$(service_pidfile "$1")" "$(service_marker "$1")" 20; }
