import type { AttributeDefinition, AttributeType } from './dictionary.ts';

/**
 * A decoded attribute value: text for string and address types, a number for 32-bit integers and dates
 * (Unix seconds), a bigint for integer64, and a Buffer for octets and anything not decodable as its type.
 */
export type AttributeValue = string | number | bigint | Buffer;

/**
 * A value accepted by the encoder: the decoded forms, a VALUE name for enumerated integers
 * (`['Service-Type', 'Framed-User']`), or a Date for date attributes.
 */
export type AttributeInput = AttributeValue | Date;

/** Acct-Status-Type values (RFC 2866 §5.1, RFC 2867 §4.1). */
export const AcctStatusType = {
  Start: 1,
  Stop: 2,
  InterimUpdate: 3,
  AccountingOn: 7,
  AccountingOff: 8,
  Failed: 15,
} as const;

/** Acct-Terminate-Cause values (RFC 2866 §5.10). */
export const AcctTerminateCause = {
  UserRequest: 1,
  LostCarrier: 2,
  LostService: 3,
  IdleTimeout: 4,
  SessionTimeout: 5,
  AdminReset: 6,
  AdminReboot: 7,
  PortError: 8,
  NasError: 9,
  NasRequest: 10,
  NasReboot: 11,
  PortUnneeded: 12,
  PortPreempted: 13,
  PortSuspended: 14,
  ServiceUnavailable: 15,
  Callback: 16,
  UserError: 17,
  HostRequest: 18,
} as const;

/** Error-Cause values carried by Disconnect-NAK and CoA-NAK (RFC 5176 §3.5). */
export const ErrorCause = {
  ResidualSessionContextRemoved: 201,
  InvalidEapPacket: 202,
  UnsupportedAttribute: 401,
  MissingAttribute: 402,
  NasIdentificationMismatch: 403,
  InvalidRequest: 404,
  UnsupportedService: 405,
  UnsupportedExtension: 406,
  InvalidAttributeValue: 407,
  AdministrativelyProhibited: 501,
  RequestNotRoutable: 502,
  SessionContextNotFound: 503,
  SessionContextNotRemovable: 504,
  OtherProxyProcessingError: 505,
  ResourcesUnavailable: 506,
  RequestInitiated: 507,
  MultipleSessionSelectionUnsupported: 508,
} as const;

/** Service-Type values (RFC 2865 §5.6, RFC 5176 §3.6 Authorize-Only). */
export const ServiceType = {
  LoginUser: 1,
  FramedUser: 2,
  CallbackLoginUser: 3,
  CallbackFramedUser: 4,
  OutboundUser: 5,
  AdministrativeUser: 6,
  NasPromptUser: 7,
  AuthenticateOnly: 8,
  CallbackNasPrompt: 9,
  CallCheck: 10,
  CallbackAdministrative: 11,
  AuthorizeOnly: 17,
} as const;

function formatIPv4(buf: Buffer, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

/** RFC 5952 text of the 16-octet IPv6 address at `offset` (longest zero run as `::`, lower-case hex). */
export function formatIPv6(bytes: Buffer, offset: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(bytes.readUInt16BE(offset + i * 2));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  const head = hex.slice(0, bestStart).join(':');
  const tail = hex.slice(bestStart + bestLength).join(':');
  return `${head}::${tail}`;
}

function parseIPv4(text: string): Buffer | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i] ?? '';
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIPv6(text: string): Buffer | undefined {
  let source = text;
  let tailV4: Buffer | undefined;
  const lastColon = source.lastIndexOf(':');
  if (source.includes('.') && lastColon >= 0) {
    tailV4 = parseIPv4(source.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    source = `${source.slice(0, lastColon + 1)}0:0`;
  }
  const halves = source.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const groups: number[] = [];
    for (const group of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(group)) return undefined;
      groups.push(Number.parseInt(group, 16));
    }
    return groups;
  };
  const head = parseGroups(halves[0] ?? '');
  const tail = halves.length === 2 ? parseGroups(halves[1] ?? '') : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  if (tailV4 !== undefined) tailV4.copy(out, 12);
  return out;
}

/**
 * Decodes `length` octets at `offset` as `type`, or returns undefined when they do not fit the type.
 * Like FreeRADIUS, a value of the wrong size is not a reason to drop the packet: callers fall back to raw octets.
 */
export function decodeValue(
  type: AttributeType,
  buf: Buffer,
  offset: number,
  length: number,
): AttributeValue | undefined {
  switch (type) {
    case 'string':
      return buf.toString('utf8', offset, offset + length);
    case 'integer':
    case 'date':
      return length === 4 ? buf.readUInt32BE(offset) : undefined;
    case 'signed':
      return length === 4 ? buf.readInt32BE(offset) : undefined;
    case 'short':
      return length === 2 ? buf.readUInt16BE(offset) : undefined;
    case 'byte':
      return length === 1 ? buf[offset] : undefined;
    case 'integer64':
      return length === 8 ? buf.readBigUInt64BE(offset) : undefined;
    case 'ipaddr':
      return length === 4 ? formatIPv4(buf, offset) : undefined;
    case 'ipv6addr':
      return length === 16 ? formatIPv6(buf, offset) : undefined;
    case 'combo-ip':
      return length === 4 ? formatIPv4(buf, offset) : length === 16 ? formatIPv6(buf, offset) : undefined;
    case 'ipv6prefix': {
      if (length < 2 || length > 18) return undefined;
      const prefixLength = buf[offset + 1] ?? 255;
      if (prefixLength > 128 || Math.ceil(prefixLength / 8) > length - 2) return undefined;
      const address = Buffer.alloc(16);
      buf.copy(address, 0, offset + 2, offset + length);
      return `${formatIPv6(address, 0)}/${prefixLength}`;
    }
    case 'ifid': {
      if (length !== 8) return undefined;
      const hex = buf.toString('hex', offset, offset + 8);
      return `${hex.slice(0, 4)}:${hex.slice(4, 8)}:${hex.slice(8, 12)}:${hex.slice(12, 16)}`;
    }
    case 'ether': {
      if (length !== 6) return undefined;
      return buf.toString('hex', offset, offset + 6).replace(/(..)(?!$)/g, '$1:');
    }
    case 'octets':
    case 'vsa':
      return buf.subarray(offset, offset + length);
  }
}

