import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildDictionary, defaultDictionaryDirectories, loadDictionary } from '../../../src/radius/dictionary.ts';
import { AcctStatusType, AcctTerminateCause, ErrorCause, ServiceType } from '../../../src/radius/attributes.ts';
import { DictionaryError } from '../../../src/radius/errors.ts';
import { KNOWN_ATTRIBUTES } from '../../../src/radius/packet.ts';

describe('the default dictionary', () => {
  const dictionary = loadDictionary();

  it('reads the radius package RFC files and our vendor files', () => {
    const [rfc, ours] = defaultDictionaryDirectories();
    expect(readdirSync(rfc as string)).toContain('dictionary.rfc2865');
    expect(readdirSync(ours as string).sort()).toEqual(['dictionary.h3c', 'dictionary.huawei', 'dictionary.rfc6911']);
  });

  it.each<[string, number, number, string]>([
    ['User-Name', 0, 1, 'string'],
    ['User-Password', 0, 2, 'string'],
    ['Vendor-Specific', 0, 26, 'vsa'],
    ['Acct-Status-Type', 0, 40, 'integer'],
    ['Acct-Input-Gigawords', 0, 52, 'integer'],
    ['Event-Timestamp', 0, 55, 'date'],
    ['Message-Authenticator', 0, 80, 'octets'],
    ['Acct-Interim-Interval', 0, 85, 'integer'],
    ['NAS-Port-Id', 0, 87, 'string'],
    ['Chargeable-User-Identity', 0, 89, 'string'],
    ['Framed-IPv6-Prefix', 0, 97, 'ipv6prefix'],
    ['Error-Cause', 0, 101, 'integer'],
    ['Delegated-IPv6-Prefix', 0, 123, 'ipv6prefix'],
    ['Framed-IPv6-Address', 0, 168, 'ipv6addr'],
    ['Huawei-Input-Average-Rate', 2011, 2, 'integer'],
    ['Huawei-Output-Average-Rate', 2011, 5, 'integer'],
    ['Huawei-Domain-Name', 2011, 138, 'string'],
    ['Huawei-Framed-IPv6-Address', 2011, 158, 'ipv6addr'],
    ['H3C-Input-Average-Rate', 25506, 2, 'integer'],
    ['H3C-Output-Average-Rate', 25506, 5, 'integer'],
    ['H3C-NAS-Startup-Timestamp', 25506, 59, 'date'],
    ['H3C-User-Group', 25506, 140, 'string'],
  ])('defines %s as vendor %i attribute %i of type %s', (name, vendorId, code, type) => {
    expect(dictionary.attribute(name)).toMatchObject({ name, vendorId, code, type });
  });

  it('knows the named values the server uses, including RFC 5176 Error-Cause and RFC 3576 Service-Type', () => {
    expect(dictionary.attribute('Acct-Status-Type')?.valuesByName.get('Interim-Update')).toBe(3);
    expect(dictionary.attribute('Acct-Status-Type')?.valuesByName.get('Accounting-On')).toBe(7);
    expect(dictionary.attribute('Error-Cause')?.valuesByName.get('Session-Context-Not-Found')).toBe(503);
    expect(dictionary.attribute('Error-Cause')?.valuesByName.get('Invalid-Attribute-Value')).toBe(407);
    expect(dictionary.attribute('Service-Type')?.valuesByName.get('Authorize-Only')).toBe(17);
    expect(dictionary.attribute('Huawei-Auth-Type')?.namesByValue.get(3)).toBe('Dot1x');
  });

  it('marks User-Password as hidden and Tunnel attributes as tagged', () => {
    expect(dictionary.attribute('User-Password')?.encrypt).toBe(1);
    expect(dictionary.attribute('Tunnel-Private-Group-Id')?.hasTag).toBe(true);
  });

  it('agrees with the value kinds promised by KNOWN_ATTRIBUTES', () => {
    const kindOf = (type: string): string =>
      ['integer', 'date', 'short', 'byte', 'signed'].includes(type) ? 'number' : ['octets', 'vsa'].includes(type) ? 'octets' : 'text';
    for (const [name, kind] of Object.entries(KNOWN_ATTRIBUTES)) {
      const definition = dictionary.attribute(name);
      expect(definition, name).toBeDefined();
      expect(`${name}: ${kindOf(definition?.type ?? '')}`).toBe(`${name}: ${kind}`);
    }
  });

  it.each([
    ['Acct-Status-Type', AcctStatusType],
    ['Acct-Terminate-Cause', AcctTerminateCause],
    ['Error-Cause', ErrorCause],
    ['Service-Type', ServiceType],
  ] as const)('has a VALUE for every %s constant', (attribute, constants) => {
    const named = new Set(dictionary.attribute(attribute)?.valuesByName.values());
    expect(Object.values(constants).filter((value) => !named.has(value))).toEqual([]);
  });

  it('declares Huawei (2011) and H3C (25506) with one-octet type and length', () => {
    expect(dictionary.vendor('Huawei')).toEqual({ name: 'Huawei', id: 2011, typeSize: 1, lengthSize: 1 });
    expect(dictionary.vendor(25506)).toEqual({ name: 'H3C', id: 25506, typeSize: 1, lengthSize: 1 });
    expect(dictionary.vendorAttribute(2011, 138)?.name).toBe('Huawei-Domain-Name');
  });
});

