# Paths, pinned versions and ports. Every port is overridable by its environment variable.
INDIGO_STATE_DIR=${INDIGO_STATE_DIR:-$ROOT/.run}
INDIGO_CACHE_DIR=${INDIGO_CACHE_DIR:-$ROOT/.cache}

BUN_VERSION=1.4.5
KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/infra/kafka/pom.xml")

export INDIGO_API_PORT=${INDIGO_API_PORT:-7400}
export INDIGO_AGENT_PORT=${INDIGO_AGENT_PORT:-7401}
export INDIGO_KAFKA_PORT=${INDIGO_KAFKA_PORT:-19092}
export INDIGO_KAFKA_CONTROLLER_PORT=${INDIGO_KAFKA_CONTROLLER_PORT:-19093}
export INDIGO_PG_PORT=${INDIGO_PG_PORT:-15432}

export INDIGO_KAFKA_BROKERS=${INDIGO_KAFKA_BROKERS:-127.0.0.1:$INDIGO_KAFKA_PORT}
export INDIGO_DATABASE_URL=${INDIGO_DATABASE_URL:-postgres://indigo:indigo@127.0.0.1:$INDIGO_PG_PORT/indigo}
export INDIGO_STATE_DIR INDIGO_CACHE_DIR INDIGO_ROOT=$ROOT

BUN_BIN_DIR=$INDIGO_CACHE_DIR/bun/node_modules/.bin
export PATH="$BUN_BIN_DIR:$ROOT/node_modules/.bin:$PATH"
