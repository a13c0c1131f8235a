import { expect, test } from "bun:test";
import {
  decodeSockDyeConfig,
  encodeSockDyeConfig,
  SOCK_DYE_CONFIG_OFF,
  SOCK_DYE_CONFIG_SIZE,
  sockDyeMark,
} from "./sock-dye-config.ts";

const T = 30_000;

test(
  "encodes struct sock_dye_config little-endian in field order",
  () => {
    const bytes = encodeSockDyeConfig({
      defaultDye: 0x01020304,
      markBase: 0x0a0b0c0d,
      markMask: 0xff,
      setMark: true,
    });
    expect(bytes.length).toBe(SOCK_DYE_CONFIG_SIZE);
    expect(Array.from(bytes)).toEqual([4, 3, 2, 1, 0x0d, 0x0c, 0x0b, 0x0a, 0xff, 0, 0, 0, 1, 0, 0, 0]);
  },
  T,
);

test(
  "decode inverts encode, including u32 extremes",
  () => {
    for (const config of [
      SOCK_DYE_CONFIG_OFF,
      { defaultDye: 0xffff_ffff, markBase: 0x8000_0000, markMask: 0xffff_ffff, setMark: true },
    ]) {
      expect(decodeSockDyeConfig(encodeSockDyeConfig(config))).toEqual(config);
    }
  },
  T,
);

test(
  "decode reads from a view at an offset",
  () => {
    const outer = new Uint8Array(4 + SOCK_DYE_CONFIG_SIZE);
    outer.set(encodeSockDyeConfig({ ...SOCK_DYE_CONFIG_OFF, defaultDye: 7 }), 4);
    expect(decodeSockDyeConfig(outer.subarray(4)).defaultDye).toBe(7);
  },
  T,
);

test(
  "rejects values that do not fit the C struct, saying which field",
  () => {
    expect(() => encodeSockDyeConfig({ ...SOCK_DYE_CONFIG_OFF, defaultDye: -1 })).toThrow(
      "sock_dye_config.default_dye must be an integer in [0, 2^32), got -1",
    );
    expect(() => encodeSockDyeConfig({ ...SOCK_DYE_CONFIG_OFF, markMask: 2 ** 32 })).toThrow("mark_mask");
    expect(() => encodeSockDyeConfig({ ...SOCK_DYE_CONFIG_OFF, markBase: 1.5 })).toThrow("mark_base");
    expect(() => decodeSockDyeConfig(new Uint8Array(12))).toThrow("sock_dye_config is 16 bytes, got 12");
    const unknownFlag = encodeSockDyeConfig(SOCK_DYE_CONFIG_OFF);
    unknownFlag[12] = 0x02;
    expect(() => decodeSockDyeConfig(unknownFlag)).toThrow("sock_dye_config.flags has unknown bits 0x2");
  },
  T,
);

test(
  "the mark keeps base bits outside the mask and dye bits inside it",
  () => {
    const config = { defaultDye: 0, markBase: 0xabcd_ef00, markMask: 0xff, setMark: true };
    expect(sockDyeMark(config, 0x1234)).toBe(0xabcd_ef34);
    expect(sockDyeMark({ ...config, markBase: 0xffff_ffff }, 0)).toBe(0xffff_ff00);
  },
  T,
);