describe('buildDictionary', () => {
  const build = (text: string) => buildDictionary([{ name: 'test.dict', text }]);

  it('resolves a VALUE written before its ATTRIBUTE, and ignores comments', () => {
    const dictionary = build('VALUE Color Red 1  # first\nATTRIBUTE Color 200 integer\n');
    expect(dictionary.attribute('color')?.valuesByName.get('Red')).toBe(1);
  });

  it('accepts the old syntax naming the vendor after the type', () => {
    const dictionary = build('VENDOR Acme 4242\nATTRIBUTE Acme-Rate 7 integer Acme\n');
    expect(dictionary.attribute('Acme-Rate')).toMatchObject({ vendorId: 4242, code: 7 });
  });

  it('accepts a definition repeated identically across files', () => {
    const text = 'ATTRIBUTE Foo 200 string\n';
    expect(buildDictionary([{ name: 'a', text }, { name: 'b', text }]).attribute('Foo')?.code).toBe(200);
  });

  it.each<[string, string, RegExp]>([
    ['a name redefined with another code', 'ATTRIBUTE Foo 200 string\nATTRIBUTE Foo 201 string', /test\.dict:2: attribute Foo redefined/],
    ['a code reused by another name', 'ATTRIBUTE Foo 200 string\nATTRIBUTE Bar 200 string', /test\.dict:2: .*reuses the code of Foo/],
    ['an unknown type', 'ATTRIBUTE Foo 200 struct', /test\.dict:1: unsupported type/],
    ['a VALUE for an unknown attribute', 'VALUE Nope X 1', /test\.dict:1: VALUE for unknown attribute Nope/],
    ['BEGIN-VENDOR of an undeclared vendor', 'BEGIN-VENDOR Ghost', /unknown vendor/],
    ['a missing END-VENDOR', 'VENDOR V 1\nBEGIN-VENDOR V\nATTRIBUTE V-A 1 string', /without END-VENDOR/],
    ['an unknown keyword', '$INCLUDE other', /unsupported keyword/],
    ['an attribute code above 255', 'ATTRIBUTE Foo 300 string', /out of range/],
    ['an unsupported vendor format', 'VENDOR V 1 format=3,1', /unsupported vendor option/],
  ])('fails at startup, citing file and line, on %s', (_title, text, message) => {
    expect(() => build(text)).toThrow(DictionaryError);
    expect(() => build(text)).toThrow(message);
  });
});
