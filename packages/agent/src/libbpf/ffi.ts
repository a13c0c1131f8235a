// The raw koffi declarations of the system libbpf (Debian libbpf1, 1.1). Nothing outside src/libbpf/
// imports this: koffi's pointers are untyped, so the typed wrappers next to this file own them.
import koffi from "koffi";

/** An opaque libbpf pointer (bpf_object *, bpf_program *, ...). Never null once wrapped. */
export type Ptr = object;

// The soname, not libbpf.so: the unversioned symlink only comes with libbpf-dev.
const lib = koffi.load("libbpf.so.1");
const libc = koffi.load("libc.so.6");

koffi.opaque("bpf_object");
koffi.opaque("bpf_program");
koffi.opaque("bpf_map");
koffi.opaque("bpf_link");

type Fn<A extends unknown[], R> = (...args: A) => R;

const fn = <A extends unknown[], R>(proto: string): Fn<A, R> => lib.func(proto) as Fn<A, R>;

export const ffi = {
  objectOpenFile: fn<[string, null], Ptr | null>(
    "bpf_object *bpf_object__open_file(const char *path, void *opts)",
  ),
  objectLoad: fn<[Ptr], number>("int bpf_object__load(bpf_object *obj)"),
  objectClose: fn<[Ptr], void>("void bpf_object__close(bpf_object *obj)"),
  objectName: fn<[Ptr], string>("const char *bpf_object__name(const bpf_object *obj)"),
  findProgram: fn<[Ptr, string], Ptr | null>(
    "bpf_program *bpf_object__find_program_by_name(const bpf_object *obj, const char *name)",
  ),
  findMap: fn<[Ptr, string], Ptr | null>(
    "bpf_map *bpf_object__find_map_by_name(const bpf_object *obj, const char *name)",
  ),

  programFd: fn<[Ptr], number>("int bpf_program__fd(const bpf_program *prog)"),
  nextProgram: fn<[Ptr, Ptr | null], Ptr | null>(
    "bpf_program *bpf_object__next_program(const bpf_object *obj, bpf_program *prog)",
  ),
  programName: fn<[Ptr], string>("const char *bpf_program__name(const bpf_program *prog)"),
  programSection: fn<[Ptr], string>("const char *bpf_program__section_name(const bpf_program *prog)"),
  programInsnCnt: fn<[Ptr], number>("size_t bpf_program__insn_cnt(const bpf_program *prog)"),
  programSetLogLevel: fn<[Ptr, number], number>(
    "int bpf_program__set_log_level(bpf_program *prog, uint32_t log_level)",
  ),
  programSetLogBuf: fn<[Ptr, unknown, number], number>(
    "int bpf_program__set_log_buf(bpf_program *prog, void *log_buf, size_t log_size)",
  ),
  attachAuto: fn<[Ptr], Ptr | null>("bpf_link *bpf_program__attach(const bpf_program *prog)"),
  // struct bpf_tc_hook / bpf_tc_opts are passed as raw little-endian buffers (see ../libbpf/tc.ts).
  tcHookCreate: fn<[Uint8Array], number>("int bpf_tc_hook_create(void *hook)"),
  tcHookDestroy: fn<[Uint8Array], number>("int bpf_tc_hook_destroy(void *hook)"),
  tcAttach: fn<[Uint8Array, Uint8Array], number>("int bpf_tc_attach(const void *hook, void *opts)"),
  tcDetach: fn<[Uint8Array, Uint8Array], number>("int bpf_tc_detach(const void *hook, const void *opts)"),
  attachCgroup: fn<[Ptr, number], Ptr | null>(
    "bpf_link *bpf_program__attach_cgroup(const bpf_program *prog, int cgroup_fd)",
  ),

  linkFd: fn<[Ptr], number>("int bpf_link__fd(const bpf_link *link)"),
  linkPin: fn<[Ptr, string], number>("int bpf_link__pin(bpf_link *link, const char *path)"),
  linkUnpin: fn<[Ptr], number>("int bpf_link__unpin(bpf_link *link)"),
  linkDestroy: fn<[Ptr], number>("int bpf_link__destroy(bpf_link *link)"),

  mapFd: fn<[Ptr], number>("int bpf_map__fd(const bpf_map *map)"),
  mapType: fn<[Ptr], number>("int bpf_map__type(const bpf_map *map)"),
  mapKeySize: fn<[Ptr], number>("uint32_t bpf_map__key_size(const bpf_map *map)"),
  mapValueSize: fn<[Ptr], number>("uint32_t bpf_map__value_size(const bpf_map *map)"),
  mapMaxEntries: fn<[Ptr], number>("uint32_t bpf_map__max_entries(const bpf_map *map)"),
  mapLookup: fn<[Ptr, Uint8Array, number, Uint8Array, number, bigint], number>(
    "int bpf_map__lookup_elem(const bpf_map *map, const void *key, size_t key_sz, void *value, size_t value_sz, uint64_t flags)",
  ),
  mapUpdate: fn<[Ptr, Uint8Array, number, Uint8Array, number, bigint], number>(
    "int bpf_map__update_elem(const bpf_map *map, const void *key, size_t key_sz, const void *value, size_t value_sz, uint64_t flags)",
  ),
  mapSetPinPath: fn<[Ptr, string], number>("int bpf_map__set_pin_path(bpf_map *map, const char *path)"),
  mapIsPinned: fn<[Ptr], boolean>("bool bpf_map__is_pinned(const bpf_map *map)"),
  mapPin: fn<[Ptr, string], number>("int bpf_map__pin(bpf_map *map, const char *path)"),
  mapUnpin: fn<[Ptr, string], number>("int bpf_map__unpin(bpf_map *map, const char *path)"),

  objGet: fn<[string], number>("int bpf_obj_get(const char *pathname)"),

  numPossibleCpus: fn<[], number>("int libbpf_num_possible_cpus(void)"),
  strerror: fn<[number, Uint8Array, number], number>("int libbpf_strerror(int err, char *buf, size_t size)"),
  // Hot upgrade (engine/upgrade.ts): pinned links reopened, updated in place, detached; object ids.
  linkOpen: fn<[string], Ptr | null>("bpf_link *bpf_link__open(const char *path)"),
  linkUpdateFd: fn<[number, number, null], number>(
    "int bpf_link_update(int link_fd, int new_prog_fd, const void *opts)",
  ),
  linkDetachFd: fn<[number], number>("int bpf_link_detach(int link_fd)"),
  // Iterators (engine/adopt.ts): a new seq file of an iter link, read to its end to run the program.
  iterCreate: fn<[number], number>("int bpf_iter_create(int link_fd)"),
  // info_len is a __u32 in/out, passed as a 4-byte little-endian buffer.
  objGetInfoByFd: fn<[number, Uint8Array, Uint8Array], number>(
    "int bpf_obj_get_info_by_fd(int bpf_fd, void *info, void *info_len)",
  ),
  tcQuery: fn<[Uint8Array, Uint8Array], number>("int bpf_tc_query(const void *hook, void *opts)"),
};

