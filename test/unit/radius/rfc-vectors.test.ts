import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadDictionary } from '../../../src/radius/dictionary.ts';
import { RadiusDecodeError } from '../../../src/radius/errors.ts';
import {
  PacketCode,
  decodePacket,
  encodeRequest,
  encodeResponse,
  verifyResponse,
} from '../../../src/radius/packet.ts';

const dictionary = loadDictionary();
const secret = 'xyzzy5461';
const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

describe('RFC 2865 §7.1 PAP example', () => {
  const request = hex(`
    01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb 98 f4 22 7a
    01 06 6e 65 6d 6f
    02 12 0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee
    04 06 c0 a8 01 10
    05 06 00 00 00 03`);
  const accept = hex(`
    02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf 9b 55 e0 b2
    06 06 00 00 00 01
    0f 06 00 00 00 00
    0e 06 c0 a8 01 03`);

  it('decodes the Access-Request and recovers the password "arctangent"', () => {
    const packet = decodePacket(request, { dictionary, secret });
    expect(packet.code).toBe(PacketCode.AccessRequest);
    expect(packet.identifier).toBe(0);
    expect(packet.get('User-Name')).toBe('nemo');
    expect(packet.userPassword(secret)).toBe('arctangent');
    expect(packet.get('NAS-IP-Address')).toBe('192.168.1.16');
    expect(packet.get('NAS-Port')).toBe(3);
    expect(packet.hasMessageAuthenticator).toBe(false);
  });

  it('re-encodes the Access-Request byte for byte from its attributes and authenticator', () => {
    const encoded = encodeRequest({
      code: PacketCode.AccessRequest,
      identifier: 0,
      authenticator: request.subarray(4, 20),
      messageAuthenticator: false,
      secret,
      dictionary,
      attributes: [
        ['User-Name', 'nemo'],
        ['User-Password', 'arctangent'],
        ['NAS-IP-Address', '192.168.1.16'],
        ['NAS-Port', 3],
      ],
    });
    expect(encoded.toString('hex')).toBe(request.toString('hex'));
  });

  it('re-encodes the Access-Accept byte for byte when Message-Authenticator is left out as in 2000', () => {
    const packet = decodePacket(request, { dictionary, secret });
    const encoded = encodeResponse(
      packet,
      PacketCode.AccessAccept,
      [
        ['Service-Type', 'Login-User'],
        ['Login-Service', 'Telnet'],
        ['Login-IP-Host', '192.168.1.3'],
      ],
      secret,
      { messageAuthenticator: false },
    );
    expect(encoded.toString('hex')).toBe(accept.toString('hex'));
  });

  it('accepts the RFC Access-Accept as an authentic reply on the client side', () => {
    const reply = verifyResponse(accept, request, { dictionary, secret });
    expect(reply.getValueName('Service-Type')).toBe('Login-User');
    expect(reply.get('Login-IP-Host')).toBe('192.168.1.3');
  });

  it('refuses the RFC Access-Accept when the client requires Message-Authenticator (BlastRADIUS)', () => {
    expect(() => verifyResponse(accept, request, { dictionary, secret, requireMessageAuthenticator: true })).toThrow(
      expect.objectContaining({ reason: 'missing_message_authenticator' }),
    );
  });

  it('signs the same Accept with Message-Authenticator first, and the client verifies it', () => {
    const packet = decodePacket(request, { dictionary, secret });
    const encoded = encodeResponse(packet, PacketCode.AccessAccept, [['Service-Type', 'Login-User']], secret);
    expect([encoded[20], encoded[21]]).toEqual([80, 18]);
    const reply = verifyResponse(encoded, request, { dictionary, secret, requireMessageAuthenticator: true });
    expect(reply.hasMessageAuthenticator).toBe(true);
  });
});

