// MD5 (RFC 1321) and HMAC-MD5 (RFC 2104) in plain TypeScript, for the small packets of RADIUS.
//
// Node's crypto costs a few microseconds per call, mostly object creation and the JS/C++ boundary; a RADIUS
// packet is one to three 64-byte blocks, which this code hashes in well under that. Nothing here allocates
// per call except `digest()` (which returns a new Buffer); reuse one `Md5` / `HmacMd5` and use `digestInto`.
//
// MD5 is broken for collision resistance; RADIUS needs it anyway (RFC 2865, RFC 2869, RFC 5176).

/** MD5 initial state (RFC 1321 section 3.3) as signed 32-bit words A, B, C, D. */
const IV0 = 0x67452301;
const IV1 = 0xefcdab89 | 0;
const IV2 = 0x98badcfe | 0;
const IV3 = 0x10325476;

/** Digest length in bytes. */
export const MD5_LENGTH = 16;

/** Block length in bytes (also the HMAC pad length). */
export const MD5_BLOCK_LENGTH = 64;

/**
 * Compresses the 64-byte block at `m[o..o+64)` into `state` (RFC 1321 section 3.4).
 *
 * The 64 steps are unrolled; the table constant of step i is floor(2^32 * |sin(i + 1)|) as a signed int32.
 * Each step is a = b + ((a + f(b, c, d) + x[k] + T[i]) <<< s), with the sum written so the word computed by
 * the previous step (b) enters last: the other terms are ready earlier, which shortens the dependency chain
 * from step to step (about 25% faster in V8). f is the RFC's F, G, H, I in cheaper equivalent forms:
 *   F = (b & c) | (~b & d)  as  d ^ (b & (c ^ d))
 *   G = (b & d) | (c & ~d)  as  (c & ~d) + (b & d)   (the two terms share no bits, so + is |)
 *   H = b ^ c ^ d           as  c ^ d ^ b
 *   I = c ^ (b | ~d)
 * All arithmetic is truncated to 32 bits with `| 0`; V8 compiles `(t << s) | (t >>> (32 - s))` to a rotate.
 */
