import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AcctTerminateCause, ErrorCause } from '../../../src/radius/attributes.ts';
import { buildDictionary, loadDictionary } from '../../../src/radius/dictionary.ts';
import { RadiusDecodeError, type RadiusDecodeReason } from '../../../src/radius/errors.ts';
import {
  PacketCode,
  chapPasswordOf,
  decodePacket,
  encodeRequest,
  encodeResponse,
  peekHeader,
  verifyChapPassword,
  verifyResponse,
} from '../../../src/radius/packet.ts';

const dictionary = loadDictionary();
const secret = 'campus-secret';

function accessRequest(attributes: Parameters<typeof encodeRequest>[0]['attributes'], identifier = 1): Buffer {
  return encodeRequest({ code: PacketCode.AccessRequest, identifier, secret, dictionary, attributes });
}

function reasonOf(run: () => unknown): RadiusDecodeReason | 'no error' | 'other error' {
  try {
    run();
    return 'no error';
  } catch (error) {
    return error instanceof RadiusDecodeError ? error.reason : 'other error';
  }
}

/** An unsigned Access-Request (no MA) with the given attribute bytes, so framing can be tested alone. */
function raw(attributes: string, code = 1, lengthDelta = 0): Buffer {
  const body = Buffer.from(attributes, 'hex');
  const packet = Buffer.alloc(20 + body.length);
  packet[0] = code;
  packet[1] = 9;
  packet.writeUInt16BE(20 + body.length + lengthDelta, 2);
  body.copy(packet, 20);
  return packet;
}

/** An Accounting-Request with the given attribute bytes and a valid RFC 2866 Request Authenticator. */
function signedAccounting(attributes: string): Buffer {
  const packet = raw(attributes, PacketCode.AccountingRequest);
  createHash('md5').update(packet).update(secret).digest().copy(packet, 4);
  return packet;
}

describe('decodePacket framing checks', () => {
  it.each<[string, Buffer, RadiusDecodeReason]>([
    ['an empty datagram', Buffer.alloc(0), 'too_short'],
    ['19 octets', Buffer.alloc(19, 1), 'too_short'],
    ['a Length field below 20', raw('', 1, -1), 'bad_length'],
    ['a Length field beyond the datagram', raw('0103616263', 1, 1), 'bad_length'],
    ['a Length field above 4096', (() => { const b = raw(''); b.writeUInt16BE(4097, 2); return b; })(), 'oversize'],
    ['code 0', raw('', 0), 'unknown_code'],
    ['code 6 (not a code we serve)', raw('', 6), 'unknown_code'],
    ['code 255', raw('', 255), 'unknown_code'],
    ['an attribute of length 0', raw('0100'), 'bad_attribute'],
    ['an attribute of length 1', raw('0101'), 'bad_attribute'],
    ['an attribute running past Length', raw('0106616263'), 'bad_attribute'],
    ['a lone type octet at the end', raw('010361' + '05'), 'bad_attribute'],
    ['attribute type 0', raw('0003ff'), 'bad_attribute'],
    ['a Message-Authenticator of 15 octets', raw('5011' + '00'.repeat(15)), 'bad_message_authenticator'],
    ['two Message-Authenticators', raw(('5012' + '00'.repeat(16)).repeat(2)), 'bad_message_authenticator'],
    ['a wrong Message-Authenticator', raw('5012' + '00'.repeat(16)), 'bad_message_authenticator'],
    ['EAP-Message without Message-Authenticator (RFC 3579 §3.2)', raw('4f060201000a'), 'missing_message_authenticator'],
    ['a Status-Server without Message-Authenticator (RFC 5997 §3)', raw('', 12), 'missing_message_authenticator'],
    ['an Access-Accept where a request is expected', raw('', 2), 'unexpected_code'],
    ['an unsigned Accounting-Request', raw('2806' + '00000001', 4), 'bad_authenticator'],
    ['an unsigned Disconnect-Request', raw('', 40), 'bad_authenticator'],
    ['an unsigned CoA-Request', raw('', 43), 'bad_authenticator'],
  ])('drops %s with a RadiusDecodeError', (_title, datagram, reason) => {
    expect(reasonOf(() => decodePacket(datagram, { dictionary, secret }))).toBe(reason);
  });

  it('ignores octets beyond the Length field as padding (RFC 2865 §3)', () => {
    const packet = accessRequest([['User-Name', 'alice']]);
    const padded = Buffer.concat([packet, Buffer.from('deadbeef', 'hex')]);
    const decoded = decodePacket(padded, { dictionary, secret });
    expect(decoded.raw.length).toBe(packet.length);
    expect(decoded.get('User-Name')).toBe('alice');
  });

  it('never puts attribute values in the error message', () => {
    const packet = raw('0108' + Buffer.from('secret').toString('hex'));
    try {
      decodePacket(packet, { dictionary, secret });
      expect.unreachable();
    } catch (error) {
      expect(String((error as Error).message)).not.toContain('secret');
    }
  });

  it('peeks at the header of a datagram it will drop, for counters', () => {
    expect(peekHeader(raw('', 0))).toEqual({ code: 0, identifier: 9, length: 20 });
    expect(peekHeader(Buffer.alloc(5))).toBeUndefined();
  });
});

