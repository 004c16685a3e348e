import { randomBytes, timingSafeEqual } from 'node:crypto';
import { decodeValue, encodeValue, type AttributeInput, type AttributeValue } from './attributes.ts';
import type { AttributeDefinition, Dictionary } from './dictionary.ts';
import { RadiusDecodeError } from './errors.ts';
// MD5 in TypeScript (md5.ts): a packet's few blocks cost far less than a call into node:crypto.
import { HmacMd5, HmacMd5Key, Md5, md5Of as md5 } from './md5.ts';

/** RADIUS packet codes (RFC 2865 §3, RFC 2866 §3, RFC 5997 §2, RFC 5176 §2.3). */
export const PacketCode = {
  AccessRequest: 1,
  AccessAccept: 2,
  AccessReject: 3,
  AccountingRequest: 4,
  AccountingResponse: 5,
  AccessChallenge: 11,
  StatusServer: 12,
  StatusClient: 13,
  DisconnectRequest: 40,
  DisconnectAck: 41,
  DisconnectNak: 42,
  CoaRequest: 43,
  CoaAck: 44,
  CoaNak: 45,
} as const;

/** One of the packet codes this codec accepts; any other code is dropped as `unknown_code`. */
export type PacketCode = (typeof PacketCode)[keyof typeof PacketCode];

/** Codes a client sends and a server answers. */
export type RequestCode = 1 | 4 | 12 | 13 | 40 | 43;

/** Codes a server sends in answer to a request. */
export type ResponseCode = 2 | 3 | 5 | 11 | 41 | 42 | 44 | 45;

/**
 * The attributes the AAA server reads and writes, with the JavaScript form of their values: `text` for strings
 * and addresses, `number` for 32-bit integers and dates (Unix seconds), `octets` for Buffers. It types `get`
 * without casts, and a test holds it to the dictionary.
 */
export const KNOWN_ATTRIBUTES = {
  'User-Name': 'text',
  'CHAP-Password': 'octets',
  'NAS-IP-Address': 'text',
  'NAS-Port': 'number',
  'Service-Type': 'number',
  'Framed-Protocol': 'number',
  'Framed-IP-Address': 'text',
  'Framed-IP-Netmask': 'text',
  'Filter-Id': 'text',
  'Framed-MTU': 'number',
  'Reply-Message': 'text',
  State: 'octets',
  Class: 'octets',
  'Vendor-Specific': 'octets',
  'Session-Timeout': 'number',
  'Idle-Timeout': 'number',
  'Termination-Action': 'number',
  'Called-Station-Id': 'text',
  'Calling-Station-Id': 'text',
  'NAS-Identifier': 'text',
  'Proxy-State': 'octets',
  'Acct-Status-Type': 'number',
  'Acct-Delay-Time': 'number',
  'Acct-Input-Octets': 'number',
  'Acct-Output-Octets': 'number',
  'Acct-Session-Id': 'text',
  'Acct-Authentic': 'number',
  'Acct-Session-Time': 'number',
  'Acct-Input-Packets': 'number',
  'Acct-Output-Packets': 'number',
  'Acct-Terminate-Cause': 'number',
  'Acct-Multi-Session-Id': 'text',
  'Acct-Link-Count': 'number',
  'Acct-Input-Gigawords': 'number',
  'Acct-Output-Gigawords': 'number',
  'Event-Timestamp': 'number',
  'CHAP-Challenge': 'octets',
  'NAS-Port-Type': 'number',
  'Port-Limit': 'number',
  'Connect-Info': 'text',
  'EAP-Message': 'octets',
  'Message-Authenticator': 'octets',
  'Acct-Interim-Interval': 'number',
  'NAS-Port-Id': 'text',
  'Framed-Pool': 'text',
  'Chargeable-User-Identity': 'text',
  'NAS-IPv6-Address': 'text',
  'Framed-Interface-Id': 'text',
  'Framed-IPv6-Prefix': 'text',
  'Framed-IPv6-Address': 'text',
  'Delegated-IPv6-Prefix': 'text',
  'Error-Cause': 'number',
  'Huawei-Input-Average-Rate': 'number',
  'Huawei-Output-Average-Rate': 'number',
  'Huawei-Input-Peak-Rate': 'number',
  'Huawei-Output-Peak-Rate': 'number',
  'Huawei-Domain-Name': 'text',
  'Huawei-User-Mac': 'text',
  'Huawei-Startup-Stamp': 'number',
  'H3C-Input-Average-Rate': 'number',
  'H3C-Output-Average-Rate': 'number',
  'H3C-NAS-Startup-Timestamp': 'number',
  'H3C-User-Group': 'text',
} as const;

type JsValueOf<K> = K extends 'text' ? string : K extends 'number' ? number : Buffer;