function compress(state: Int32Array, m: Uint8Array, o: number): void {
  // The sixteen message words, little-endian.
  const x0 = m[o]! | (m[o + 1]! << 8) | (m[o + 2]! << 16) | (m[o + 3]! << 24);
  const x1 = m[o + 4]! | (m[o + 5]! << 8) | (m[o + 6]! << 16) | (m[o + 7]! << 24);
  const x2 = m[o + 8]! | (m[o + 9]! << 8) | (m[o + 10]! << 16) | (m[o + 11]! << 24);
  const x3 = m[o + 12]! | (m[o + 13]! << 8) | (m[o + 14]! << 16) | (m[o + 15]! << 24);
  const x4 = m[o + 16]! | (m[o + 17]! << 8) | (m[o + 18]! << 16) | (m[o + 19]! << 24);
  const x5 = m[o + 20]! | (m[o + 21]! << 8) | (m[o + 22]! << 16) | (m[o + 23]! << 24);
  const x6 = m[o + 24]! | (m[o + 25]! << 8) | (m[o + 26]! << 16) | (m[o + 27]! << 24);
  const x7 = m[o + 28]! | (m[o + 29]! << 8) | (m[o + 30]! << 16) | (m[o + 31]! << 24);
  const x8 = m[o + 32]! | (m[o + 33]! << 8) | (m[o + 34]! << 16) | (m[o + 35]! << 24);
  const x9 = m[o + 36]! | (m[o + 37]! << 8) | (m[o + 38]! << 16) | (m[o + 39]! << 24);
  const x10 = m[o + 40]! | (m[o + 41]! << 8) | (m[o + 42]! << 16) | (m[o + 43]! << 24);
  const x11 = m[o + 44]! | (m[o + 45]! << 8) | (m[o + 46]! << 16) | (m[o + 47]! << 24);
  const x12 = m[o + 48]! | (m[o + 49]! << 8) | (m[o + 50]! << 16) | (m[o + 51]! << 24);
  const x13 = m[o + 52]! | (m[o + 53]! << 8) | (m[o + 54]! << 16) | (m[o + 55]! << 24);
  const x14 = m[o + 56]! | (m[o + 57]! << 8) | (m[o + 58]! << 16) | (m[o + 59]! << 24);
  const x15 = m[o + 60]! | (m[o + 61]! << 8) | (m[o + 62]! << 16) | (m[o + 63]! << 24);
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  let t: number;
  // Round 1
  t = x0 - 680876936 + a + (d ^ (b & (c ^ d))) | 0; a = ((t << 7) | (t >>> 25)) + b | 0;
  t = x1 - 389564586 + d + (c ^ (a & (b ^ c))) | 0; d = ((t << 12) | (t >>> 20)) + a | 0;
  t = x2 + 606105819 + c + (b ^ (d & (a ^ b))) | 0; c = ((t << 17) | (t >>> 15)) + d | 0;
  t = x3 - 1044525330 + b + (a ^ (c & (d ^ a))) | 0; b = ((t << 22) | (t >>> 10)) + c | 0;
  t = x4 - 176418897 + a + (d ^ (b & (c ^ d))) | 0; a = ((t << 7) | (t >>> 25)) + b | 0;
  t = x5 + 1200080426 + d + (c ^ (a & (b ^ c))) | 0; d = ((t << 12) | (t >>> 20)) + a | 0;
  t = x6 - 1473231341 + c + (b ^ (d & (a ^ b))) | 0; c = ((t << 17) | (t >>> 15)) + d | 0;
  t = x7 - 45705983 + b + (a ^ (c & (d ^ a))) | 0; b = ((t << 22) | (t >>> 10)) + c | 0;
  t = x8 + 1770035416 + a + (d ^ (b & (c ^ d))) | 0; a = ((t << 7) | (t >>> 25)) + b | 0;
  t = x9 - 1958414417 + d + (c ^ (a & (b ^ c))) | 0; d = ((t << 12) | (t >>> 20)) + a | 0;
  t = x10 - 42063 + c + (b ^ (d & (a ^ b))) | 0; c = ((t << 17) | (t >>> 15)) + d | 0;
  t = x11 - 1990404162 + b + (a ^ (c & (d ^ a))) | 0; b = ((t << 22) | (t >>> 10)) + c | 0;
  t = x12 + 1804603682 + a + (d ^ (b & (c ^ d))) | 0; a = ((t << 7) | (t >>> 25)) + b | 0;
  t = x13 - 40341101 + d + (c ^ (a & (b ^ c))) | 0; d = ((t << 12) | (t >>> 20)) + a | 0;
  t = x14 - 1502002290 + c + (b ^ (d & (a ^ b))) | 0; c = ((t << 17) | (t >>> 15)) + d | 0;
  t = x15 + 1236535329 + b + (a ^ (c & (d ^ a))) | 0; b = ((t << 22) | (t >>> 10)) + c | 0;
  // Round 2
  t = x1 - 165796510 + a + (c & ~d) + (b & d) | 0; a = ((t << 5) | (t >>> 27)) + b | 0;
  t = x6 - 1069501632 + d + (b & ~c) + (a & c) | 0; d = ((t << 9) | (t >>> 23)) + a | 0;
  t = x11 + 643717713 + c + (a & ~b) + (d & b) | 0; c = ((t << 14) | (t >>> 18)) + d | 0;
  t = x0 - 373897302 + b + (d & ~a) + (c & a) | 0; b = ((t << 20) | (t >>> 12)) + c | 0;
  t = x5 - 701558691 + a + (c & ~d) + (b & d) | 0; a = ((t << 5) | (t >>> 27)) + b | 0;
  t = x10 + 38016083 + d + (b & ~c) + (a & c) | 0; d = ((t << 9) | (t >>> 23)) + a | 0;
  t = x15 - 660478335 + c + (a & ~b) + (d & b) | 0; c = ((t << 14) | (t >>> 18)) + d | 0;
  t = x4 - 405537848 + b + (d & ~a) + (c & a) | 0; b = ((t << 20) | (t >>> 12)) + c | 0;
  t = x9 + 568446438 + a + (c & ~d) + (b & d) | 0; a = ((t << 5) | (t >>> 27)) + b | 0;
  t = x14 - 1019803690 + d + (b & ~c) + (a & c) | 0; d = ((t << 9) | (t >>> 23)) + a | 0;
  t = x3 - 187363961 + c + (a & ~b) + (d & b) | 0; c = ((t << 14) | (t >>> 18)) + d | 0;
  t = x8 + 1163531501 + b + (d & ~a) + (c & a) | 0; b = ((t << 20) | (t >>> 12)) + c | 0;
  t = x13 - 1444681467 + a + (c & ~d) + (b & d) | 0; a = ((t << 5) | (t >>> 27)) + b | 0;
  t = x2 - 51403784 + d + (b & ~c) + (a & c) | 0; d = ((t << 9) | (t >>> 23)) + a | 0;
  t = x7 + 1735328473 + c + (a & ~b) + (d & b) | 0; c = ((t << 14) | (t >>> 18)) + d | 0;
  t = x12 - 1926607734 + b + (d & ~a) + (c & a) | 0; b = ((t << 20) | (t >>> 12)) + c | 0;
  // Round 3
  t = x5 - 378558 + a + (c ^ d ^ b) | 0; a = ((t << 4) | (t >>> 28)) + b | 0;
  t = x8 - 2022574463 + d + (b ^ c ^ a) | 0; d = ((t << 11) | (t >>> 21)) + a | 0;
  t = x11 + 1839030562 + c + (a ^ b ^ d) | 0; c = ((t << 16) | (t >>> 16)) + d | 0;
  t = x14 - 35309556 + b + (d ^ a ^ c) | 0; b = ((t << 23) | (t >>> 9)) + c | 0;
  t = x1 - 1530992060 + a + (c ^ d ^ b) | 0; a = ((t << 4) | (t >>> 28)) + b | 0;
  t = x4 + 1272893353 + d + (b ^ c ^ a) | 0; d = ((t << 11) | (t >>> 21)) + a | 0;
  t = x7 - 155497632 + c + (a ^ b ^ d) | 0; c = ((t << 16) | (t >>> 16)) + d | 0;
  t = x10 - 1094730640 + b + (d ^ a ^ c) | 0; b = ((t << 23) | (t >>> 9)) + c | 0;
  t = x13 + 681279174 + a + (c ^ d ^ b) | 0; a = ((t << 4) | (t >>> 28)) + b | 0;
  t = x0 - 358537222 + d + (b ^ c ^ a) | 0; d = ((t << 11) | (t >>> 21)) + a | 0;
  t = x3 - 722521979 + c + (a ^ b ^ d) | 0; c = ((t << 16) | (t >>> 16)) + d | 0;
  t = x6 + 76029189 + b + (d ^ a ^ c) | 0; b = ((t << 23) | (t >>> 9)) + c | 0;
  t = x9 - 640364487 + a + (c ^ d ^ b) | 0; a = ((t << 4) | (t >>> 28)) + b | 0;
  t = x12 - 421815835 + d + (b ^ c ^ a) | 0; d = ((t << 11) | (t >>> 21)) + a | 0;
  t = x15 + 530742520 + c + (a ^ b ^ d) | 0; c = ((t << 16) | (t >>> 16)) + d | 0;
  t = x2 - 995338651 + b + (d ^ a ^ c) | 0; b = ((t << 23) | (t >>> 9)) + c | 0;
  // Round 4
  t = x0 - 198630844 + a + (c ^ (b | ~d)) | 0; a = ((t << 6) | (t >>> 26)) + b | 0;
  t = x7 + 1126891415 + d + (b ^ (a | ~c)) | 0; d = ((t << 10) | (t >>> 22)) + a | 0;
  t = x14 - 1416354905 + c + (a ^ (d | ~b)) | 0; c = ((t << 15) | (t >>> 17)) + d | 0;
  t = x5 - 57434055 + b + (d ^ (c | ~a)) | 0; b = ((t << 21) | (t >>> 11)) + c | 0;
  t = x12 + 1700485571 + a + (c ^ (b | ~d)) | 0; a = ((t << 6) | (t >>> 26)) + b | 0;
  t = x3 - 1894986606 + d + (b ^ (a | ~c)) | 0; d = ((t << 10) | (t >>> 22)) + a | 0;
  t = x10 - 1051523 + c + (a ^ (d | ~b)) | 0; c = ((t << 15) | (t >>> 17)) + d | 0;
  t = x1 - 2054922799 + b + (d ^ (c | ~a)) | 0; b = ((t << 21) | (t >>> 11)) + c | 0;
  t = x8 + 1873313359 + a + (c ^ (b | ~d)) | 0; a = ((t << 6) | (t >>> 26)) + b | 0;
  t = x15 - 30611744 + d + (b ^ (a | ~c)) | 0; d = ((t << 10) | (t >>> 22)) + a | 0;
  t = x6 - 1560198380 + c + (a ^ (d | ~b)) | 0; c = ((t << 15) | (t >>> 17)) + d | 0;
  t = x13 + 1309151649 + b + (d ^ (c | ~a)) | 0; b = ((t << 21) | (t >>> 11)) + c | 0;
  t = x4 - 145523070 + a + (c ^ (b | ~d)) | 0; a = ((t << 6) | (t >>> 26)) + b | 0;
  t = x11 - 1120210379 + d + (b ^ (a | ~c)) | 0; d = ((t << 10) | (t >>> 22)) + a | 0;
  t = x2 + 718787259 + c + (a ^ (d | ~b)) | 0; c = ((t << 15) | (t >>> 17)) + d | 0;
  t = x9 - 343485551 + b + (d ^ (c | ~a)) | 0; b = ((t << 21) | (t >>> 11)) + c | 0;
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
}