describe('typed attribute access', () => {
  const accounting = encodeRequest({
    code: PacketCode.AccountingRequest,
    identifier: 42,
    secret,
    dictionary,
    attributes: {
      'User-Name': '20230001',
      'Acct-Status-Type': 'Stop',
      'Acct-Session-Id': '00000A1B',
      'NAS-IP-Address': '10.1.2.3',
      'NAS-Identifier': 'bras-dorm-1',
      'NAS-Port': 1234567,
      'NAS-Port-Id': 'slot=1;subslot=0;port=2;vlanid=3001',
      'Called-Station-Id': '00-11-22-33-44-55:campus',
      'Calling-Station-Id': 'AA-BB-CC-DD-EE-FF',
      'Framed-IP-Address': '172.16.5.9',
      'Framed-IPv6-Prefix': '2001:db8:1::/48',
      'Framed-IPv6-Address': '2001:db8:1::9',
      'Acct-Input-Octets': 0xfffffff0,
      'Acct-Input-Gigawords': 2,
      'Acct-Output-Octets': 10,
      'Acct-Session-Time': 3600,
      'Acct-Terminate-Cause': 'Admin-Reset',
      'Event-Timestamp': 1_735_689_600,
      'Acct-Interim-Interval': 300,
      Class: Buffer.from('c1'),
      'Huawei-Output-Average-Rate': 20_000_000,
      'H3C-User-Group': '学生',
    },
  });
  const packet = decodePacket(accounting, { dictionary, secret });

  it('returns strings, numbers and addresses as the server needs them', () => {
    expect(packet.get('User-Name')).toBe('20230001');
    expect(packet.getValueName('Acct-Status-Type')).toBe('Stop');
    expect(packet.get('NAS-IP-Address')).toBe('10.1.2.3');
    expect(packet.get('NAS-Port')).toBe(1234567);
    expect(packet.get('NAS-Port-Id')).toBe('slot=1;subslot=0;port=2;vlanid=3001');
    expect(packet.get('Framed-IPv6-Prefix')).toBe('2001:db8:1::/48');
    expect(packet.get('Framed-IPv6-Address')).toBe('2001:db8:1::9');
    expect(packet.get('Acct-Input-Octets')).toBe(0xfffffff0);
    expect(packet.get('Acct-Input-Gigawords')).toBe(2);
    expect(packet.get('Acct-Terminate-Cause')).toBe(AcctTerminateCause.AdminReset);
    expect(packet.get('Event-Timestamp')).toBe(1_735_689_600);
    expect(packet.get('Class')?.toString()).toBe('c1');
    expect(packet.get('Huawei-Output-Average-Rate')).toBe(20_000_000);
    expect(packet.get('H3C-User-Group')).toBe('学生');
  });

  it('looks names up case-insensitively and reports absent attributes as undefined', () => {
    expect(packet.get('user-name')).toBe('20230001');
    expect(packet.get('Framed-Pool')).toBeUndefined();
    expect(packet.has('Acct-Delay-Time')).toBe(false);
    expect(packet.getAll('Reply-Message')).toEqual([]);
  });

  it('refuses an attribute name the dictionary does not know, to catch typos', () => {
    expect(() => packet.get('User-Nmae')).toThrow(TypeError);
  });

  it('summarises itself for logs without any value', () => {
    const summary = JSON.stringify(packet);
    expect(summary).toContain('Acct-Session-Id');
    expect(summary).not.toContain('00000A1B');
    expect(summary).not.toContain('20230001');
  });

  it('keeps a value of the wrong size as raw octets instead of dropping the packet, as FreeRADIUS does', () => {
    const decoded = decodePacket(signedAccounting('2e040102' + '2c0361'), { dictionary, secret });
    expect(decoded.get('Acct-Session-Time')).toEqual(Buffer.from('0102', 'hex'));
    expect(decoded.get('Acct-Session-Id')).toBe('a');
  });
});

