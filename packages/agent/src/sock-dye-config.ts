// The one encoder/decoder of `struct sock_dye_config` (bpf/sock_dye.h), the value of the
// sock_dye program's `dye_config` map (one entry, key 0). Little-endian, 16 bytes:
//   u32 default_dye @0, u32 mark_base @4, u32 mark_mask @8, u32 flags @12.

export interface SockDyeConfig {
  /** Dye given to TCP sockets established in the cgroup; 0 leaves them undyed. */
  readonly defaultDye: number;
  /** SO_MARK bits kept outside markMask. */
  readonly markBase: number;
  /** SO_MARK bits that carry the dye. */
  readonly markMask: number;
  /** Mirror the dye into SO_MARK: (markBase & ~markMask) | (dye & markMask). */
  readonly setMark: boolean;
}

export const SOCK_DYE_CONFIG_SIZE = 16;
export const SOCK_DYE_F_SET_MARK = 1 << 0;
const KNOWN_FLAGS = SOCK_DYE_F_SET_MARK;

/** The config map's only key. */
export const sockDyeConfigKey = (): Uint8Array => new Uint8Array(4);

export const SOCK_DYE_CONFIG_OFF: SockDyeConfig = { defaultDye: 0, markBase: 0, markMask: 0, setMark: false };

const u32 = (field: string, value: number): number => {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new RangeError(`sock_dye_config.${field} must be an integer in [0, 2^32), got ${value}`);
  }
  return value;
};

export const encodeSockDyeConfig = (config: SockDyeConfig): Uint8Array => {
  const bytes = new Uint8Array(SOCK_DYE_CONFIG_SIZE);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, u32("default_dye", config.defaultDye), true);
  view.setUint32(4, u32("mark_base", config.markBase), true);
  view.setUint32(8, u32("mark_mask", config.markMask), true);
  view.setUint32(12, config.setMark ? SOCK_DYE_F_SET_MARK : 0, true);
  return bytes;
};

export const decodeSockDyeConfig = (bytes: Uint8Array): SockDyeConfig => {
  if (bytes.length !== SOCK_DYE_CONFIG_SIZE) {
    throw new RangeError(`sock_dye_config is ${SOCK_DYE_CONFIG_SIZE} bytes, got ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flags = view.getUint32(12, true);
  // Unknown bits mean the kernel side is newer than this decoder: refuse rather than drop them.
  if ((flags & ~KNOWN_FLAGS) !== 0) {
    throw new RangeError(`sock_dye_config.flags has unknown bits 0x${(flags & ~KNOWN_FLAGS).toString(16)}`);
  }
  return {
    defaultDye: view.getUint32(0, true),
    markBase: view.getUint32(4, true),
    markMask: view.getUint32(8, true),
    setMark: (flags & SOCK_DYE_F_SET_MARK) !== 0,
  };
};

/** The socket mark the kernel side computes for a dyed socket (same formula as set_mark()). */
export const sockDyeMark = (config: SockDyeConfig, dye: number): number =>
  ((config.markBase & ~config.markMask) | (dye & config.markMask)) >>> 0;
