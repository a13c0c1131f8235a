// Postgres' hash of a text value, as its hash indexes place it: hashtext() of a deterministic collation is
// hash_bytes() over the UTF-8 bytes (Bob Jenkins' lookup3, src/common/hashfn.c), here byte by byte. Used only
// to order rows before a COPY, so that rows going into one bucket of a hash index arrive one after another
// (measured in psql: 200 000 rows into a 1 000 000-row table with a hash index on the text column, 1.0 s in
// random order, 0.5 s in bucket order). Were it ever to differ from the server's (another collation), only
// that order would be lost, never a row.

const utf8 = new TextEncoder();

function rot(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** hashtext(value) as an unsigned 32-bit integer. */
export function pgHashText(value: string): number {
  let bytes: Uint8Array | undefined;
  for (let i = 0; i < value.length; i++)
    if (value.charCodeAt(i) >= 0x80) {
      bytes = utf8.encode(value);
      break;
    }
  const len = bytes ? bytes.length : value.length;
  const at = bytes ? (i: number) => bytes[i]! : (i: number) => value.charCodeAt(i);
  let a = (0x9e3779b9 + len + 3923095) | 0;
  let b = a;
  let c = a;
  let k = 0;
  let rest = len;
  while (rest >= 12) {
    a = (a + (at(k) | (at(k + 1) << 8) | (at(k + 2) << 16) | (at(k + 3) << 24))) | 0;
    b = (b + (at(k + 4) | (at(k + 5) << 8) | (at(k + 6) << 16) | (at(k + 7) << 24))) | 0;
    c = (c + (at(k + 8) | (at(k + 9) << 8) | (at(k + 10) << 16) | (at(k + 11) << 24))) | 0;
    // mix(a, b, c)
    a = (a - c) | 0;
    a ^= rot(c, 4);
    c = (c + b) | 0;
    b = (b - a) | 0;
    b ^= rot(a, 6);
    a = (a + c) | 0;
    c = (c - b) | 0;
    c ^= rot(b, 8);
    b = (b + a) | 0;
    a = (a - c) | 0;
    a ^= rot(c, 16);
    c = (c + b) | 0;
    b = (b - a) | 0;
    b ^= rot(a, 19);
    a = (a + c) | 0;
    c = (c - b) | 0;
    c ^= rot(b, 4);
    b = (b + a) | 0;
    k += 12;
    rest -= 12;
  }
  // The last 11 bytes (hashfn.c's falling-through switch); the lowest byte of c is left for the length.
  if (rest >= 11) c = (c + (at(k + 10) << 24)) | 0;
  if (rest >= 10) c = (c + (at(k + 9) << 16)) | 0;
  if (rest >= 9) c = (c + (at(k + 8) << 8)) | 0;
  if (rest >= 8) b = (b + (at(k + 7) << 24)) | 0;
  if (rest >= 7) b = (b + (at(k + 6) << 16)) | 0;
  if (rest >= 6) b = (b + (at(k + 5) << 8)) | 0;
  if (rest >= 5) b = (b + at(k + 4)) | 0;
  if (rest >= 4) a = (a + (at(k + 3) << 24)) | 0;
  if (rest >= 3) a = (a + (at(k + 2) << 16)) | 0;
  if (rest >= 2) a = (a + (at(k + 1) << 8)) | 0;
  if (rest >= 1) a = (a + at(k)) | 0;
  // final(a, b, c)
  c ^= b;
  c = (c - rot(b, 14)) | 0;
  a ^= c;
  a = (a - rot(c, 11)) | 0;
  b ^= a;
  b = (b - rot(a, 25)) | 0;
  c ^= b;
  c = (c - rot(b, 16)) | 0;
  a ^= c;
  a = (a - rot(c, 4)) | 0;
  b ^= a;
  b = (b - rot(a, 14)) | 0;
  c ^= b;
  c = (c - rot(b, 24)) | 0;
  return c >>> 0;
}

/**
 * The order in which a hash index's buckets are filled one after another, for any number of buckets: a
 * bucket is the hash's low bits, so rows sorted by the hash with its bits reversed come bucket by bucket.
 */
export function bucketOrderKey(hash: number): number {
  let x = hash >>> 0;
  x = ((x >>> 1) & 0x55555555) | ((x & 0x55555555) << 1);
  x = ((x >>> 2) & 0x33333333) | ((x & 0x33333333) << 2);
  x = ((x >>> 4) & 0x0f0f0f0f) | ((x & 0x0f0f0f0f) << 4);
  x = ((x >>> 8) & 0x00ff00ff) | ((x & 0x00ff00ff) << 8);
  return ((x >>> 16) | (x << 16)) >>> 0;
}

const INDEX_BITS = 21;
const INDEX_SPAN = 2 ** INDEX_BITS;

/** The row numbers of `rows` in the order their keys' hash index buckets take them (see bucketOrderKey); stable. */
export function bucketOrder<T>(rows: readonly T[], key: (row: T) => string): Uint32Array {
  const n = rows.length;
  const order = new Uint32Array(n);
  if (n >= INDEX_SPAN) {
    const keyed = rows.map((row, i) => ({ i, k: bucketOrderKey(pgHashText(key(row))) }));
    keyed.sort((x, y) => x.k - y.k || x.i - y.i);
    for (let i = 0; i < n; i++) order[i] = keyed[i]!.i;
    return order;
  }
  // Key and index packed in one double (32 + 21 bits, exact): a native numeric sort, no comparator calls.
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) packed[i] = bucketOrderKey(pgHashText(key(rows[i]!))) * INDEX_SPAN + i;
  packed.sort();
  for (let i = 0; i < n; i++) order[i] = (packed[i] ?? 0) % INDEX_SPAN;
  return order;
}