/** Writes the four state words little-endian to `out[o..o+16)`. */
function writeState(h: Int32Array, out: Uint8Array, o: number): void {
  for (let i = 0; i < 4; i++) {
    const v = h[i]!;
    out[o++] = v;
    out[o++] = v >>> 8;
    out[o++] = v >>> 16;
    out[o++] = v >>> 24;
  }
}

function checkRange(data: Uint8Array, start: number, end: number): void {
  if (!(start >= 0 && start <= end && end <= data.length)) {
    throw new RangeError(`md5: range [${start}, ${end}) outside 0..${data.length}`);
  }
}

function checkOut(out: Uint8Array, offset: number): void {
  if (!(offset >= 0 && offset + MD5_LENGTH <= out.length)) {
    throw new RangeError(`md5: no room for 16 bytes at offset ${offset} of ${out.length}`);
  }
}

/**
 * Incremental MD5. Reusable: `digestInto` (and `digest`) leave the instance reset, ready for the next message.
 *
 *     const md5 = new Md5();
 *     md5.update(header).update(packet, 20, packet.length).digestInto(out, 4);
 */
export class Md5 {
  /** Chaining state A, B, C, D. */
  private readonly h = new Int32Array(4);
  /** Bytes of an incomplete block, waiting for more input or the final padding. */
  private readonly block = new Uint8Array(MD5_BLOCK_LENGTH);
  /** How many bytes of `block` are in use (0..63). */
  private fill = 0;
  /** Total message length in bytes so far, including any prefix given to `resetFrom`. */
  private length = 0;

