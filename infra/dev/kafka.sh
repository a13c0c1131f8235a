# A single-node Kafka broker in KRaft mode (broker + controller in one JVM) on loopback.
# Storage is formatted on first start; "healthy" means a client can list and create topics.

kafka_dir() { echo "$INDIGO_STATE_DIR/kafka"; }
kafka_pidfile() { echo "$(kafka_dir)/kafka.pid"; }

kafka_write_config() {
  local dir=$1
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$INDIGO_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$INDIGO_KAFKA_PORT,CONTROLLER://127.0.0.1:$INDIGO_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$INDIGO_KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=3
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
default.replication.factor=1
group.initial.rebalance.delay.ms=0
message.max.bytes=8388608
PROPS
  cat >"$dir/log4j2.properties" <<PROPS
rootLogger.level=WARN
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName=$dir/broker.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=[%d] %p %m (%c)%n
logger.kafka.name=kafka
logger.kafka.level=INFO
PROPS
}

kafka_running() { proc_alive "$(kafka_pidfile)" "$(kafka_dir)/server.properties"; }

# The JVM command line, as an array, so it can be run directly or handed to spawn_daemon.
kafka_java_cmd() {
  KAFKA_JAVA=(java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$(kafka_dir)/log4j2.properties"
    -cp "$INDIGO_CACHE_DIR/kafka/$KAFKA_VERSION/lib/*")
}

kafka_start() {
  local dir
  dir=$(kafka_dir)
  mkdir -p "$dir"
  if ! kafka_running; then
    ensure_port_free "$INDIGO_KAFKA_PORT" kafka
    ensure_port_free "$INDIGO_KAFKA_CONTROLLER_PORT" "kafka controller"
    kafka_write_config "$dir"
    kafka_java_cmd
    if [ ! -f "$dir/data/meta.properties" ]; then
      local cluster_id
      cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
      say "formatting Kafka storage in $dir/data"
      # --cluster-id=: a base64url id starts with "-" one time in 64, and `-t ID` then reads as an option.
      "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format --standalone --cluster-id="$cluster_id" -c "$dir/server.properties" \
        >"$dir/format.log" 2>&1 || die "failed to format Kafka storage: see $dir/format.log"
    fi
    spawn_daemon "$(kafka_pidfile)" "$dir/stdout.log" "${KAFKA_JAVA[@]}" kafka.Kafka "$dir/server.properties"
  fi
  # Health check and topic contract in one step: the script waits for the broker, then creates the topics.
  (cd "$ROOT" && bun packages/bus/src/cli/ensure-topics.ts --wait 90) ||
    die "Kafka is not healthy: see $dir/broker.log and $dir/stdout.log"
  kafka_running || die "Kafka exited after start: see $dir/broker.log and $dir/stdout.log"
}

kafka_stop() { stop_daemon "$(kafka_pidfile)" "$(kafka_dir)/server.properties" 60; }