/** `get`'s return type per known attribute name (see `KNOWN_ATTRIBUTES`). */
export type KnownAttributes = { [N in keyof typeof KNOWN_ATTRIBUTES]: JsValueOf<(typeof KNOWN_ATTRIBUTES)[N]> };

/** An attribute as listed by `RadiusPacket.attributes()`; names are `Attr-<code>` when the dictionary lacks them. */
export interface DecodedAttribute {
  readonly name: string;
  readonly vendorId: number;
  readonly code: number;
  readonly value: AttributeValue;
}

/**
 * Attributes to encode: ordered `[name, value]` pairs (repeats allowed), or an object whose array values
 * become repeated attributes and whose undefined values are skipped.
 */
export type AttributeList =
  | readonly (readonly [string, AttributeInput])[]
  | Readonly<Record<string, AttributeInput | readonly AttributeInput[] | undefined>>;

/** How to decode and authenticate one datagram. */
export interface DecodeOptions {
  readonly dictionary: Dictionary;
  /** The shared secret of the peer the datagram came from (RFC 2865 §3). */
  readonly secret: Buffer | string;
  /**
   * Refuse an Access-Request, Access-Accept, Access-Reject or Access-Challenge without Message-Authenticator
   * (BlastRADIUS, CVE-2024-3596). Status-Server and packets carrying EAP-Message always require it.
   */
  readonly requireMessageAuthenticator?: boolean;
  /** Set only when decoding a response: the code and Request Authenticator of the request it answers. */
  readonly request?: { readonly code: number; readonly authenticator: Buffer };
}

/** Options for `encodeResponse`. */
export interface ResponseOptions {
  /** Copy the request's Proxy-State attributes, in order, to the end of the reply (RFC 2865 §5.33); default true. */
  readonly copyProxyState?: boolean;
  /**
   * Put Message-Authenticator first in the reply; default true. False reproduces pre-RFC 3579 replies such as
   * the RFC 2865 §7 examples, and is not for production use.
   */
  readonly messageAuthenticator?: boolean;
}

/** What a client needs to build a request. */
export interface RequestOptions {
  readonly code: RequestCode;
  readonly identifier: number;
  readonly attributes: AttributeList;
  readonly secret: Buffer | string;
  readonly dictionary: Dictionary;
  /** Access-Request and Status-Server only: the Request Authenticator; 16 random octets by default (RFC 2865 §3). */
  readonly authenticator?: Buffer;
  /** Add Message-Authenticator as the first attribute; default true except for Accounting-Request. */
  readonly messageAuthenticator?: boolean;
}

const HEADER_LENGTH = 20;
const MAX_PACKET_LENGTH = 4096;
const USER_PASSWORD = 2;
const REPLY_MESSAGE = 18;
const VENDOR_SPECIFIC = 26;
const PROXY_STATE = 33;
const EAP_MESSAGE = 79;
const MESSAGE_AUTHENTICATOR = 80;
const ZERO16 = Buffer.alloc(16);

type PacketKind = 'access-request' | 'status' | 'signed-request' | 'response';

const KINDS: ReadonlyMap<number, PacketKind> = new Map<number, PacketKind>([
  [PacketCode.AccessRequest, 'access-request'],
  [PacketCode.StatusServer, 'status'],
  [PacketCode.StatusClient, 'status'],
  [PacketCode.AccountingRequest, 'signed-request'],
  [PacketCode.DisconnectRequest, 'signed-request'],
  [PacketCode.CoaRequest, 'signed-request'],
  [PacketCode.AccessAccept, 'response'],
  [PacketCode.AccessReject, 'response'],
  [PacketCode.AccessChallenge, 'response'],
  [PacketCode.AccountingResponse, 'response'],
  [PacketCode.DisconnectAck, 'response'],
  [PacketCode.DisconnectNak, 'response'],
  [PacketCode.CoaAck, 'response'],
  [PacketCode.CoaNak, 'response'],
]);

const RESPONSES_TO: ReadonlyMap<number, readonly number[]> = new Map<number, readonly number[]>([
  [PacketCode.AccessRequest, [PacketCode.AccessAccept, PacketCode.AccessReject, PacketCode.AccessChallenge]],
  [PacketCode.AccountingRequest, [PacketCode.AccountingResponse]],
  [PacketCode.StatusServer, [PacketCode.AccessAccept, PacketCode.AccountingResponse]],
  [PacketCode.StatusClient, [PacketCode.AccessAccept, PacketCode.AccountingResponse]],
  [PacketCode.DisconnectRequest, [PacketCode.DisconnectAck, PacketCode.DisconnectNak]],
  [PacketCode.CoaRequest, [PacketCode.CoaAck, PacketCode.CoaNak]],
]);

