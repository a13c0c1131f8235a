// A deliberately broken program for `indigo-agent doctor`'s test: the map lookup's result is dereferenced
// without the NULL check the verifier requires. The test compiles it with clang against bpf/build/vmlinux.h
// and expects the rejection at the line marked BROKEN. Not part of bpf/ so the normal build never links it.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} hits SEC(".maps");

SEC("sockops")
int count_ok(struct bpf_sock_ops *skops) {
  __u32 key = 0;
  __u64 *n = bpf_map_lookup_elem(&hits, &key);
  if (n) __sync_fetch_and_add(n, 1);
  return 1;
}

SEC("sockops")
int count_unchecked(struct bpf_sock_ops *skops) {
  __u32 key = skops->op;
  __u64 *n = bpf_map_lookup_elem(&hits, &key);
  *n += 1; /* BROKEN: no NULL check */
  return 1;
}