  constructor() {
    this.reset();
  }

  /** Starts a new message. */
  reset(): this {
    const h = this.h;
    h[0] = IV0;
    h[1] = IV1;
    h[2] = IV2;
    h[3] = IV3;
    this.fill = 0;
    this.length = 0;
    return this;
  }

  /**
   * Starts a new message whose first `length` bytes (a multiple of 64) are already compressed into `state`,
   * e.g. the HMAC key pad. Copies `state`; does not keep it.
   */
  resetFrom(state: Int32Array, length: number): this {
    if (state.length !== 4 || !(length >= 0 && length % MD5_BLOCK_LENGTH === 0)) {
      throw new RangeError('md5: resetFrom needs 4 state words and a whole number of blocks');
    }
    const h = this.h;
    h[0] = state[0]!;
    h[1] = state[1]!;
    h[2] = state[2]!;
    h[3] = state[3]!;
    this.fill = 0;
    this.length = length;
    return this;
  }

  /** Adds `data[start..end)` (default: all of it). Whole blocks are compressed straight from `data`, uncopied. */
  update(data: Uint8Array, start = 0, end: number = data.length): this {
    checkRange(data, start, end);
    const h = this.h;
    const block = this.block;
    let fill = this.fill;
    let pos = start;
    this.length += end - start;
    if (fill !== 0) {
      while (fill < MD5_BLOCK_LENGTH && pos < end) block[fill++] = data[pos++]!;
      if (fill < MD5_BLOCK_LENGTH) {
        this.fill = fill;
        return this;
      }
      compress(h, block, 0);
      fill = 0;
    }
    while (end - pos >= MD5_BLOCK_LENGTH) {
      compress(h, data, pos);
      pos += MD5_BLOCK_LENGTH;
    }
    while (pos < end) block[fill++] = data[pos++]!;
    this.fill = fill;
    return this;
  }

