# `./dev test`: lint, type check and every test against the real stack; one summary line at the end.
# `./dev bench`: the benchmarks, JSON into bench/results/latest.json.

run_check() {
  local name=$1
  shift
  say "check: $name"
  if "$@"; then CHECKS_PASSED=$((CHECKS_PASSED + 1)); else
    CHECKS_FAILED=$((CHECKS_FAILED + 1))
    say "check failed: $name"
  fi
}

run_tests() {
  CHECKS_PASSED=0 CHECKS_FAILED=0
  stack_infra_up
  pg_drop_sandboxes
  run_check "biome (format + lint)" biome ci --colors=off "$ROOT"
  run_check "typescript (tsc --noEmit)" tsc --noEmit -p "$ROOT/tsconfig.json"

  local junit=$INDIGO_STATE_DIR/test-report.xml
  rm -f "$junit"
  say "tests: bun test $*"
  # Per-test timeouts are set in the files; this is the ceiling for any test that sets none.
  (cd "$ROOT" && bun test --timeout 120000 --reporter=junit --reporter-outfile="$junit" "$@") || true
  local summary
  summary=$(bun "$ROOT/infra/dev/junit-summary.ts" "$junit" "$CHECKS_PASSED" "$CHECKS_FAILED")
  echo "$summary"
  case "$summary" in *" 0 failed"*) return 0 ;; *) return 1 ;; esac
}

run_bench() {
  stack_infra_up
  pg_drop_sandboxes
  mkdir -p "$ROOT/bench/results"
  (cd "$ROOT" && bun bench/run.ts "$@")
}
