// The event log's addresses (DyeEvent.saddr/daddr: 4 or 16 bytes, network order) as text, for people and
// for joining the two ends of a connection (docs/event-log.md).

/** IPv6 in RFC 5952 form: lower case, no leading zeros, the first longest run of two or more zero groups as
 * `::`, and a v4-mapped address with its IPv4 part dotted (`::ffff:10.0.2.2`, section 5). */
export function ipv6Text(bytes: Uint8Array): string {
  if (ipv4At(bytes) === 12) return `::ffff:${dottedAt(bytes, 12)}`;
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0));
  let zeroAt = -1;
  let zeroLen = 1;
  for (let i = 0, run = 0; i <= 8; i++) {
    if (i < 8 && groups[i] === 0) run++;
    else {
      if (run > zeroLen) [zeroAt, zeroLen] = [i - run, run];
      run = 0;
    }
  }
  const hex = groups.map((g) => g.toString(16));
  if (zeroAt < 0) return hex.join(":");
  return `${hex.slice(0, zeroAt).join(":")}::${hex.slice(zeroAt + zeroLen).join(":")}`;
}

/**
 * Where the IPv4 address sits in `bytes`: 0 for 4 bytes, 12 for a v4-mapped IPv6 address (::ffff:a.b.c.d),
 * else -1. An IPv6 socket that accepted or dialled IPv4 (Java's, Go's and node's servers listen on `::`)
 * reports its ends v4-mapped while the IPv4 socket at the other end reports the same ends as 4 bytes.
 */
export function ipv4At(bytes: Uint8Array): number {
  if (bytes.length === 4) return 0;
  if (bytes.length !== 16 || bytes[10] !== 0xff || bytes[11] !== 0xff) return -1;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return -1;
  return 12;
}

export const dottedAt = (b: Uint8Array, at: number): string =>
  `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;

/** An address as the two ends of a connection agree on it: IPv4 dotted, a v4-mapped IPv6 address as the IPv4
 * address it maps, other IPv6 in RFC 5952 form; "?" for another length. */
export function addressText(bytes: Uint8Array): string {
  const v4 = ipv4At(bytes);
  if (v4 >= 0) return dottedAt(bytes, v4);
  return bytes.length === 16 ? ipv6Text(bytes) : "?";
}

/** An address and port as one string: an IPv6 address in brackets (RFC 5952, section 6), so "fd00::2:9090"
 * is not read as an address with no port. */
export function endpointText(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