const ACCESS_RESPONSES: ReadonlySet<number> = new Set([
  PacketCode.AccessAccept,
  PacketCode.AccessReject,
  PacketCode.AccessChallenge,
]);

function toSecret(secret: Buffer | string): Buffer {
  const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
  if (bytes.length === 0) throw new TypeError('a RADIUS shared secret must not be empty');
  return bytes;
}

const hasher = new Md5();
const mac = new HmacMd5(new HmacMd5Key(Buffer.alloc(1)));
/** HMAC keys by secret: a NAS entry keeps its secret Buffer, so its pads are hashed once, not per packet. */
const hmacKeys = new WeakMap<Buffer, HmacMd5Key>();

/** An HMAC-MD5 context keyed with `secret`, ready for the message. */
function hmacOf(secret: Buffer): HmacMd5 {
  let key = hmacKeys.get(secret);
  if (key === undefined) hmacKeys.set(secret, (key = new HmacMd5Key(secret)));
  return mac.reset(key);
}

/** HMAC-MD5 over the packet with the authenticator field replaced by `authenticator` and the MA value zeroed. */
function messageAuthenticatorOf(packet: Buffer, maOffset: number, secret: Buffer, authenticator: Buffer): Buffer {
  const hmac = hmacOf(secret);
  hmac.update(packet, 0, 4);
  hmac.update(authenticator);
  hmac.update(packet, HEADER_LENGTH, maOffset + 2);
  hmac.update(ZERO16);
  hmac.update(packet, maOffset + 18);
  return hmac.digest();
}

/** MD5(Code+Identifier+Length+authenticator+Attributes+Secret), the RFC 2865 §3 / RFC 2866 §3 formula. */
function packetAuthenticatorOf(packet: Buffer, secret: Buffer, authenticator: Buffer): Buffer {
  return md5(packet.subarray(0, 4), authenticator, packet.subarray(HEADER_LENGTH), secret);
}

/**
 * The authenticator field under which a reply's Message-Authenticator is computed: the Request Authenticator
 * (RFC 3579 §3.2, RFC 5176 §3.4). No RFC defines it for Accounting-Response; FreeRADIUS signs and verifies that
 * one over a zeroed field unless it answers Status-Server (RFC 5997 §3), and so do we, so radclient accepts it.
 */
function replyMessageAuthenticatorField(code: number, requestCode: number, requestAuthenticator: Buffer): Buffer {
  const statusReply = requestCode === PacketCode.StatusServer || requestCode === PacketCode.StatusClient;
  return code === PacketCode.AccountingResponse && !statusReply ? ZERO16 : requestAuthenticator;
}

/**
 * The code, identifier and length of a datagram, read without validation, or undefined when shorter than a header.
 * For counters and logs about packets that are then dropped; never a substitute for `decodePacket`.
 */
export function peekHeader(buf: Buffer): { code: number; identifier: number; length: number } | undefined {
  if (buf.length < HEADER_LENGTH) return undefined;
  return { code: buf[0] ?? 0, identifier: buf[1] ?? 0, length: buf.readUInt16BE(2) };
}

/**
 * A decoded, authenticated RADIUS packet: an index of attribute offsets over the datagram's bytes.
 * Values are decoded only when asked for, so the hot path pays for what the server reads and no more.
 * Buffers it returns are views into the datagram: do not mutate them.
 */
export class RadiusPacket {
  readonly code: PacketCode;
  readonly identifier: number;
  /** The packet's bytes, trimmed to the header's Length (RFC 2865 §3: octets beyond it are padding). */
  readonly raw: Buffer;
  readonly dictionary: Dictionary;
  readonly hasMessageAuthenticator: boolean;
  readonly #offsets: readonly number[];
  #authenticator: Buffer | undefined;

  /** Built by `decodePacket`; not for direct use. */
  constructor(raw: Buffer, offsets: readonly number[], hasMessageAuthenticator: boolean, dictionary: Dictionary) {
    this.raw = raw;
    this.code = raw[0] as PacketCode;
    this.identifier = raw[1] ?? 0;
    this.#offsets = offsets;
    this.hasMessageAuthenticator = hasMessageAuthenticator;
    this.dictionary = dictionary;
  }

  /** The Request or Response Authenticator field (RFC 2865 §3). */
  get authenticator(): Buffer {
    // Read several times per request (duplicate key, password, reply signing): one view, made once.
    return (this.#authenticator ??= this.raw.subarray(4, HEADER_LENGTH));
  }

  /** How many top-level attributes the packet carries. */
  get attributeCount(): number {
    return this.#offsets.length;
  }

  #definition(name: string): AttributeDefinition {
    const definition = this.dictionary.attribute(name);
    if (definition === undefined) throw new TypeError(`unknown RADIUS attribute ${name}`);
    return definition;
  }