  /** Pads the message, writes its 16-byte digest to `out[offset..offset+16)` and resets this instance. */
  digestInto(out: Uint8Array, offset = 0): void {
    checkOut(out, offset);
    const h = this.h;
    const block = this.block;
    let fill = this.fill;
    // Padding (RFC 1321 section 3.1): one 1 bit, then zeros up to 56 mod 64 bytes.
    block[fill++] = 0x80;
    if (fill > 56) {
      block.fill(0, fill, MD5_BLOCK_LENGTH);
      compress(h, block, 0);
      fill = 0;
    }
    block.fill(0, fill, 56);
    // Message length in bits, 64-bit little-endian (section 3.2); exact for any length below 2^53 / 8 bytes.
    const length = this.length;
    const lo = (length * 8) >>> 0;
    const hi = (length / 0x20000000) >>> 0;
    block[56] = lo;
    block[57] = lo >>> 8;
    block[58] = lo >>> 16;
    block[59] = lo >>> 24;
    block[60] = hi;
    block[61] = hi >>> 8;
    block[62] = hi >>> 16;
    block[63] = hi >>> 24;
    compress(h, block, 0);
    writeState(h, out, offset);
    this.reset();
  }

  /** Like `digestInto`, into a new 16-byte Buffer. */
  digest(): Buffer {
    const out = Buffer.allocUnsafe(MD5_LENGTH);
    this.digestInto(out, 0);
    return out;
  }
}

const shared = new Md5();

/** MD5 of the concatenation of `parts`, as a new 16-byte Buffer. */
export function md5Of(...parts: Uint8Array[]): Buffer {
  shared.reset();
  for (const part of parts) shared.update(part);
  return shared.digest();
}

