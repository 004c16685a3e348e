import dgram from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RadiusClient } from '../../../src/radius/client.ts';
import { loadDictionary } from '../../../src/radius/dictionary.ts';
import { decodePacket, encodeResponse, PacketCode, type RadiusPacket } from '../../../src/radius/packet.ts';

const dictionary = loadDictionary();
const SECRET = 'client-secret';

/**
 * A RADIUS server on a real UDP socket that holds every request for a while before answering, and records
 * which identifiers were outstanding at the same time.
 */
async function slowServer(holdMs: number) {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const outstanding = new Set<number>();
  let duplicates = 0;
  let maxOutstanding = 0;
  let received = 0;
  socket.on('message', (msg, rinfo) => {
    const req: RadiusPacket = decodePacket(msg, { dictionary, secret: SECRET });
    received++;
    if (outstanding.has(req.identifier)) duplicates++;
    outstanding.add(req.identifier);
    maxOutstanding = Math.max(maxOutstanding, outstanding.size);
    setTimeout(() => {
      outstanding.delete(req.identifier);
      socket.send(encodeResponse(req, PacketCode.AccessAccept, [['Reply-Message', `for ${String(req.get('User-Name'))}`]], SECRET), rinfo.port, rinfo.address);
    }, holdMs);
  });
  return {
    port: socket.address().port,
    stats: () => ({ duplicates, maxOutstanding, received }),
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}

describe('RadiusClient identifiers', () => {
  let server: Awaited<ReturnType<typeof slowServer>>;
  let client: RadiusClient;
  beforeAll(async () => {
    // Held long enough that all 256 identifiers are out before the first answer, on a slow, busy CI host
    // too: 20 ms was not (the client had sent 224 when the first answers came back).
    server = await slowServer(150);
    client = await RadiusClient.open(dictionary, { bindAddress: '127.0.0.1' });
  });
  afterAll(async () => {
    await client.close();
    await server.close();
  });

  it('answers 3,000 concurrent requests to one server, never sharing an identifier between two in flight', async () => {
    const n = 3_000;
    const replies = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        client.request({
          host: '127.0.0.1',
          port: server.port,
          code: PacketCode.AccessRequest,
          attributes: [['User-Name', `u${i}`], ['User-Password', 'pw']],
          secret: SECRET,
          timeoutsMs: [5_000],
        }),
      ),
    );
    // Each request got the reply to itself, on the first try: no identifier was reused while in flight.
    expect(replies.map((r) => r.reply.get('Reply-Message'))).toEqual(Array.from({ length: n }, (_, i) => `for u${i}`));
    expect(replies.every((r) => r.attempts === 1)).toBe(true);
    expect(server.stats()).toEqual({ duplicates: 0, maxOutstanding: 256, received: n });
  });

  it('rejects requests still waiting for an identifier when the client closes', async () => {
    const other = await RadiusClient.open(dictionary, { bindAddress: '127.0.0.1' });
    const pending = Array.from({ length: 300 }, (_, i) =>
      other
        .request({ host: '127.0.0.1', port: server.port, code: PacketCode.AccessRequest, attributes: [['User-Name', `w${i}`]], secret: SECRET, timeoutsMs: [200] })
        .then(
          () => 'answered',
          (e: Error) => e.message,
        ),
    );
    await new Promise((r) => setTimeout(r, 5));
    await other.close();
    const outcomes = await Promise.all(pending);
    // The 44 beyond the 256 identifiers were waiting: they fail at once instead of hanging forever.
    expect(outcomes.filter((o) => o === 'client closed')).toHaveLength(44);
  });
});
