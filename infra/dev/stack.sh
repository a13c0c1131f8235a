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
    *) echo "" ;;
  esac
}

stack_up() {
  stack_infra_up
  local name port
  for name in "${SERVICE_ORDER[@]}"; do
    service_start "$name"
    port=$(service_port "$name")
    if [ -n "$port" ] && ! wait_for 30 "$name health" curl -fsS "http://127.0.0.1:$port/healthz"; then
      die "$name did not become healthy: see $INDIGO_STATE_DIR/services/$name.log"
    fi
  done
  stack_status
  say "stop everything with ./dev down"
}

stack_down() {
  local i
  for ((i = ${#SERVICE_ORDER[@]} - 1; i >= 0; i--)); do service_stop "${SERVICE_ORDER[$i]}"; done
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
