import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadDictionary } from '../../../src/radius/dictionary.ts';
import { RadiusDecodeError } from '../../../src/radius/errors.ts';
import {
  PacketCode,
  decodePacket,
  encodeRequest,
  encodeResponse,
  isRequestCode,
  verifyChapPassword,
  type RadiusPacket,
  type ResponseCode,
} from '../../../src/radius/packet.ts';

const dictionary = loadDictionary();
const secret = 'fuzz-secret';
const CODES = [1, 2, 3, 4, 5, 11, 12, 13, 40, 41, 42, 43, 44, 45];
const SIGNED = new Set([4, 40, 43]);
const REPLY_FOR: Record<number, ResponseCode> = { 1: 2, 4: 5, 12: 2, 13: 5, 40: 41, 43: 44 };
const PROBED = [
  'User-Name',
  'User-Password',
  'CHAP-Password',
  'NAS-IP-Address',
  'NAS-Port',
  'Framed-IPv6-Prefix',
  'Framed-Interface-Id',
  'Delegated-IPv6-Prefix',
  'Event-Timestamp',
  'Tunnel-Type',
  'Tunnel-Private-Group-Id',
  'Huawei-Domain-Name',
  'Huawei-Input-Average-Rate',
  'H3C-NAS-Startup-Timestamp',
  'ADSL-Agent-Circuit-Id',
];

/** Uses every read path of a decoded packet; only RadiusDecodeError may escape. */
function exercise(packet: RadiusPacket): void {
  const names = new Set(PROBED);
  for (const attribute of packet.attributes()) {
    if (!/^(Attr|Vendor)-/.test(attribute.name)) names.add(attribute.name);
  }
  for (const name of names) {
    packet.get(name);
    packet.getAll(name);
    packet.getRaw(name);
    packet.has(name);
    packet.getValueName(name);
  }
  packet.proxyStates();
  JSON.stringify(packet);
  verifyChapPassword(packet, 'password');
  packet.userPassword(secret);
  const reply = REPLY_FOR[packet.code];
  if (reply !== undefined && isRequestCode(packet.code)) encodeResponse(packet, reply, [], secret);
}

function decodeOrDecodeError(datagram: Buffer, requireMessageAuthenticator: boolean): void {
  try {
    exercise(decodePacket(datagram, { dictionary, secret, requireMessageAuthenticator }));
  } catch (error) {
    if (!(error instanceof RadiusDecodeError)) throw error;
  }
}

/** Gives a datagram a valid RFC 2866 Request Authenticator when its code is signed, so decoding goes deep. */
function sign(datagram: Buffer): Buffer {
  if (datagram.length < 20 || !SIGNED.has(datagram[0] as number)) return datagram;
  const length = Math.min(datagram.readUInt16BE(2), datagram.length);
  if (length < 20) return datagram;
  const copy = Buffer.from(datagram);
  copy.fill(0, 4, 20);
  createHash('md5').update(copy.subarray(0, length)).update(secret).digest().copy(copy, 4);
  return copy;
}

const attributeSoup = fc.array(
  fc.record({
    type: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(1, 2, 3, 26, 33, 60, 64, 79, 80, 97, 123)),
    value: fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc.constant(Uint8Array.from([0, 0, 0x07, 0xdb, 138, 4, 0x61, 0x62])),
      fc.constant(Uint8Array.from([0, 0, 0x63, 0xa2, 59, 6, 1, 2, 3, 4])),
      fc.constant(Uint8Array.from([0, 0, 0x07, 0xdb, 2, 1])),
    ),
    lengthDelta: fc.oneof({ arbitrary: fc.constant(0), weight: 20 }, { arbitrary: fc.integer({ min: -3, max: 3 }), weight: 1 }),
  }),
  { maxLength: 25 },
);