/** epoll_wait(2), run on a worker thread with `.async` so the JS thread never blocks. */
export const epollWait = libc.func(
  "int epoll_wait(int epfd, _Out_ uint8_t *events, int maxevents, int timeout)",
) as Fn<[number, Uint8Array, number, number], number> & {
  async: (
    epfd: number,
    events: Uint8Array,
    max: number,
    timeout: number,
    cb: (err: unknown, res: number) => void,
  ) => void;
};

/** mmap(2)/munmap(2) of a BPF ring buffer map (ringbuf.ts reads the ring's memory in bulk). */
export const mmap = libc.func(
  "void *mmap(void *addr, size_t length, int prot, int flags, int fd, intptr_t offset)",
) as Fn<[null, number, number, number, number, number], unknown>;
export const munmap = libc.func("int munmap(void *addr, size_t length)") as Fn<[unknown, number], number>;
/** The address of a foreign pointer (MAP_FAILED is 2^64 - 1). */
export const addressOf = (ptr: unknown): bigint => koffi.address(ptr) as bigint;
/** Zero-copy ArrayBuffer over `len` bytes of foreign memory that stays mapped (an mmap). */
export const viewMemory = (ptr: unknown, len: number): ArrayBuffer => koffi.view(ptr, len) as ArrayBuffer;
export const epollCreate1 = libc.func("int epoll_create1(int flags)") as Fn<[number], number>;
/** struct epoll_event is 12 bytes packed on x86-64: u32 events, u64 data. */
export const epollCtl = libc.func("int epoll_ctl(int epfd, int op, int fd, uint8_t *event)") as Fn<
  [number, number, number, Uint8Array],
  number
>;
export const closeFd = libc.func("int close(int fd)") as Fn<[number], number>;
export const pageSize = libc.func("int getpagesize(void)") as Fn<[], number>;

/** setns(2) for the calling thread (Bun's JS thread): tc attachments made while in another netns. */
export const setns = libc.func("int setns(int fd, int nstype)") as Fn<[number, number], number>;
export const ifNameToIndex = libc.func("unsigned int if_nametoindex(const char *ifname)") as Fn<
  [string],
  number
>;

/** Native memory that stays put while libbpf holds a pointer to it (a verifier log buffer during load). */
export const nativeAlloc = (size: number): unknown => {
  const ptr = koffi.alloc("uint8_t", size);
  new Uint8Array(koffi.view(ptr, size)).fill(0);
  return ptr;
};
/** A copy of the NUL-terminated text at `ptr` (at most `size` bytes). */
export const nativeText = (ptr: unknown, size: number): string => {
  const bytes = new Uint8Array(koffi.view(ptr, size));
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(bytes.subarray(0, end < 0 ? size : end));
};
export const nativeFree = (ptr: unknown): void => koffi.free(ptr);

/** errno as the last foreign call left it (koffi saves it per call). */
export const lastErrno = (): number => koffi.errno();

// libbpf logs through a printf-style callback that receives a va_list. On x86-64 (and arm64) a va_list
// argument is passed as a pointer, so the callback can hand it straight to vsnprintf.
const vsnprintf = libc.func("int vsnprintf(char *buf, size_t size, const char *fmt, void *ap)") as Fn<
  [Uint8Array, number, string, unknown],
  number
>;
const PrintFn = koffi.proto("int libbpf_print_fn(int level, const char *fmt, void *ap)");
const setPrint = lib.func("void *libbpf_set_print(libbpf_print_fn *fn)") as Fn<[unknown], unknown>;

/** libbpf's levels: LIBBPF_WARN = 0, LIBBPF_INFO = 1, LIBBPF_DEBUG = 2. */
export type PrintSink = (level: number, line: string) => void;

let sink: PrintSink = () => {};
const lineBuf = new Uint8Array(8192);
const decoder = new TextDecoder();

// Registered once for the life of the process: libbpf keeps the pointer in a global.
const printCallback = koffi.register((level: number, format: string, ap: unknown): number => {
  const n = vsnprintf(lineBuf, lineBuf.length, format, ap);
  if (n > 0) sink(level, decoder.decode(lineBuf.subarray(0, Math.min(n, lineBuf.length - 1))));
  return 0;
}, koffi.pointer(PrintFn));
setPrint(printCallback);

/** Route libbpf's log lines (including verifier logs on load failure) to `next`. */
export const setPrintSink = (next: PrintSink): void => {
  sink = next;
};
