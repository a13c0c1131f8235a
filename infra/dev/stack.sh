# The local stack as a whole: what `up`, `down` and `status` do.

stack_infra_up() {
  mkdir -p "$INDIGO_STATE_DIR"
  pg_start
  pg_migrate
  kafka_start
}

service_port() {
  case "$1" in
    api) echo "$INDIGO_API_PORT" ;;
    agent) echo "$INDIGO_AGENT_PORT" ;;
    *) echo "" ;;
  esac
}

# service_ready NAME: /healthz answers 200 on its port; the demo: it runs and wrote the agent's arguments (its
# hops start once the agent answers: see the "serving" wait in stack_up).
service_ready() {
  local port
  case "$1" in
    demo) service_running demo && [ -s "$INDIGO_STATE_DIR/demo/agent.args" ] ;;
    *)
      port=$(service_port "$1")
      [ -z "$port" ] || curl -fsS "http://127.0.0.1:$port/healthz"
      ;;
  esac
}

# service_await NAME SECONDS COMMAND...: polls COMMAND until it succeeds. A service that exits meanwhile ends the
# wait at once, and either failure prints the end of its log: a crash on start is not a minutes-long hang.
service_await() {
  local name=$1 seconds=$2 log
  shift 2
  log="$INDIGO_STATE_DIR/services/$name.log"
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ! service_running "$name"; then
      say "$name exited while starting; the end of $log:"
      tail -n 30 "$log" >&2 2>/dev/null || true
      die "$name exited while starting: see $log"
    fi
    if [ $SECONDS -ge $deadline ]; then
      say "$name not ready after ${seconds}s; the end of $log:"
      tail -n 30 "$log" >&2 2>/dev/null || true
      die "$name did not become ready in ${seconds}s: see $log"
    fi
    sleep 0.3
  done
}

stack_up() {
  stack_infra_up
  local name
  # The demo's hops must start after the agent (infra/demo/main.ts): an agent to (re)start means a new demo.
  service_running agent || service_stop demo
  # A demo that died without cleaning up leaves namespaces, cgroups and pinned maps: remove them first.
  service_running demo || bun "$(service_entry demo)" --cleanup >/dev/null 2>&1 || true
  for name in "${SERVICE_ORDER[@]}"; do
    service_start "$name"
    service_await "$name" 180 service_ready "$name"
    say "$name ready"
  done
  # The first run builds the go and java hops.
  service_await demo 240 grep -q '"serving": true' "$INDIGO_STATE_DIR/demo/topology.json"
  say "demo chain serving"
  stack_status
  stack_where
  say "stop everything with ./dev down"
}

# Where to look, once up.
stack_where() {
  local target
  target=$(sed -n 's/.*"target": "\(.*\)".*/\1/p' "$INDIGO_STATE_DIR/demo/topology.json" 2>/dev/null)
  say "dashboard: http://127.0.0.1:$INDIGO_API_PORT/ (token: ./dev token)   API docs: http://127.0.0.1:$INDIGO_API_PORT/docs"
  say "agent: http://127.0.0.1:$INDIGO_AGENT_PORT/healthz and /metrics; logs in $INDIGO_STATE_DIR/services/"
  say "demo chain: client -> A (go) -> B (java) -> C (python3) at $target, topology in $INDIGO_STATE_DIR/demo/topology.json"
  say "demo traffic: INDIGO_STATE_DIR=$INDIGO_STATE_DIR bun infra/demo/traffic.ts --cohort 20 --other 20 (a release with traceIdPattern ^t-[a-f0-9]{8}-[a-f0-9]{4} selects the cohort)"
}

stack_down() {
  local i
  for ((i = ${#SERVICE_ORDER[@]} - 1; i >= 0; i--)); do service_stop "${SERVICE_ORDER[$i]}"; done
  # Whatever the demo left (it was killed, or the agent's pinned maps): namespaces, cgroups, pins.
  bun "$(service_entry demo)" --cleanup >/dev/null 2>&1 || say "demo cleanup failed: bun infra/demo/main.ts --cleanup"
  kafka_stop
  pg_stop
  say "stack stopped"
}

status_line() { printf '%-10s %-8s %-8s %s\n' "$@"; }

stack_status() {
  local name port
  status_line COMPONENT STATE PID LISTENS
  if pg_running; then status_line postgres up "$(pg_pid)" "$INDIGO_DATABASE_URL"; else status_line postgres down - -; fi
  if kafka_running; then
    status_line kafka up "$(cat "$(kafka_pidfile)")" "$INDIGO_KAFKA_BROKERS (controller 127.0.0.1:$INDIGO_KAFKA_CONTROLLER_PORT)"
  else status_line kafka down - -; fi
  for name in "${SERVICE_ORDER[@]}"; do
    if service_running "$name"; then
      port=$(service_port "$name")
      status_line "$name" up "$(cat "$(service_pidfile "$name")")" "${port:+http://127.0.0.1:$port}"
    else status_line "$name" down - -; fi
  done
}