const structured = fc
  .record({
    code: fc.oneof(
      { arbitrary: fc.constantFrom(1, 4, 12, 40, 43), weight: 6 },
      { arbitrary: fc.constantFrom(...CODES), weight: 2 },
      { arbitrary: fc.integer({ min: 0, max: 255 }), weight: 1 },
    ),
    identifier: fc.integer({ min: 0, max: 255 }),
    authenticator: fc.uint8Array({ minLength: 16, maxLength: 16 }),
    attributes: attributeSoup,
    headerDelta: fc.oneof({ arbitrary: fc.constant(0), weight: 6 }, { arbitrary: fc.integer({ min: -30, max: 30 }), weight: 1 }),
    trailing: fc.uint8Array({ maxLength: 8 }),
  })
  .map(({ code, identifier, authenticator, attributes, headerDelta, trailing }) => {
    const body = Buffer.concat(
      attributes.map(({ type, value, lengthDelta }) =>
        Buffer.concat([Buffer.from([type, Math.max(0, Math.min(255, value.length + 2 + lengthDelta))]), Buffer.from(value)]),
      ),
    );
    const header = Buffer.alloc(20);
    header[0] = code;
    header[1] = identifier;
    header.writeUInt16BE(Math.max(0, Math.min(0xffff, 20 + body.length + headerDelta)), 2);
    Buffer.from(authenticator).copy(header, 4);
    return sign(Buffer.concat([header, body, Buffer.from(trailing)]));
  });

const valid: Buffer[] = [
  encodeRequest({
    code: PacketCode.AccessRequest,
    identifier: 1,
    secret,
    dictionary,
    attributes: [
      ['User-Name', 'alice'],
      ['User-Password', 'password'],
      ['NAS-IP-Address', '10.0.0.1'],
      ['Huawei-Domain-Name', 'campus'],
      ['Proxy-State', Buffer.from('p')],
    ],
  }),
  encodeRequest({
    code: PacketCode.AccountingRequest,
    identifier: 2,
    secret,
    dictionary,
    messageAuthenticator: true,
    attributes: [
      ['Acct-Status-Type', 'Interim-Update'],
      ['Acct-Session-Id', 's1'],
      ['Event-Timestamp', 1_700_000_000],
      ['Framed-IPv6-Prefix', '2001:db8::/32'],
      ['H3C-NAS-Startup-Timestamp', 1_700_000_000],
    ],
  }),
  encodeRequest({ code: PacketCode.StatusServer, identifier: 3, secret, dictionary, attributes: [] }),
  encodeRequest({ code: PacketCode.DisconnectRequest, identifier: 4, secret, dictionary, attributes: [['User-Name', 'bob']] }),
];

const mutated = fc
  .record({
    base: fc.constantFrom(...valid),
    flips: fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 4 }),
    cut: fc.oneof({ arbitrary: fc.constant(undefined), weight: 3 }, { arbitrary: fc.nat(), weight: 1 }),
    resign: fc.boolean(),
  })
  .map(({ base, flips, cut, resign }) => {
    let datagram = Buffer.from(base);
    for (const { at, value } of flips) datagram[at % datagram.length] = value;
    if (cut !== undefined) datagram = datagram.subarray(0, cut % (datagram.length + 1));
    return resign ? sign(datagram) : datagram;
  });

describe('decodePacket under fuzzing', () => {
  it('returns a packet or throws RadiusDecodeError for random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300, size: 'max' }), fc.boolean(), (bytes, requireMa) => {
        decodeOrDecodeError(Buffer.from(bytes), requireMa);
      }),
      { numRuns: 3000 },
    );
  });

  it('returns a packet or throws RadiusDecodeError for well-framed packets with random attributes', () => {
    fc.assert(
      fc.property(structured, fc.boolean(), (datagram, requireMa) => {
        decodeOrDecodeError(datagram, requireMa);
      }),
      { numRuns: 3000 },
    );
  });

  it('returns a packet or throws RadiusDecodeError for mutated valid packets, re-signed or not', () => {
    fc.assert(
      fc.property(mutated, fc.boolean(), (datagram, requireMa) => {
        decodeOrDecodeError(datagram, requireMa);
      }),
      { numRuns: 3000 },
    );
  });

  it('decodes every unmutated valid packet', () => {
    for (const datagram of valid) expect(() => exercise(decodePacket(datagram, { dictionary, secret }))).not.toThrow();
  });
});