  #decode(definition: AttributeDefinition, start: number, length: number): AttributeValue {
    const raw = this.raw;
    if (definition.encrypt !== 0) return raw.subarray(start, start + length);
    if (definition.hasTag) {
      if (definition.type === 'integer') {
        return length === 4 ? raw.readUIntBE(start + 1, 3) : raw.subarray(start, start + length);
      }
      if (length > 0 && (raw[start] ?? 0xff) <= 0x1f) {
        start += 1;
        length -= 1;
      }
    }
    return decodeValue(definition.type, raw, start, length) ?? raw.subarray(start, start + length);
  }

  /** Calls `visit(start, length)` for each value of `definition` until it returns true. */
  #scan(definition: AttributeDefinition, visit: (start: number, length: number) => boolean | void): void {
    const raw = this.raw;
    const offsets = this.#offsets;
    if (definition.vendorId === 0) {
      for (let i = 0; i < offsets.length; i++) {
        const offset = offsets[i] as number;
        if (raw[offset] === definition.code && visit(offset + 2, (raw[offset + 1] as number) - 2) === true) return;
      }
      return;
    }
    const vendor = this.dictionary.vendor(definition.vendorId);
    if (vendor === undefined) return;
    for (let i = 0; i < offsets.length; i++) {
      const offset = offsets[i] as number;
      if (raw[offset] !== VENDOR_SPECIFIC) continue;
      const end = offset + (raw[offset + 1] as number);
      if (end - offset < 6 || raw.readUInt32BE(offset + 2) !== definition.vendorId) continue;
      if (!vsaIsWellFormed(raw, offset + 6, end, vendor.typeSize, vendor.lengthSize)) continue;
      let sub = offset + 6;
      while (sub < end) {
        const type = readSized(raw, sub, vendor.typeSize);
        const length = vendor.lengthSize === 0 ? end - sub : readSized(raw, sub + vendor.typeSize, vendor.lengthSize);
        const header = vendor.typeSize + vendor.lengthSize;
        if (type === definition.code && visit(sub + header, length - header) === true) return;
        sub += length;
      }
    }
  }

  /** The first value of attribute `name`, typed per the dictionary; undefined when absent. */
  get<N extends keyof KnownAttributes>(name: N): KnownAttributes[N] | undefined;
  get(name: string): AttributeValue | undefined;
  get(name: string): AttributeValue | undefined {
    const definition = this.#definition(name);
    let found: AttributeValue | undefined;
    this.#scan(definition, (start, length) => {
      found = this.#decode(definition, start, length);
      return true;
    });
    return found;
  }

  /** Every value of attribute `name`, in packet order. */
  getAll<N extends keyof KnownAttributes>(name: N): KnownAttributes[N][];
  getAll(name: string): AttributeValue[];
  getAll(name: string): AttributeValue[] {
    const definition = this.#definition(name);
    const values: AttributeValue[] = [];
    this.#scan(definition, (start, length) => {
      values.push(this.#decode(definition, start, length));
    });
    return values;
  }

  /** The raw value octets of the first attribute `name` (tags and encryption left in place). */
  getRaw(name: string): Buffer | undefined {
    const definition = this.#definition(name);
    let found: Buffer | undefined;
    this.#scan(definition, (start, length) => {
      found = this.raw.subarray(start, start + length);
      return true;
    });
    return found;
  }

  /** Whether attribute `name` is present. */
  has(name: string): boolean {
    let found = false;
    this.#scan(this.#definition(name), () => {
      found = true;
      return true;
    });
    return found;
  }

  /** The VALUE name of an enumerated integer attribute (e.g. Acct-Status-Type -> "Interim-Update"). */
  getValueName(name: string): string | undefined {
    const definition = this.#definition(name);
    const value = this.get(name);
    return typeof value === 'number' ? definition.namesByValue.get(value) : undefined;
  }

  /** The Proxy-State values in order, to be echoed unmodified in the reply (RFC 2865 §5.33). */
  proxyStates(): Buffer[] {
    const states: Buffer[] = [];
    for (const offset of this.#offsets) {
      if (this.raw[offset] === PROXY_STATE) states.push(this.raw.subarray(offset + 2, offset + (this.raw[offset + 1] as number)));
    }
    return states;
  }

  /**
   * Every attribute in packet order, Vendor-Specific ones expanded into their sub-attributes when the vendor is
   * known and the VSA well formed. Encrypted values stay encrypted.
   */
  *attributes(): Generator<DecodedAttribute> {
    const raw = this.raw;
    for (const offset of this.#offsets) {
      const code = raw[offset] as number;
      const end = offset + (raw[offset + 1] as number);
      if (code === VENDOR_SPECIFIC && end - offset >= 6) {
        const vendorId = raw.readUInt32BE(offset + 2);
        const vendor = this.dictionary.vendor(vendorId);
        if (vendor !== undefined && vsaIsWellFormed(raw, offset + 6, end, vendor.typeSize, vendor.lengthSize)) {
          const header = vendor.typeSize + vendor.lengthSize;
          let sub = offset + 6;
          while (sub < end) {
            const type = readSized(raw, sub, vendor.typeSize);
            const length = vendor.lengthSize === 0 ? end - sub : readSized(raw, sub + vendor.typeSize, vendor.lengthSize);
            const definition = this.dictionary.vendorAttribute(vendorId, type);
            yield {
              name: definition?.name ?? `Vendor-${vendorId}-Attr-${type}`,
              vendorId,
              code: type,
              value:
                definition === undefined
                  ? raw.subarray(sub + header, sub + length)
                  : this.#decode(definition, sub + header, length - header),
            };
            sub += length;
          }
          continue;
        }
      }
      const definition = this.dictionary.standard(code);
      yield {
        name: definition?.name ?? `Attr-${code}`,
        vendorId: 0,
        code,
        value: definition === undefined ? raw.subarray(offset + 2, end) : this.#decode(definition, offset + 2, end - offset - 2),
      };
    }
  }

  /**
   * The decrypted User-Password of an Access-Request (RFC 2865 §5.2), trailing NULs removed; undefined when absent.
   * Throws `bad_attribute` when the hidden value is not 16..128 octets in whole 16-octet blocks.
   */
  userPassword(secret: Buffer | string): string | undefined {
    if (this.code !== PacketCode.AccessRequest) return undefined;
    let start = -1;
    let length = 0;
    for (const offset of this.#offsets) {
      if (this.raw[offset] === USER_PASSWORD) {
        start = offset + 2;
        length = (this.raw[offset + 1] as number) - 2;
        break;
      }
    }
    if (start < 0) return undefined;
    if (length < 16 || length > 128 || length % 16 !== 0) {
      throw new RadiusDecodeError('bad_attribute', 'User-Password length');
    }
    const key = toSecret(secret);
    const plain = Buffer.allocUnsafe(length);
    let previous = this.authenticator;
    for (let block = 0; block < length; block += 16) {
      const pad = md5(key, previous);
      for (let i = 0; i < 16; i++) {
        plain[block + i] = (this.raw[start + block + i] as number) ^ (pad[i] as number);
      }
      previous = this.raw.subarray(start + block, start + block + 16);
    }
    let end = length;
    while (end > 0 && plain[end - 1] === 0) end--;
    const text = plain.toString('utf8', 0, end);
    plain.fill(0);
    return text;
  }

  /** A log-safe summary: code, identifier and attribute names, never values. */
  toJSON(): { code: number; identifier: number; length: number; attributes: string[] } {
    const names: string[] = [];
    for (const attribute of this.attributes()) names.push(attribute.name);
    return { code: this.code, identifier: this.identifier, length: this.raw.length, attributes: names };
  }
}

