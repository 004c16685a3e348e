import { createHash, createHmac } from 'node:crypto';
import radius from 'radius';
import { describe, expect, it } from 'vitest';
import { loadDictionary } from '../../../src/radius/dictionary.ts';
import { RadiusDecodeError } from '../../../src/radius/errors.ts';
import { PacketCode, decodePacket, encodeRequest, encodeResponse } from '../../../src/radius/packet.ts';

// Each case shows a verified defect of the `radius` package 1.1.4 (issue 3, item 1) and that our codec does not
// share it. The package is exercised only as a witness of the defect.
const dictionary = loadDictionary();
const secret = 'testing123';

function accountingRequest(sessionId: string): Buffer {
  return encodeRequest({
    code: PacketCode.AccountingRequest,
    identifier: 1,
    secret,
    dictionary,
    attributes: [
      ['User-Name', 'alice'],
      ['Acct-Status-Type', 'Start'],
      ['Acct-Session-Id', sessionId],
    ],
  });
}

function withByte(buf: Buffer, start: number, end: number, byte: number): number {
  return buf.subarray(start, end).indexOf(byte);
}

describe('defects of the radius package, fixed here', () => {
  it('compares the Request Authenticator as bytes: a forgery equal to the real one as a UTF-8 string is dropped', () => {
    let genuine = accountingRequest('0');
    for (let i = 1; withByte(genuine, 4, 20, 0xff) < 0; i++) genuine = accountingRequest(String(i));
    const forged = Buffer.from(genuine);
    forged[4 + withByte(genuine, 4, 20, 0xff)] = 0xfe;
    expect(forged.subarray(4, 20).toString()).toBe(genuine.subarray(4, 20).toString());
    expect(radius.decode({ packet: forged, secret }).code).toBe('Accounting-Request');
    expect(() => decodePacket(forged, { dictionary, secret })).toThrow(
      expect.objectContaining({ reason: 'bad_authenticator' }),
    );
  });

  it('compares Message-Authenticator as bytes: a forgery equal to the real one as a UTF-8 string is dropped', () => {
    let genuine: Buffer = Buffer.alloc(0);
    for (let id = 0; withByte(genuine, 22, 38, 0xff) < 0; id++) {
      genuine = encodeRequest({
        code: PacketCode.AccessRequest,
        identifier: id % 256,
        authenticator: Buffer.alloc(16, id >> 8),
        secret,
        dictionary,
        attributes: [['User-Name', 'alice'], ['User-Password', 'pw']],
      });
    }
    const forged = Buffer.from(genuine);
    forged[22 + withByte(genuine, 22, 38, 0xff)] = 0xfe;
    expect(forged.subarray(22, 38).toString()).toBe(genuine.subarray(22, 38).toString());
    expect(radius.decode({ packet: forged, secret }).attributes['User-Name']).toBe('alice');
    expect(() => decodePacket(forged, { dictionary, secret })).toThrow(
      expect.objectContaining({ reason: 'bad_message_authenticator' }),
    );
  });

  it('puts Message-Authenticator first in a reply, where the package puts it last', () => {
    const request = encodeRequest({
      code: PacketCode.AccessRequest,
      identifier: 3,
      secret,
      dictionary,
      attributes: [['User-Name', 'alice'], ['User-Password', 'pw']],
    });
    const theirs = radius.encode_response({
      packet: radius.decode({ packet: request, secret }),
      code: 'Access-Accept',
      secret,
      attributes: [['Reply-Message', 'ok'], ['Message-Authenticator', Buffer.alloc(16)]],
    });
    expect(theirs[20]).toBe(18);
    expect(theirs[theirs.length - 18]).toBe(80);
    const ours = encodeResponse(decodePacket(request, { dictionary, secret }), PacketCode.AccessAccept, [['Reply-Message', 'ok']], secret);
    expect([ours[20], ours[21]]).toEqual([80, 18]);
    expect(ours[38]).toBe(18);
  });

  it('rejects an Accounting-Request the package signs with Message-Authenticator, whose authenticator no longer covers it', () => {
    const theirs = radius.encode({
      code: 'Accounting-Request',
      identifier: 4,
      secret,
      attributes: [['User-Name', 'alice'], ['Acct-Status-Type', 'Start']],
      add_message_authenticator: true,
    });
    expect(() => decodePacket(theirs, { dictionary, secret })).toThrow(
      expect.objectContaining({ reason: 'bad_authenticator' }),
    );
  });

  it('accepts an Accounting-Request signed the RFC 5176 §3.4 way, which the package refuses', () => {
    const ours = encodeRequest({
      code: PacketCode.AccountingRequest,
      identifier: 5,
      secret,
      dictionary,
      messageAuthenticator: true,
      attributes: [['User-Name', 'alice'], ['Acct-Status-Type', 'Start']],
    });
    const zeroed = Buffer.from(ours);
    zeroed.fill(0, 4, 20);
    zeroed.fill(0, 22, 38);
    expect(ours.subarray(22, 38)).toEqual(createHmac('md5', secret).update(zeroed).digest());
    const maInPlace = Buffer.from(ours);
    maInPlace.fill(0, 4, 20);
    expect(ours.subarray(4, 20)).toEqual(createHash('md5').update(maInPlace).update(secret).digest());
    expect(decodePacket(ours, { dictionary, secret }).hasMessageAuthenticator).toBe(true);
    expect(() => radius.decode({ packet: ours, secret })).toThrow(/Message-Authenticator mismatch/);
  });

  it('drops an Access-Request without Message-Authenticator when the NAS is required to send it', () => {
    const bare = encodeRequest({
      code: PacketCode.AccessRequest,
      identifier: 6,
      secret,
      dictionary,
      messageAuthenticator: false,
      attributes: [['User-Name', 'alice'], ['User-Password', 'pw']],
    });
    expect(radius.decode({ packet: bare, secret }).attributes['User-Name']).toBe('alice');
    expect(() => decodePacket(bare, { dictionary, secret, requireMessageAuthenticator: true })).toThrow(
      expect.objectContaining({ reason: 'missing_message_authenticator' }),
    );
    expect(decodePacket(bare, { dictionary, secret }).get('User-Name')).toBe('alice');
  });

  it('drops an attribute whose length runs past the packet, which the package silently truncates', () => {
    const packet = Buffer.from('0107001a' + '00'.repeat(16) + '0108616c6963', 'hex');
    expect(radius.decode({ packet, secret }).attributes['User-Name']).toBe('alic');
    expect(() => decodePacket(packet, { dictionary, secret })).toThrow(
      expect.objectContaining({ reason: 'bad_attribute' }),
    );
  });

  it('drops a header shorter than 20 octets, which the package decodes', () => {
    const packet = Buffer.from('0108000c0000000000000000', 'hex');
    expect(radius.decode({ packet, secret }).code).toBe('Access-Request');
    expect(() => decodePacket(packet, { dictionary, secret })).toThrow(RadiusDecodeError);
    expect(() => decodePacket(packet, { dictionary, secret })).toThrow(expect.objectContaining({ reason: 'too_short' }));
  });

  it('throws only RadiusDecodeError for a trailing half attribute, where the package throws a RangeError', () => {
    const packet = Buffer.from('01090015' + '00'.repeat(16) + '01', 'hex');
    expect(() => radius.decode({ packet, secret })).toThrow(RangeError);
    expect(() => decodePacket(packet, { dictionary, secret })).toThrow(
      expect.objectContaining({ reason: 'bad_attribute' }),
    );
  });
});
