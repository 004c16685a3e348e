import { performance } from 'node:perf_hooks';
import radius from 'radius';
import { loadDictionary } from '../src/radius/dictionary.ts';
import { PacketCode, decodePacket, encodeRequest, encodeResponse } from '../src/radius/packet.ts';

// Micro-benchmark of the pure codec on one core: what one Access-Request or Accounting-Request costs the server
// before any policy or database work. Run with `npx tsx bench/codec.ts [iterations]`.
const iterations = Number(process.argv[2] ?? 200_000);
const batch = 1_000;
const secret = Buffer.from('bras-shared-secret');
const dictionary = loadDictionary();

const accessRequest = encodeRequest({
  code: PacketCode.AccessRequest,
  identifier: 17,
  secret,
  dictionary,
  attributes: [
    ['User-Name', '2023012345'],
    ['User-Password', 'correct horse battery'],
    ['NAS-IP-Address', '10.10.0.1'],
    ['NAS-Identifier', 'ME60-dorm-1'],
    ['NAS-Port', 16_851_969],
    ['NAS-Port-Id', 'slot=1;subslot=0;port=1;vlanid=3001;vlanid2=201;'],
    ['NAS-Port-Type', 'Ethernet'],
    ['Service-Type', 'Framed-User'],
    ['Framed-Protocol', 'PPP'],
    ['Called-Station-Id', '00-e0-fc-12-34-56'],
    ['Calling-Station-Id', 'a4-5e-60-11-22-33'],
    ['Acct-Session-Id', 'ME60dorm10100100000012345'],
    ['Huawei-Domain-Name', 'dorm'],
    ['Huawei-User-Mac', 'a45e-6011-2233'],
  ],
});

const accountingRequest = encodeRequest({
  code: PacketCode.AccountingRequest,
  identifier: 18,
  secret,
  dictionary,
  attributes: [
    ['User-Name', '2023012345'],
    ['Acct-Status-Type', 'Interim-Update'],
    ['Acct-Session-Id', 'ME60dorm10100100000012345'],
    ['NAS-IP-Address', '10.10.0.1'],
    ['NAS-Port-Id', 'slot=1;subslot=0;port=1;vlanid=3001;vlanid2=201;'],
    ['Framed-IP-Address', '172.20.3.4'],
    ['Acct-Input-Octets', 123_456_789],
    ['Acct-Output-Octets', 987_654_321],
    ['Acct-Input-Gigawords', 1],
    ['Acct-Output-Gigawords', 3],
    ['Acct-Input-Packets', 100_000],
    ['Acct-Output-Packets', 200_000],
    ['Acct-Session-Time', 3_600],
    ['Event-Timestamp', 1_735_689_600],
  ],
});

const acceptAttributes = [
  ['Session-Timeout', 2_591_000],
  ['Acct-Interim-Interval', 300],
  ['Reply-Message', '欢迎使用校园网 / Welcome to the campus network'],
  ['Huawei-Input-Average-Rate', 20_000_000],
  ['Huawei-Output-Average-Rate', 100_000_000],
] as const;

let sink = 0;

function accessCycle(): void {
  const request = decodePacket(accessRequest, { dictionary, secret, requireMessageAuthenticator: true });
  const userName = request.get('User-Name');
  const password = request.userPassword(secret);
  const nasPortId = request.get('NAS-Port-Id');
  const calling = request.get('Calling-Station-Id');
  const reply = encodeResponse(request, PacketCode.AccessAccept, acceptAttributes, secret);
  sink += (userName?.length ?? 0) + (password?.length ?? 0) + (nasPortId?.length ?? 0) + (calling?.length ?? 0) + reply.length;
}

function accessDecodeOnly(): void {
  const request = decodePacket(accessRequest, { dictionary, secret, requireMessageAuthenticator: true });
  sink += request.get('User-Name')?.length ?? 0;
}

function accountingCycle(): void {
  const request = decodePacket(accountingRequest, { dictionary, secret });
  const octets = (request.get('Acct-Input-Gigawords') ?? 0) * 2 ** 32 + (request.get('Acct-Input-Octets') ?? 0);
  sink += octets + (request.get('Acct-Status-Type') ?? 0) + (request.get('Acct-Session-Id')?.length ?? 0);
  sink += (request.get('Event-Timestamp') ?? 0) + (request.get('Acct-Session-Time') ?? 0);
  sink += encodeResponse(request, PacketCode.AccountingResponse, [], secret).length;
}

const secretText = secret.toString();
function radiusPackageAccessCycle(): void {
  const request = radius.decode({ packet: accessRequest, secret: secretText });
  const reply = radius.encode_response({
    packet: request,
    code: 'Access-Accept',
    secret: secretText,
    attributes: [['Session-Timeout', 2_591_000], ['Reply-Message', 'Welcome'], ['Message-Authenticator', Buffer.alloc(16)]],
  });
  sink += reply.length;
}

function measure(name: string, run: () => void, count: number): void {
  for (let i = 0; i < 20_000; i++) run();
  const perOpMicros: number[] = [];
  for (let done = 0; done < count; done += batch) {
    const start = performance.now();
    for (let i = 0; i < batch; i++) run();
    perOpMicros.push(((performance.now() - start) * 1_000) / batch);
  }
  perOpMicros.sort((a, b) => a - b);
  const at = (q: number): number => perOpMicros[Math.min(perOpMicros.length - 1, Math.floor(q * perOpMicros.length))] ?? NaN;
  console.log(
    `${name.padEnd(52)} median ${at(0.5).toFixed(2)} µs  p90 ${at(0.9).toFixed(2)} µs  => ${Math.round(1e6 / at(0.5)).toLocaleString('en')} ops/s/core`,
  );
}

console.log(`node ${process.version}, ${iterations.toLocaleString('en')} iterations per case, median of ${batch}-op batches`);
console.log(`Access-Request ${accessRequest.length} octets, Accounting-Request ${accountingRequest.length} octets`);
measure('Access-Request: decode+verify MA+PAP+4 gets+Accept', accessCycle, iterations);
measure('Access-Request: decode+verify MA+User-Name only', accessDecodeOnly, iterations);
measure('Accounting-Request: decode+verify+6 gets+Response', accountingCycle, iterations);
measure('radius@1.1.4 Access-Request decode+encode_response', radiusPackageAccessCycle, Math.min(iterations, 50_000));
if (sink === 0) console.log('unreachable');