describe('User-Password and CHAP', () => {
  it.each(['', 'a', 'exactly16chars!!', 'seventeen-chars!!', '密码-пароль-🔑', 'x'.repeat(128)])(
    'round-trips the password %j through hiding and recovery',
    (password) => {
      const packet = decodePacket(accessRequest([['User-Name', 'u'], ['User-Password', password]]), { dictionary, secret });
      expect(packet.userPassword(secret)).toBe(password);
    },
  );

  it('refuses to hide a password longer than 128 octets (RFC 2865 §5.2)', () => {
    expect(() => accessRequest([['User-Password', 'x'.repeat(129)]])).toThrow(RangeError);
  });

  it('drops a User-Password that is not whole 16-octet blocks', () => {
    const packet = decodePacket(raw('0211' + '00'.repeat(15)), { dictionary, secret });
    expect(reasonOf(() => packet.userPassword(secret))).toBe('bad_attribute');
  });

  it('yields no password for a request without User-Password', () => {
    expect(decodePacket(accessRequest([['User-Name', 'u']]), { dictionary, secret }).userPassword(secret)).toBeUndefined();
  });

  it('verifies CHAP against CHAP-Challenge when present, else the Request Authenticator', () => {
    const challenge = Buffer.from('0123456789abcdef0123', 'hex');
    const withChallenge = decodePacket(
      accessRequest([
        ['User-Name', 'u'],
        ['CHAP-Password', chapPasswordOf(7, 'pw', challenge)],
        ['CHAP-Challenge', challenge],
      ]),
      { dictionary, secret },
    );
    expect(verifyChapPassword(withChallenge, 'pw')).toBe(true);
    expect(verifyChapPassword(withChallenge, 'pW')).toBe(false);
    const authenticator = Buffer.alloc(16, 3);
    const withoutChallenge = decodePacket(
      encodeRequest({
        code: PacketCode.AccessRequest,
        identifier: 2,
        secret,
        dictionary,
        authenticator,
        attributes: [['CHAP-Password', chapPasswordOf(1, 'pw', authenticator)]],
      }),
      { dictionary, secret },
    );
    expect(verifyChapPassword(withoutChallenge, 'pw')).toBe(true);
  });

  it('treats a CHAP-Password of the wrong size, or none, as a failed check', () => {
    const short = decodePacket(accessRequest([['CHAP-Password', Buffer.alloc(16)]]), { dictionary, secret });
    expect(verifyChapPassword(short, 'pw')).toBe(false);
    expect(verifyChapPassword(decodePacket(accessRequest([]), { dictionary, secret }), 'pw')).toBe(false);
  });
});