function readSized(buf: Buffer, offset: number, size: number): number {
  if (size === 1) return buf[offset] as number;
  if (size === 2) return buf.readUInt16BE(offset);
  return buf.readUInt32BE(offset);
}

function vsaIsWellFormed(buf: Buffer, start: number, end: number, typeSize: number, lengthSize: number): boolean {
  if (lengthSize === 0) return end - start > typeSize;
  const header = typeSize + lengthSize;
  let offset = start;
  while (offset < end) {
    if (offset + header > end) return false;
    const length = readSized(buf, offset + typeSize, lengthSize);
    if (length < header || offset + length > end) return false;
    offset += length;
  }
  return offset === end && end > start;
}

/**
 * Decodes and authenticates one datagram, throwing `RadiusDecodeError` with a reason for anything else.
 * Lengths are checked before any slicing (RFC 2865 §3, §5); the Request Authenticator of Accounting-, Disconnect-
 * and CoA-Requests (RFC 2866 §3, RFC 5176 §2.3) and the Response Authenticator are checked before the attributes
 * are walked; Message-Authenticator (RFC 3579 §3.2, RFC 5176 §3.4) is compared as bytes in constant time.
 */
export function decodePacket(buf: Buffer, options: DecodeOptions): RadiusPacket {
  if (buf.length < HEADER_LENGTH) throw new RadiusDecodeError('too_short');
  const code = buf[0] as number;
  const length = buf.readUInt16BE(2);
  if (length > MAX_PACKET_LENGTH) throw new RadiusDecodeError('oversize');
  if (length < HEADER_LENGTH || length > buf.length) throw new RadiusDecodeError('bad_length');
  const kind = KINDS.get(code);
  if (kind === undefined) throw new RadiusDecodeError('unknown_code');
  const request = options.request;
  if ((kind === 'response') !== (request !== undefined)) throw new RadiusDecodeError('unexpected_code');
  const secret = toSecret(options.secret);
  const packet = buf.length === length ? buf : buf.subarray(0, length);
  const authenticator = packet.subarray(4, HEADER_LENGTH);

  if (kind === 'signed-request' || kind === 'response') {
    const expected = packetAuthenticatorOf(packet, secret, request?.authenticator ?? ZERO16);
    if (!timingSafeEqual(expected, authenticator)) throw new RadiusDecodeError('bad_authenticator');
  }

  const offsets: number[] = [];
  let maOffset = -1;
  let hasEap = false;
  let offset = HEADER_LENGTH;
  while (offset < length) {
    if (offset + 2 > length) throw new RadiusDecodeError('bad_attribute', 'truncated attribute header');
    const type = packet[offset] as number;
    const attributeLength = packet[offset + 1] as number;
    if (attributeLength < 2 || offset + attributeLength > length) {
      throw new RadiusDecodeError('bad_attribute', 'attribute length');
    }
    if (type === 0) throw new RadiusDecodeError('bad_attribute', 'attribute type 0');
    if (type === MESSAGE_AUTHENTICATOR) {
      if (attributeLength !== 18 || maOffset >= 0) throw new RadiusDecodeError('bad_message_authenticator');
      maOffset = offset;
    } else if (type === EAP_MESSAGE) {
      hasEap = true;
    }
    offsets.push(offset);
    offset += attributeLength;
  }

  if (maOffset < 0) {
    const required =
      kind === 'status' ||
      hasEap ||
      (options.requireMessageAuthenticator === true &&
        (kind === 'access-request' || (kind === 'response' && ACCESS_RESPONSES.has(code))));
    if (required) throw new RadiusDecodeError('missing_message_authenticator');
  } else {
    const field =
      kind === 'response' && request !== undefined
        ? replyMessageAuthenticatorField(code, request.code, request.authenticator)
        : kind === 'signed-request'
          ? ZERO16
          : authenticator;
    const expected = messageAuthenticatorOf(packet, maOffset, secret, field);
    if (!timingSafeEqual(expected, packet.subarray(maOffset + 2, maOffset + 18))) {
      throw new RadiusDecodeError('bad_message_authenticator');
    }
  }

  return new RadiusPacket(packet, offsets, maOffset >= 0, options.dictionary);
}