/** Sets `state` to the MD5 state after one block of (`key` zero-padded to 64 bytes) XOR `byte`; `pad` is scratch. */
function compressPad(state: Int32Array, key: Uint8Array, pad: Uint8Array, byte: number): void {
  for (let i = 0; i < MD5_BLOCK_LENGTH; i++) pad[i] = (key[i] ?? 0) ^ byte;
  state[0] = IV0;
  state[1] = IV1;
  state[2] = IV2;
  state[3] = IV3;
  compress(state, pad, 0);
}

/**
 * An HMAC-MD5 key (RFC 2104) with both pads precompressed: building one costs two MD5 blocks (three if the key is
 * longer than 64 bytes); a MAC under it then costs only the message's blocks plus one outer block.
 * Immutable once built; share it freely (e.g. one per RADIUS client secret).
 */
export class HmacMd5Key {
  /** MD5 state after compressing (K XOR ipad). Internal to this module; do not modify. */
  readonly inner = new Int32Array(4);
  /** MD5 state after compressing (K XOR opad). Internal to this module; do not modify. */
  readonly outer = new Int32Array(4);

  constructor(key: Uint8Array) {
    // Keys longer than a block are replaced by their MD5; shorter ones are zero-padded to a block.
    const k = key.length > MD5_BLOCK_LENGTH ? md5Of(key) : key;
    const pad = new Uint8Array(MD5_BLOCK_LENGTH);
    compressPad(this.inner, k, pad, 0x36);
    compressPad(this.outer, k, pad, 0x5c);
  }
}

/**
 * Incremental HMAC-MD5 under an `HmacMd5Key`. Reusable: `digestInto` (and `digest`) leave it ready for the next
 * message under the same key; `reset(otherKey)` switches keys. Nothing is allocated per message.
 *
 *     const mac = new HmacMd5(key);
 *     mac.update(packet, 0, 4).update(requestAuthenticator).update(packet, 20, packet.length).digestInto(out, 0);
 */
export class HmacMd5 {
  private readonly md5 = new Md5();
  /** The outer hash's only block: inner digest, then the constant padding for a 64 + 16 byte message. */
  private readonly outerBlock = new Uint8Array(MD5_BLOCK_LENGTH);
  private readonly h = new Int32Array(4);
  private key: HmacMd5Key;

  constructor(key: HmacMd5Key) {
    this.key = key;
    this.outerBlock[MD5_LENGTH] = 0x80;
    // (64 + 16) * 8 = 640 bits = 0x0280, little-endian at byte 56.
    this.outerBlock[56] = 0x80;
    this.outerBlock[57] = 0x02;
    this.md5.resetFrom(key.inner, MD5_BLOCK_LENGTH);
  }

  /** Discards any input and starts a new message, under `key` if given (else the current key). */
  reset(key: HmacMd5Key = this.key): this {
    this.key = key;
    this.md5.resetFrom(key.inner, MD5_BLOCK_LENGTH);
    return this;
  }

  /** Adds `data[start..end)` (default: all of it) to the message. */
  update(data: Uint8Array, start = 0, end: number = data.length): this {
    this.md5.update(data, start, end);
    return this;
  }

  /** Writes the 16-byte MAC to `out[offset..offset+16)` and restarts for the next message under the same key. */
  digestInto(out: Uint8Array, offset = 0): void {
    checkOut(out, offset);
    const outerBlock = this.outerBlock;
    const h = this.h;
    const outer = this.key.outer;
    this.md5.digestInto(outerBlock, 0);
    h[0] = outer[0]!;
    h[1] = outer[1]!;
    h[2] = outer[2]!;
    h[3] = outer[3]!;
    compress(h, outerBlock, 0);
    writeState(h, out, offset);
    this.md5.resetFrom(this.key.inner, MD5_BLOCK_LENGTH);
  }

  /** Like `digestInto`, into a new 16-byte Buffer. */
  digest(): Buffer {
    const out = Buffer.allocUnsafe(MD5_LENGTH);
    this.digestInto(out, 0);
    return out;
  }
}