describe('encodeResponse', () => {
  const request = decodePacket(
    accessRequest([['User-Name', 'alice'], ['User-Password', 'pw'], ['Proxy-State', Buffer.from('p1')], ['Proxy-State', Buffer.from('p2')]], 77),
    { dictionary, secret },
  );

  it('takes identifier and authenticator from the request and signs so the client can verify', () => {
    const reply = encodeResponse(request, PacketCode.AccessReject, [['Reply-Message', 'no']], secret);
    expect(reply[1]).toBe(77);
    const verified = verifyResponse(reply, request.raw, { dictionary, secret, requireMessageAuthenticator: true });
    expect(verified.get('Reply-Message')).toBe('no');
  });

  it('copies Proxy-State in order after the other attributes, unless told not to', () => {
    const reply = verifyResponse(encodeResponse(request, PacketCode.AccessAccept, [['Session-Timeout', 60]], secret), request.raw, {
      dictionary,
      secret,
    });
    expect(reply.proxyStates().map(String)).toEqual(['p1', 'p2']);
    expect([...reply.attributes()].map((a) => a.name)).toEqual([
      'Message-Authenticator',
      'Session-Timeout',
      'Proxy-State',
      'Proxy-State',
    ]);
    const bare = encodeResponse(request, PacketCode.AccessAccept, [], secret, { copyProxyState: false });
    expect(verifyResponse(bare, request.raw, { dictionary, secret }).proxyStates()).toEqual([]);
  });

  it('splits a long Chinese Reply-Message over several attributes without cutting a character', () => {
    const message = '账户欠费：余额 10.00 元，需 20.00 元。'.repeat(8) + ' / Account in arrears: balance 10.00 yuan, 20.00 needed';
    const reply = verifyResponse(encodeResponse(request, PacketCode.AccessReject, { 'Reply-Message': message }, secret), request.raw, {
      dictionary,
      secret,
    });
    const parts = reply.getAll('Reply-Message');
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.every((part) => !part.includes('\ufffd') && Buffer.byteLength(part) <= 253)).toBe(true);
    expect(parts.join('')).toBe(message);
  });

  it('encodes Vendor-Specific sub-attributes for Huawei and H3C', () => {
    const reply = encodeResponse(
      request,
      PacketCode.AccessAccept,
      [
        ['Huawei-Input-Average-Rate', 10_000_000],
        ['Huawei-Output-Average-Rate', 20_000_000],
        ['H3C-Input-Average-Rate', 10_000_000],
        ['H3C-Output-Average-Rate', 20_000_000],
      ],
      secret,
      { copyProxyState: false },
    );
    expect(reply.subarray(38, 50).toString('hex')).toBe('1a0c000007db0206' + '00989680');
    const decoded = verifyResponse(reply, request.raw, { dictionary, secret });
    expect(decoded.get('Huawei-Output-Average-Rate')).toBe(20_000_000);
    expect(decoded.get('H3C-Input-Average-Rate')).toBe(10_000_000);
  });

  it('refuses a code that does not answer the request, an attribute it does not know, and a hand-made Message-Authenticator', () => {
    expect(() => encodeResponse(request, PacketCode.AccountingResponse, [], secret)).toThrow(TypeError);
    expect(() => encodeResponse(request, PacketCode.AccessAccept, [['No-Such-Attribute', 1]], secret)).toThrow(TypeError);
    expect(() => encodeResponse(request, PacketCode.AccessAccept, [['Message-Authenticator', Buffer.alloc(16)]], secret)).toThrow(
      TypeError,
    );
    expect(() => encodeResponse(request, PacketCode.AccessAccept, [['Session-Timeout', -1]], secret)).toThrow(RangeError);
    expect(() => encodeResponse(request, PacketCode.AccessAccept, [['Service-Type', 'No-Such-Value']], secret)).toThrow(TypeError);
  });

  it('refuses to build a reply larger than 4096 octets', () => {
    const big = Array.from({ length: 20 }, () => ['Class', Buffer.alloc(253)] as const);
    expect(() => encodeResponse(request, PacketCode.AccessAccept, big, secret)).toThrow(RangeError);
  });

  it('encodes Error-Cause in a Disconnect-NAK by name or number', () => {
    const disconnect = decodePacket(
      encodeRequest({ code: PacketCode.DisconnectRequest, identifier: 1, secret, dictionary, attributes: [['User-Name', 'alice']] }),
      { dictionary, secret },
    );
    const nak = encodeResponse(disconnect, PacketCode.DisconnectNak, [['Error-Cause', ErrorCause.SessionContextNotFound]], secret);
    expect(verifyResponse(nak, disconnect.raw, { dictionary, secret }).getValueName('Error-Cause')).toBe('Session-Context-Not-Found');
  });

  it('encodes tagged Tunnel attributes for VLAN assignment with a zero tag (RFC 2868 §3)', () => {
    const reply = encodeResponse(
      request,
      PacketCode.AccessAccept,
      [['Tunnel-Type', 'VLAN'], ['Tunnel-Medium-Type', 'IEEE-802'], ['Tunnel-Private-Group-Id', '3001']],
      secret,
      { copyProxyState: false },
    );
    expect(reply.subarray(38).toString('hex')).toBe('40060000000d' + '410600000006' + '5106' + Buffer.from('3001').toString('hex'));
    const decoded = verifyResponse(reply, request.raw, { dictionary, secret });
    expect(decoded.getValueName('Tunnel-Type')).toBe('VLAN');
    expect(decoded.get('Tunnel-Private-Group-Id')).toBe('3001');
  });
});