function resolveInteger(definition: AttributeDefinition, value: AttributeInput): number {
  if (typeof value === 'string') {
    const named = definition.valuesByName.get(value);
    if (named === undefined) throw new TypeError(`${definition.name} has no value named "${value}"`);
    return named;
  }
  if (typeof value === 'bigint') return Number(value);
  if (typeof value !== 'number') throw new TypeError(`${definition.name} takes a number`);
  return value;
}

function requireRange(definition: AttributeDefinition, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${definition.name} value out of range`);
  }
  return value;
}

/**
 * Encodes one value of `definition` to its wire octets (without type/length header and without encryption).
 * Throws TypeError/RangeError for values that do not fit: those are programming errors, not peer input.
 */
export function encodeValue(definition: AttributeDefinition, value: AttributeInput): Buffer {
  const fail = (): never => {
    throw new TypeError(`${definition.name}: value does not fit type ${definition.type}`);
  };
  if (Buffer.isBuffer(value)) {
    const fixedSize = definition.type !== 'string' && definition.type !== 'octets' && definition.type !== 'vsa';
    return fixedSize && decodeValue(definition.type, value, 0, value.length) === undefined ? fail() : value;
  }
  switch (definition.type) {
    case 'string':
    case 'octets':
    case 'vsa':
      return typeof value === 'string' ? Buffer.from(value, 'utf8') : fail();
    case 'integer': {
      const out = Buffer.allocUnsafe(4);
      out.writeUInt32BE(requireRange(definition, resolveInteger(definition, value), 0xffffffff));
      return out;
    }
    case 'date': {
      const seconds = value instanceof Date ? Math.floor(value.getTime() / 1000) : resolveInteger(definition, value);
      const out = Buffer.allocUnsafe(4);
      out.writeUInt32BE(requireRange(definition, seconds, 0xffffffff));
      return out;
    }
    case 'signed': {
      const n = resolveInteger(definition, value);
      if (!Number.isInteger(n) || n < -0x80000000 || n > 0x7fffffff) throw new RangeError(`${definition.name} out of range`);
      const out = Buffer.allocUnsafe(4);
      out.writeInt32BE(n);
      return out;
    }
    case 'short': {
      const out = Buffer.allocUnsafe(2);
      out.writeUInt16BE(requireRange(definition, resolveInteger(definition, value), 0xffff));
      return out;
    }
    case 'byte':
      return Buffer.from([requireRange(definition, resolveInteger(definition, value), 0xff)]);
    case 'integer64': {
      const n = typeof value === 'bigint' ? value : typeof value === 'number' && Number.isSafeInteger(value) ? BigInt(value) : fail();
      if (n < 0n || n > 0xffffffffffffffffn) throw new RangeError(`${definition.name} out of range`);
      const out = Buffer.allocUnsafe(8);
      out.writeBigUInt64BE(n);
      return out;
    }
    case 'ipaddr':
      return (typeof value === 'string' ? parseIPv4(value) : undefined) ?? fail();
    case 'ipv6addr':
      return (typeof value === 'string' ? parseIPv6(value) : undefined) ?? fail();
    case 'combo-ip':
      return (typeof value === 'string' ? (parseIPv4(value) ?? parseIPv6(value)) : undefined) ?? fail();
    case 'ipv6prefix': {
      if (typeof value !== 'string') return fail();
      const slash = value.indexOf('/');
      const address = slash > 0 ? parseIPv6(value.slice(0, slash)) : undefined;
      const bits = slash > 0 && /^[0-9]{1,3}$/.test(value.slice(slash + 1)) ? Number(value.slice(slash + 1)) : 129;
      if (address === undefined || bits > 128) return fail();
      const bytes = Math.ceil(bits / 8);
      const out = Buffer.alloc(2 + bytes);
      out[1] = bits;
      address.copy(out, 2, 0, bytes);
      return out;
    }
    case 'ifid': {
      const hex = typeof value === 'string' ? value.replace(/:/g, '') : '';
      return /^[0-9a-fA-F]{16}$/.test(hex) ? Buffer.from(hex, 'hex') : fail();
    }
    case 'ether': {
      const hex = typeof value === 'string' ? value.replace(/[:-]/g, '') : '';
      return /^[0-9a-fA-F]{12}$/.test(hex) ? Buffer.from(hex, 'hex') : fail();
    }
  }
}