describe('RFC 2865 §7.2 CHAP example', () => {
  const request = hex(`
    01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e 0d 33 67 a2
    01 08 66 6c 6f 70 73 79
    03 13 16 e9 75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75
    04 06 c0 a8 01 10
    05 06 00 00 00 14
    06 06 00 00 00 02
    07 06 00 00 00 01`);

  it('decodes the CHAP Access-Request with its CHAP ident and response', () => {
    const packet = decodePacket(request, { dictionary, secret });
    expect(packet.identifier).toBe(1);
    expect(packet.get('User-Name')).toBe('flopsy');
    expect(packet.get('CHAP-Password')?.[0]).toBe(0x16);
    expect(packet.get('NAS-Port')).toBe(20);
    expect(packet.getValueName('Service-Type')).toBe('Framed-User');
    expect(packet.getValueName('Framed-Protocol')).toBe('PPP');
  });

  it('re-encodes the CHAP Access-Request byte for byte', () => {
    const packet = decodePacket(request, { dictionary, secret });
    const encoded = encodeRequest({
      code: PacketCode.AccessRequest,
      identifier: 1,
      authenticator: packet.authenticator,
      messageAuthenticator: false,
      secret,
      dictionary,
      attributes: [
        ['User-Name', 'flopsy'],
        ['CHAP-Password', packet.getRaw('CHAP-Password') as Buffer],
        ['NAS-IP-Address', '192.168.1.16'],
        ['NAS-Port', 20],
        ['Service-Type', 'Framed-User'],
        ['Framed-Protocol', 'PPP'],
      ],
    });
    expect(encoded.toString('hex')).toBe(request.toString('hex'));
  });

  it('encodes the §7.2 Access-Accept attributes as printed (Framed-MTU 1500), though the printed authenticator does not verify', () => {
    const printed = hex(`
      02 01 00 38 15 ef bc 7d ab 26 cf a3 dc 34 d9 c0 3c 86 01 a4
      06 06 00 00 00 02 07 06 00 00 00 01 08 06 ff ff ff fe 0a 06 00 00 00 00
      0d 06 00 00 00 01 0c 06 00 00 05 dc`);
    const packet = decodePacket(request, { dictionary, secret });
    const encoded = encodeResponse(
      packet,
      PacketCode.AccessAccept,
      [
        ['Service-Type', 'Framed-User'],
        ['Framed-Protocol', 'PPP'],
        ['Framed-IP-Address', '255.255.255.254'],
        ['Framed-Routing', 'None'],
        ['Framed-Compression', 'Van-Jacobson-TCP-IP'],
        ['Framed-MTU', 1500],
      ],
      secret,
      { messageAuthenticator: false },
    );
    expect(encoded.subarray(20).toString('hex')).toBe(printed.subarray(20).toString('hex'));
    expect(encoded.subarray(0, 4).toString('hex')).toBe(printed.subarray(0, 4).toString('hex'));
    expect(() => verifyResponse(printed, request, { dictionary, secret })).toThrow(
      expect.objectContaining({ reason: 'bad_authenticator' }),
    );
    expect(verifyResponse(encoded, request, { dictionary, secret }).get('Framed-MTU')).toBe(1500);
  });
});

describe('RFC 5997 §6 Status-Server examples (Message-Authenticator vectors)', () => {
  const authRequest = hex('0cda00268a54f4686fb394c52866e302185d062350125a665e2e1e8411f3e243822097c84fa3');
  const authReply = hex('02da0014ef0d552a4bf2d693ec2b6fe8b5411d66');
  const acctRequest = hex('0cb30026925f6b66dd5fed571fcb1db7ad3882605012e8d6eabda910875cd91fdade26367858');
  const acctReply = hex('05b300140f6f92145f107e2f504e860a4860669c');

  it('verifies the Message-Authenticator of both Status-Server requests', () => {
    expect(decodePacket(authRequest, { dictionary, secret }).hasMessageAuthenticator).toBe(true);
    expect(decodePacket(acctRequest, { dictionary, secret }).identifier).toBe(0xb3);
  });

  it('computes the same Message-Authenticator when re-encoding the request', () => {
    const encoded = encodeRequest({
      code: PacketCode.StatusServer,
      identifier: 0xda,
      authenticator: authRequest.subarray(4, 20),
      secret,
      dictionary,
      attributes: [],
    });
    expect(encoded.toString('hex')).toBe(authRequest.toString('hex'));
  });

  it('reproduces both replies byte for byte and accepts them on the client side', () => {
    const auth = decodePacket(authRequest, { dictionary, secret });
    const acct = decodePacket(acctRequest, { dictionary, secret });
    const opts = { messageAuthenticator: false } as const;
    expect(encodeResponse(auth, PacketCode.AccessAccept, [], secret, opts).toString('hex')).toBe(authReply.toString('hex'));
    expect(encodeResponse(acct, PacketCode.AccountingResponse, [], secret, opts).toString('hex')).toBe(
      acctReply.toString('hex'),
    );
    expect(verifyResponse(authReply, authRequest, { dictionary, secret }).code).toBe(PacketCode.AccessAccept);
    expect(verifyResponse(acctReply, acctRequest, { dictionary, secret }).code).toBe(PacketCode.AccountingResponse);
  });

  it('drops a Status-Server signed with another secret', () => {
    expect(() => decodePacket(authRequest, { dictionary, secret: 'xyzzy5462' })).toThrow(
      expect.objectContaining({ reason: 'bad_message_authenticator' }),
    );
  });
});