describe('verifyResponse', () => {
  const request = accessRequest([['User-Name', 'alice']], 5);
  const reply = encodeResponse(decodePacket(request, { dictionary, secret }), PacketCode.AccessAccept, [], secret);

  it('refuses a reply with another identifier, a code that does not answer, or a wrong secret', () => {
    const otherId = Buffer.from(reply);
    otherId[1] = 6;
    expect(reasonOf(() => verifyResponse(otherId, request, { dictionary, secret }))).toBe('identifier_mismatch');
    const otherCode = Buffer.from(reply);
    otherCode[0] = PacketCode.AccountingResponse;
    expect(reasonOf(() => verifyResponse(otherCode, request, { dictionary, secret }))).toBe('unexpected_code');
    expect(reasonOf(() => verifyResponse(reply, request, { dictionary, secret: 'other' }))).toBe('bad_authenticator');
  });

  it('refuses a reply whose Message-Authenticator was computed over a zeroed authenticator, or whose bytes were altered', () => {
    const forged = Buffer.from(reply);
    forged.fill(0, 4, 20);
    forged.fill(0, 22, 38);
    createHmac('md5', secret).update(forged).digest().copy(forged, 22);
    request.copy(forged, 4, 4, 20);
    createHash('md5').update(forged).update(secret).digest().copy(forged, 4);
    expect(reasonOf(() => verifyResponse(forged, request, { dictionary, secret }))).toBe('bad_message_authenticator');
    const flipped = Buffer.from(reply);
    flipped[30] = (flipped[30] as number) ^ 1;
    expect(reasonOf(() => verifyResponse(flipped, request, { dictionary, secret }))).toBe('bad_authenticator');
  });
});

describe('encodeRequest', () => {
  it('puts Message-Authenticator first in an Access-Request and hides User-Password', () => {
    const packet = accessRequest([['User-Name', 'alice'], ['User-Password', 'pw']]);
    expect([packet[20], packet[21]]).toEqual([80, 18]);
    expect(packet.includes(Buffer.from('pw'))).toBe(false);
    expect(decodePacket(packet, { dictionary, secret, requireMessageAuthenticator: true }).userPassword(secret)).toBe('pw');
  });

  it('refuses User-Password outside an Access-Request, and a chosen authenticator for signed requests', () => {
    expect(() =>
      encodeRequest({ code: PacketCode.AccountingRequest, identifier: 1, secret, dictionary, attributes: [['User-Password', 'x']] }),
    ).toThrow(TypeError);
    expect(() =>
      encodeRequest({ code: PacketCode.CoaRequest, identifier: 1, secret, dictionary, authenticator: Buffer.alloc(16), attributes: [] }),
    ).toThrow(TypeError);
    expect(() => encodeRequest({ code: PacketCode.AccessRequest, identifier: 256, secret, dictionary, attributes: [] })).toThrow(RangeError);
    expect(() => encodeRequest({ code: PacketCode.AccessRequest, identifier: 1, secret: '', dictionary, attributes: [] })).toThrow(TypeError);
  });

  it('signs a CoA-Request that decodes with its Message-Authenticator verified', () => {
    const coa = encodeRequest({
      code: PacketCode.CoaRequest,
      identifier: 3,
      secret,
      dictionary,
      attributes: [['Acct-Session-Id', 'abc'], ['Huawei-Input-Average-Rate', 1024]],
    });
    const decoded = decodePacket(coa, { dictionary, secret });
    expect(decoded.hasMessageAuthenticator).toBe(true);
    expect(decoded.get('Huawei-Input-Average-Rate')).toBe(1024);
  });
});

describe('integer64 and vendor formats from a custom dictionary', () => {
  const custom = buildDictionary([
    {
      name: 'custom',
      text: [
        'ATTRIBUTE User-Name 1 string',
        'ATTRIBUTE Vendor-Specific 26 octets',
        'ATTRIBUTE Big-Counter 200 integer64',
        'VENDOR Wide 9999 format=2,2',
        'BEGIN-VENDOR Wide',
        'ATTRIBUTE Wide-Thing 300 string',
        'END-VENDOR Wide',
      ].join('\n'),
    },
  ]);

  it('round-trips a 64-bit counter as a bigint and a 2,2-format vendor attribute', () => {
    const packet = encodeRequest({
      code: PacketCode.AccountingRequest,
      identifier: 1,
      secret,
      dictionary: custom,
      attributes: [['Big-Counter', 2n ** 40n + 5n], ['Wide-Thing', 'hello']],
    });
    const decoded = decodePacket(packet, { dictionary: custom, secret });
    expect(decoded.get('Big-Counter')).toBe(2n ** 40n + 5n);
    expect(decoded.get('Wide-Thing')).toBe('hello');
    expect(packet.subarray(30).toString('hex')).toBe('1a0f0000270f012c0009' + Buffer.from('hello').toString('hex'));
  });
});