/**
 * Checks a CHAP-Password against a cleartext password in constant time: MD5(CHAP-Ident + password + challenge),
 * the challenge being CHAP-Challenge or else the Request Authenticator (RFC 2865 §2.2, §5.3, RFC 1994 §4.1).
 */
export function verifyChapPassword(request: RadiusPacket, password: Buffer | string): boolean {
  const chap = request.getRaw('CHAP-Password');
  if (chap === undefined || chap.length !== 17) return false;
  const challenge = request.getRaw('CHAP-Challenge') ?? request.authenticator;
  const expected = chapPasswordOf(chap[0] as number, password, challenge);
  return timingSafeEqual(expected, chap);
}

/**
 * The 17-octet CHAP-Password value (ident, then MD5(ident + password + challenge)) a NAS would send.
 * For our test client and load generator (RFC 2865 §5.3).
 */
export function chapPasswordOf(ident: number, password: Buffer | string, challenge: Buffer): Buffer {
  const secret = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  const identByte = Buffer.from([ident & 0xff]);
  return Buffer.concat([identByte, md5(identByte, secret, challenge)]);
}

const scratch = Buffer.allocUnsafe(MAX_PACKET_LENGTH);

function entriesOf(attributes: AttributeList): Iterable<readonly [string, AttributeInput]> {
  if (Array.isArray(attributes)) return attributes as readonly (readonly [string, AttributeInput])[];
  const entries: [string, AttributeInput][] = [];
  for (const [name, value] of Object.entries(attributes as Record<string, AttributeInput | readonly AttributeInput[] | undefined>)) {
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const item of value as readonly AttributeInput[]) entries.push([name, item]);
    else entries.push([name, value as AttributeInput]);
  }
  return entries;
}

function ensureRoom(position: number, needed: number): void {
  if (position + needed > MAX_PACKET_LENGTH) throw new RangeError('RADIUS packet would exceed 4096 octets');
}

function writeStandard(position: number, code: number, value: Buffer): number {
  ensureRoom(position, value.length + 2);
  scratch[position] = code;
  scratch[position + 1] = value.length + 2;
  value.copy(scratch, position + 2);
  return position + value.length + 2;
}

