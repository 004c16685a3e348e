import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { ThreadBindError, UdpThread } from '../../../src/radius/udp-thread.ts';

const threads: UdpThread[] = [];
const clients: dgram.Socket[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const t of threads.splice(0)) await t.close();
});

function thread(): UdpThread {
  const t = new UdpThread();
  threads.push(t);
  return t;
}

async function client(): Promise<dgram.Socket> {
  const c = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  clients.push(c);
  await new Promise<void>((resolve) => c.bind(0, '127.0.0.1', resolve));
  return c;
}

describe('UdpThread', () => {
  it('hands every datagram to the loop with its source, and sends the replies from the bound port', async () => {
    const t = thread();
    const s = await t.bind({ host: '127.0.0.1', port: 0, type: 'udp4', bufferSize: 1 << 20 });
    // An echo server that prefixes the reply with the source port it saw.
    s.onMessage((msg, source) => {
      const reply = Buffer.alloc(msg.length + 2);
      reply.writeUInt16BE(source.port, 0);
      msg.copy(reply, 2);
      expect(source.address).toBe('127.0.0.1');
      s.send(reply, source.port, source.address);
    });
    const c = await client();
    const want = new Map<string, number>();
    const got: { from: number; body: Buffer }[] = [];
    const done = new Promise<void>((resolve) => {
      c.on('message', (msg, rinfo) => {
        got.push({ from: rinfo.port, body: msg });
        if (got.length === 500) resolve();
      });
    });
    for (let i = 0; i < 500; i++) {
      // Sizes from 1 to 1024 bytes and different contents, so a mixed-up offset in a batch shows.
      const body = Buffer.alloc(1 + ((i * 37) % 1024), i % 251);
      want.set(body.toString('hex'), (want.get(body.toString('hex')) ?? 0) + 1);
      c.send(body, s.port, '127.0.0.1');
    }
    await done;
    for (const g of got) {
      expect(g.from).toBe(s.port);
      expect(g.body.readUInt16BE(0)).toBe(c.address().port);
      const key = g.body.subarray(2).toString('hex');
      expect(want.get(key)).toBeGreaterThan(0);
      want.set(key, want.get(key)! - 1);
    }
    expect([...want.values()].every((n) => n === 0)).toBe(true);
  });

  it('rejects a bind to a port in use with the code dgram gives, and keeps serving its other sockets', async () => {
    const t = thread();
    const a = await t.bind({ host: '127.0.0.1', port: 0, type: 'udp4', bufferSize: 65536 });
    const err = await t.bind({ host: '127.0.0.1', port: a.port, type: 'udp4', bufferSize: 65536 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ThreadBindError);
    expect((err as ThreadBindError).code).toBe('EADDRINUSE');
    // A request dgram refuses outright is refused the same way, and the thread lives on.
    const bad = await t.bind({ host: '127.0.0.1', port: 0, type: 'udp5' as 'udp4', bufferSize: 65536 }).catch((e: unknown) => e);
    expect((bad as ThreadBindError).code).toBe('ERR_SOCKET_BAD_TYPE');
    a.onMessage((msg, source) => a.send(msg, source.port, source.address));
    const c = await client();
    const echoed = new Promise<Buffer>((resolve) => c.once('message', resolve));
    c.send(Buffer.from('still here'), a.port, '127.0.0.1');
    expect((await echoed).toString()).toBe('still here');
  });

  it('sends what was queued before a close, then frees the port', async () => {
    const t = thread();
    const s = await t.bind({ host: '127.0.0.1', port: 0, type: 'udp4', bufferSize: 65536 });
    const c = await client();
    const got: string[] = [];
    const all = new Promise<void>((resolve) => {
      c.on('message', (m) => {
        got.push(m.toString());
        if (got.length === 3) resolve();
      });
    });
    for (const text of ['one', 'two', 'three']) s.send(Buffer.from(text), c.address().port, '127.0.0.1');
    await s.close();
    await all;
    expect(got).toEqual(['one', 'two', 'three']);
    // The port is free again: a plain socket can take it.
    const again = dgram.createSocket('udp4');
    clients.push(again);
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(s.port, '127.0.0.1', resolve);
    });
  });

  it('drops what arrives while the loop is maxPending datagrams behind, and reports each drop with its code', async () => {
    const t = new UdpThread({ maxPending: 4 });
    threads.push(t);
    const s = await t.bind({ host: '127.0.0.1', port: 0, type: 'udp4', bufferSize: 1 << 20 });
    const taken: number[] = [];
    const dropped: (number | undefined)[] = [];
    s.onMessage((msg) => taken.push(msg[1]!));
    s.onOverload((code) => dropped.push(code));
    const c = await client();
    for (let i = 0; i < 50; i++) await new Promise<void>((resolve) => c.send(Buffer.from([1, i]), s.port, '127.0.0.1', () => resolve()));
    // The loop is busy for a while: the thread reads all 50 meanwhile, but may hand over only 4.
    const until = performance.now() + 300;
    while (performance.now() < until);
    await expect.poll(() => taken.length + dropped.length, { timeout: 5000 }).toBe(50);
    expect(taken).toEqual([0, 1, 2, 3]);
    expect(dropped).toEqual(Array.from({ length: 46 }, () => 1));
    // Once the loop has caught up, datagrams flow again.
    c.send(Buffer.from([1, 99]), s.port, '127.0.0.1');
    await expect.poll(() => taken.at(-1), { timeout: 5000 }).toBe(99);
  });

  it('reports a send dgram refuses as an error of its socket and goes on sending', async () => {
    const t = thread();
    const s = await t.bind({ host: '127.0.0.1', port: 0, type: 'udp4', bufferSize: 65536 });
    const errors: Error[] = [];
    s.onError((err) => errors.push(err));
    const c = await client();
    const got = new Promise<Buffer>((resolve) => c.once('message', resolve));
    s.send(Buffer.from('lost'), 0, '127.0.0.1');
    s.send(Buffer.from('after'), c.address().port, '127.0.0.1');
    expect((await got).toString()).toBe('after');
    await expect.poll(() => errors.length).toBe(1);
    expect((errors[0] as NodeJS.ErrnoException).code).toBe('ERR_SOCKET_BAD_PORT');
  });

  it('resolves host names, not only literals, when binding', async () => {
    const t = thread();
    const s = await t.bind({ host: 'localhost', port: 0, type: 'udp4', bufferSize: 65536 });
    expect(s.port).toBeGreaterThan(0);
  });
});