describe('RFC 2866 §3 Request Authenticator, from the formula', () => {
  const attributes = hex(`
    01 06 6e 65 6d 6f
    28 06 00 00 00 01
    2c 0a 30 39 30 34 32 41 46 38`);

  function signedByFormula(code: number, identifier: number): Buffer {
    const header = Buffer.from([code, identifier, 0, 20 + attributes.length]);
    const authenticator = createHash('md5')
      .update(header)
      .update(Buffer.alloc(16))
      .update(attributes)
      .update(secret)
      .digest();
    return Buffer.concat([header, authenticator, attributes]);
  }

  it('encodes an Accounting-Request whose authenticator is MD5(Code+Identifier+Length+16 zero octets+Attributes+Secret)', () => {
    const encoded = encodeRequest({
      code: PacketCode.AccountingRequest,
      identifier: 7,
      secret,
      dictionary,
      attributes: [
        ['User-Name', 'nemo'],
        ['Acct-Status-Type', 'Start'],
        ['Acct-Session-Id', '09042AF8'],
      ],
    });
    expect(encoded.toString('hex')).toBe(signedByFormula(PacketCode.AccountingRequest, 7).toString('hex'));
  });

  it('accepts the formula-signed Accounting-Request and reads Acct-Status-Type by name', () => {
    const packet = decodePacket(signedByFormula(PacketCode.AccountingRequest, 7), { dictionary, secret });
    expect(packet.getValueName('Acct-Status-Type')).toBe('Start');
    expect(packet.get('Acct-Session-Id')).toBe('09042AF8');
  });

  it('drops it with bad_authenticator when a single attribute octet changes', () => {
    const tampered = signedByFormula(PacketCode.AccountingRequest, 7);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 0x01;
    expect(() => decodePacket(tampered, { dictionary, secret })).toThrow(RadiusDecodeError);
    expect(() => decodePacket(tampered, { dictionary, secret })).toThrow(expect.objectContaining({ reason: 'bad_authenticator' }));
  });
});

describe('RFC 5176 §3.4 Disconnect-Request and CoA-Request signing', () => {
  it('computes Message-Authenticator over a zeroed authenticator field, then the Request Authenticator over the result', () => {
    const encoded = encodeRequest({
      code: PacketCode.DisconnectRequest,
      identifier: 9,
      secret,
      dictionary,
      attributes: [['Acct-Session-Id', '09042AF8']],
    });
    const withZeros = Buffer.from(encoded);
    withZeros.fill(0, 4, 20);
    withZeros.fill(0, 22, 38);
    const ma = createHmac('md5', secret).update(withZeros).digest();
    expect(encoded.subarray(22, 38).toString('hex')).toBe(ma.toString('hex'));
    const withMa = Buffer.from(encoded);
    withMa.fill(0, 4, 20);
    const authenticator = createHash('md5').update(withMa).update(secret).digest();
    expect(encoded.subarray(4, 20).toString('hex')).toBe(authenticator.toString('hex'));
    expect(decodePacket(encoded, { dictionary, secret }).get('Acct-Session-Id')).toBe('09042AF8');
  });

  it('signs a Disconnect-ACK Message-Authenticator with the Request Authenticator, and the client verifies it', () => {
    const request = encodeRequest({
      code: PacketCode.DisconnectRequest,
      identifier: 10,
      secret,
      dictionary,
      attributes: [['User-Name', 'nemo']],
    });
    const nak = encodeResponse(
      decodePacket(request, { dictionary, secret }),
      PacketCode.DisconnectNak,
      [['Error-Cause', 'Session-Context-Not-Found']],
      secret,
    );
    const withRequestAuthenticator = Buffer.from(nak);
    request.copy(withRequestAuthenticator, 4, 4, 20);
    withRequestAuthenticator.fill(0, 22, 38);
    const ma = createHmac('md5', secret).update(withRequestAuthenticator).digest();
    expect(nak.subarray(22, 38).toString('hex')).toBe(ma.toString('hex'));
    const reply = verifyResponse(nak, request, { dictionary, secret });
    expect(reply.getValueName('Error-Cause')).toBe('Session-Context-Not-Found');
    expect(reply.get('Error-Cause')).toBe(503);
  });
});