/** Splits a value over several attributes of at most 253 octets, never inside a UTF-8 sequence when `text`. */
function writeSplit(position: number, code: number, value: Buffer, text: boolean): number {
  let start = 0;
  do {
    let end = Math.min(start + 253, value.length);
    if (text && end < value.length) {
      while (end > start && ((value[end] as number) & 0xc0) === 0x80) end--;
    }
    position = writeStandard(position, code, value.subarray(start, end));
    start = end;
  } while (start < value.length);
  return position;
}

function encryptUserPassword(password: Buffer, secret: Buffer, authenticator: Buffer): Buffer {
  const length = Math.max(16, Math.ceil(password.length / 16) * 16);
  if (length > 128) throw new RangeError('User-Password longer than 128 octets');
  const out = Buffer.alloc(length);
  password.copy(out);
  let previous = authenticator;
  for (let block = 0; block < length; block += 16) {
    const pad = md5(secret, previous);
    for (let i = 0; i < 16; i++) out[block + i] = (out[block + i] as number) ^ (pad[i] as number);
    previous = out.subarray(block, block + 16);
  }
  return out;
}

function writeAttributes(
  position: number,
  dictionary: Dictionary,
  attributes: AttributeList,
  encrypt: ((value: Buffer) => Buffer) | undefined,
): number {
  for (const [name, input] of entriesOf(attributes)) {
    const definition = dictionary.attribute(name);
    if (definition === undefined) throw new TypeError(`unknown RADIUS attribute ${name}`);
    if (definition.vendorId === 0 && definition.code === MESSAGE_AUTHENTICATOR) {
      throw new TypeError('Message-Authenticator is added by the encoder');
    }
    let value = encodeValue(definition, input);
    if (definition.encrypt === 1) {
      if (encrypt === undefined) throw new TypeError(`${definition.name} can only be sent in an Access-Request`);
      value = encrypt(value);
    } else if (definition.encrypt !== 0) {
      throw new TypeError(`${definition.name}: encryption type ${definition.encrypt} is not supported`);
    }
    if (definition.hasTag && definition.type === 'integer') {
      if (value[0] !== 0) throw new RangeError(`${definition.name} value out of range for a tagged integer`);
    }
    if (definition.vendorId === 0) {
      if (value.length <= 253) {
        position = writeStandard(position, definition.code, value);
      } else if (definition.code === REPLY_MESSAGE || definition.code === EAP_MESSAGE) {
        position = writeSplit(position, definition.code, value, definition.code === REPLY_MESSAGE);
      } else {
        throw new RangeError(`${definition.name} value longer than 253 octets`);
      }
      continue;
    }
    const vendor = dictionary.vendor(definition.vendorId);
    if (vendor === undefined) throw new TypeError(`${definition.name}: unknown vendor ${definition.vendorId}`);
    const header = vendor.typeSize + vendor.lengthSize;
    const total = 6 + header + value.length;
    if (total > 255) throw new RangeError(`${definition.name} value too long for a Vendor-Specific attribute`);
    ensureRoom(position, total);
    scratch[position] = VENDOR_SPECIFIC;
    scratch[position + 1] = total;
    scratch.writeUInt32BE(definition.vendorId, position + 2);
    let sub = position + 6;
    if (vendor.typeSize === 1) scratch[sub] = definition.code;
    else if (vendor.typeSize === 2) scratch.writeUInt16BE(definition.code, sub);
    else scratch.writeUInt32BE(definition.code, sub);
    sub += vendor.typeSize;
    if (vendor.lengthSize === 1) scratch[sub] = header + value.length;
    else if (vendor.lengthSize === 2) scratch.writeUInt16BE(header + value.length, sub);
    sub += vendor.lengthSize;
    value.copy(scratch, sub);
    position += total;
  }
  return position;
}

function writeMessageAuthenticatorPlaceholder(position: number): number {
  scratch[position] = MESSAGE_AUTHENTICATOR;
  scratch[position + 1] = 18;
  ZERO16.copy(scratch, position + 2);
  return position + 18;
}

/**
 * Encodes the reply to `request`, taking its identifier and Request Authenticator so they cannot mismatch.
 * Message-Authenticator is the first attribute of every reply (BlastRADIUS guidance), computed with the Request
 * Authenticator in the header (RFC 3579 §3.2, RFC 5176 §3.4); then the Response Authenticator (RFC 2865 §3).
 */
