import { describe, expect, it } from 'vitest';
import { decodeValue, encodeValue } from '../../../src/radius/attributes.ts';
import type { AttributeDefinition, AttributeType } from '../../../src/radius/dictionary.ts';

function definition(type: AttributeType): AttributeDefinition {
  return {
    name: `Test-${type}`,
    vendorId: 0,
    code: 200,
    type,
    encrypt: 0,
    hasTag: false,
    valuesByName: new Map([['Named', 9]]),
    namesByValue: new Map([[9, 'Named']]),
  };
}

function roundTrip(type: AttributeType, value: string | number | bigint): unknown {
  const bytes = encodeValue(definition(type), value);
  return decodeValue(type, bytes, 0, bytes.length);
}

describe('attribute value codecs', () => {
  it.each<[AttributeType, string | number | bigint, string]>([
    ['string', '学号 2023', 'e5ada6e58fb72032303233'],
    ['integer', 4_294_967_295, 'ffffffff'],
    ['integer', 'Named', '00000009'],
    ['signed', -2, 'fffffffe'],
    ['short', 513, '0201'],
    ['byte', 7, '07'],
    ['date', 1_700_000_000, '6553f100'],
    ['integer64', 2n ** 63n, '8000000000000000'],
    ['ipaddr', '192.168.1.16', 'c0a80110'],
    ['ipv6addr', '2001:db8::1', '20010db8000000000000000000000001'],
    ['ipv6addr', '::ffff:10.0.0.1', '00000000000000000000ffff0a000001'],
    ['ipv6prefix', '2001:db8::/32', '002020010db8'],
    ['ipv6prefix', '::/0', '0000'],
    ['ifid', '0011:2233:4455:6677', '0011223344556677'],
    ['ether', 'aa:bb:cc:dd:ee:ff', 'aabbccddeeff'],
    ['combo-ip', '10.0.0.1', '0a000001'],
  ])('encodes %s %s as %s', (type, value, hex) => {
    expect(encodeValue(definition(type), value).toString('hex')).toBe(hex);
  });

  it.each<[AttributeType, string | number | bigint, unknown]>([
    ['ipv6addr', '2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'],
    ['ipv6addr', '::', '::'],
    ['ipv6addr', '1::', '1::'],
    ['ipv6addr', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['ipv6prefix', '2001:db8:1::/48', '2001:db8:1::/48'],
    ['integer', 'Named', 9],
    ['date', 0, 0],
  ])('decodes %s %s back as %s (RFC 5952 text for IPv6)', (type, value, expected) => {
    expect(roundTrip(type, value)).toBe(expected);
  });

  it('takes a Date for a date attribute', () => {
    expect(encodeValue(definition('date'), new Date('2023-11-14T22:13:20Z')).toString('hex')).toBe('6553f100');
  });

  it.each<[AttributeType, string | number | bigint]>([
    ['integer', -1],
    ['integer', 2 ** 32],
    ['integer', 1.5],
    ['integer', 'Unnamed'],
    ['short', 65_536],
    ['byte', 256],
    ['ipaddr', '256.0.0.1'],
    ['ipaddr', '10.0.0'],
    ['ipaddr', '2001:db8::1'],
    ['ipv6addr', '2001:db8:::1'],
    ['ipv6addr', '1:2:3:4:5:6:7:8:9'],
    ['ipv6prefix', '2001:db8::/129'],
    ['ipv6prefix', '2001:db8::'],
    ['ifid', '0011:2233'],
    ['ether', 'aa:bb:cc'],
    ['integer64', -1n],
    ['integer64', 1.5],
  ])('refuses to encode %s %s', (type, value) => {
    expect(() => encodeValue(definition(type), value)).toThrow();
  });

  it.each<[AttributeType, string]>([
    ['integer', '010203'],
    ['date', '0102030405'],
    ['ipaddr', '0a0000'],
    ['ipv6addr', '00'],
    ['ipv6prefix', '00'],
    ['ipv6prefix', '0081' + '00'.repeat(16)],
    ['ipv6prefix', '0040' + '00'.repeat(4)],
    ['ifid', '0011'],
    ['integer64', '01020304'],
  ])('decodes a malformed %s value (%s) as undefined so the caller keeps raw octets', (type, hex) => {
    const bytes = Buffer.from(hex, 'hex');
    expect(decodeValue(type, bytes, 0, bytes.length)).toBeUndefined();
  });

  it('checks the size of raw octets given for a fixed-size type', () => {
    expect(() => encodeValue(definition('integer'), Buffer.alloc(3))).toThrow(TypeError);
    expect(encodeValue(definition('integer'), Buffer.alloc(4)).length).toBe(4);
  });
});
