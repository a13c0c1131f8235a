# Builds what the sources generate: the eBPF objects and the protobuf TypeScript code.
build_bpf() { make -s -C "$ROOT/bpf" || die "bpf build failed"; }

build_proto() {
  local out=$ROOT/packages/proto/src/gen stamp=$ROOT/packages/proto/src/gen/.stamp
  if [ -f "$stamp" ] && [ -z "$(find "$ROOT/proto" "$ROOT/packages/proto/buf.gen.yaml" -newer "$stamp" -print -quit)" ]; then
    return 0
  fi
  rm -rf "$out"
  (cd "$ROOT/packages/proto" && PATH="$PWD/node_modules/.bin:$PATH" buf generate ../../proto) || die "protobuf generation failed"
  touch "$stamp"
}

build_all() {
  build_bpf
  build_proto
}