export function encodeResponse(
  request: RadiusPacket,
  code: ResponseCode,
  attributes: AttributeList,
  secret: Buffer | string,
  options: ResponseOptions = {},
): Buffer {
  const allowed = RESPONSES_TO.get(request.code);
  if (allowed === undefined || !allowed.includes(code)) {
    throw new TypeError(`code ${code} is not a reply to code ${request.code}`);
  }
  const key = toSecret(secret);
  const withMa = options.messageAuthenticator !== false;
  let position = withMa ? writeMessageAuthenticatorPlaceholder(HEADER_LENGTH) : HEADER_LENGTH;
  position = writeAttributes(position, request.dictionary, attributes, undefined);
  if (options.copyProxyState !== false) {
    for (const state of request.proxyStates()) position = writeStandard(position, PROXY_STATE, state);
  }
  scratch[0] = code;
  scratch[1] = request.identifier;
  scratch.writeUInt16BE(position, 2);
  request.authenticator.copy(scratch, 4);
  const packet = scratch.subarray(0, position);
  if (withMa) {
    replyMessageAuthenticatorField(code, request.code, request.authenticator).copy(scratch, 4);
    hmacOf(key).update(packet).digestInto(scratch, HEADER_LENGTH + 2);
    request.authenticator.copy(scratch, 4);
  }
  hasher.reset().update(packet).update(key).digestInto(scratch, 4);
  return Buffer.from(packet);
}

/**
 * Encodes a request as a NAS or our Disconnect client sends it. Access-Request and Status-Server carry a random
 * Request Authenticator, Message-Authenticator first and User-Password hidden (RFC 2865 §5.2, RFC 5997 §3);
 * Accounting-, Disconnect- and CoA-Requests carry MD5 Request Authenticators, with any Message-Authenticator
 * computed over a zeroed authenticator field first (RFC 2866 §3, RFC 5176 §3.4).
 */
export function encodeRequest(options: RequestOptions): Buffer {
  const { code, identifier, attributes, dictionary } = options;
  const kind = KINDS.get(code);
  if (kind === undefined || kind === 'response') throw new TypeError(`code ${code} is not a request`);
  if (!Number.isInteger(identifier) || identifier < 0 || identifier > 255) throw new RangeError('identifier out of range');
  const key = toSecret(options.secret);
  const randomAuthenticator = kind === 'access-request' || kind === 'status';
  if (!randomAuthenticator && options.authenticator !== undefined) {
    throw new TypeError('the Request Authenticator of this code is computed, not chosen');
  }
  const authenticator = randomAuthenticator ? (options.authenticator ?? randomBytes(16)) : ZERO16;
  if (authenticator.length !== 16) throw new RangeError('authenticator must be 16 octets');
  const withMa = kind === 'status' || (options.messageAuthenticator ?? code !== PacketCode.AccountingRequest);

  let position = HEADER_LENGTH;
  if (withMa) position = writeMessageAuthenticatorPlaceholder(position);
  const encrypt =
    kind === 'access-request' ? (value: Buffer) => encryptUserPassword(value, key, authenticator) : undefined;
  position = writeAttributes(position, dictionary, attributes, encrypt);
  scratch[0] = code;
  scratch[1] = identifier;
  scratch.writeUInt16BE(position, 2);
  authenticator.copy(scratch, 4);
  const packet = scratch.subarray(0, position);
  if (withMa) hmacOf(key).update(packet).digestInto(scratch, HEADER_LENGTH + 2);
  if (!randomAuthenticator) hasher.reset().update(packet).update(key).digestInto(scratch, 4);
  return Buffer.from(packet);
}

/**
 * Decodes a reply on the client side and checks it answers `request`: same identifier, a code allowed for the
 * request, a valid Response Authenticator and Message-Authenticator (RFC 2865 §3, RFC 3579 §3.2, RFC 5176 §3.4).
 */
export function verifyResponse(
  response: Buffer,
  request: Buffer,
  options: Omit<DecodeOptions, 'request'>,
): RadiusPacket {
  if (request.length < HEADER_LENGTH) throw new TypeError('request is not a RADIUS packet');
  if (response.length < HEADER_LENGTH) throw new RadiusDecodeError('too_short');
  if (response[1] !== request[1]) throw new RadiusDecodeError('identifier_mismatch');
  const allowed = RESPONSES_TO.get(request[0] as number);
  if (allowed === undefined) throw new TypeError('request is not a RADIUS request');
  if (!allowed.includes(response[0] as number)) {
    throw new RadiusDecodeError(KINDS.has(response[0] as number) ? 'unexpected_code' : 'unknown_code');
  }
  return decodePacket(response, {
    ...options,
    request: { code: request[0] as number, authenticator: request.subarray(4, HEADER_LENGTH) },
  });
}

/** Whether a datagram's code is one a client sends (for routing before decoding). */
export function isRequestCode(code: number): code is RequestCode {
  const kind = KINDS.get(code);
  return kind !== undefined && kind !== 'response';
}

/** Constant for callers that must size receive buffers: the largest RADIUS packet (RFC 2865 §3). */
export const MAX_RADIUS_PACKET_LENGTH = MAX_PACKET_LENGTH;
