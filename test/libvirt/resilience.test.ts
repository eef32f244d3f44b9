// Integration tests of failure handling against a real private libvirtd: a daemon killed with a
// call in flight, a hung (SIGSTOPped) daemon detected by keepalive, and automatic reconnection
// with re-registration of event callbacks after the daemon restarts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LibvirtConnection, VIR_DOMAIN_EVENT, type LibvirtError } from '../../src/libvirt/index.js';
import { labGate, startLibvirtd, type LibvirtdHandle } from '../helpers/libvirtd.js';
import { rejection } from '../helpers/rejection.js';

const run = labGate('libvirt RPC client failure handling against a private libvirtd');

function nextEvent<T>(subscribe: (resolve: (v: T) => void) => void, timeoutMs: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
    subscribe((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });
}

describe.skipIf(!run)('dead peers and reconnection', () => {
  let d: LibvirtdHandle;
  const conns: LibvirtConnection[] = [];

  beforeAll(async () => {
    d = await startLibvirtd();
  });
  afterAll(async () => {
    for (const c of conns) await c.close();
    await d?.stop();
  });

  const ensureUp = async (): Promise<void> => {
    if (!d.running()) await d.restart();
  };

  it('a daemon killed with a call in flight: the call rejects with TIDE_HOST_UNREACHABLE', async () => {
    await ensureUp();
    const c = await LibvirtConnection.open(d.unixUri('test', '/default'), { keepalive: false });
    conns.push(c);
    const closed = nextEvent<LibvirtError | null>((r) => c.once('close', r), 10_000, 'close event');
    await d.freeze(); // the call below can only be pending: nobody answers
    const pending = c.listAllDomains();
    await new Promise((r) => setTimeout(r, 100));
    const crashed = d.crash();
    const err = await rejection(pending);
    expect(err.tideCode).toBe('TIDE_HOST_UNREACHABLE');
    expect(err.procedure).toBe('CONNECT_LIST_ALL_DOMAINS');
    expect(err.message).toMatch(/CONNECT_LIST_ALL_DOMAINS: connection/);
    const why = await closed;
    expect(why?.tideCode).toBe('TIDE_HOST_UNREACHABLE');
    expect(c.state).toBe('closed');
    expect((await rejection(c.getType())).message).toMatch(/is closed/);
    await crashed;
  });

  it('a hung daemon (SIGSTOP) is declared dead by keepalive; the pending call rejects', async () => {
    await ensureUp();
    const c = await LibvirtConnection.open(d.unixUri('test', '/default'), { keepalive: { intervalMs: 200, count: 3 }, callTimeoutMs: 0 });
    conns.push(c);
    expect(await c.getType()).toBe('TEST');
    await d.freeze();
    try {
      const t0 = Date.now();
      const err = await rejection(c.listAllDomains());
      const elapsed = Date.now() - t0;
      expect(err.tideCode).toBe('TIDE_HOST_UNREACHABLE');
      expect(err.message).toMatch(/keepalive/);
      expect(elapsed).toBeGreaterThanOrEqual(600); // ~ interval * (count + 1)
      expect(elapsed).toBeLessThan(5000);
      expect(c.rpcStats.pingsSent).toBe(3);
      expect(c.state).toBe('closed');
    } finally {
      d.thaw();
    }
  });

  it('auto-reconnect: pending calls fail, calls while down fail fast, callbacks are re-registered after restart', async () => {
    await ensureUp();
    const c = await LibvirtConnection.open(d.unixUri('test', '/default'), { autoReconnect: { initialDelayMs: 100, maxDelayMs: 400 }, keepalive: { intervalMs: 500, count: 3 } });
    conns.push(c);
    const events: Array<[string, number]> = [];
    const sub = await c.onDomainEvent('lifecycle', (ev) => events.push([ev.dom.name, ev.event]));
    const firstId = sub.callbackId;
    expect(firstId).not.toBeNull();

    const disconnected = nextEvent<LibvirtError>((r) => c.once('disconnect', r), 10_000, 'disconnect');
    const crashed = d.crash();
    const why = await disconnected;
    expect(why.tideCode).toBe('TIDE_HOST_UNREACHABLE');
    expect(c.state).toBe('reconnecting');
    expect(sub.callbackId).toBeNull();
    const during = await rejection(c.listAllDomains());
    expect(during.tideCode).toBe('TIDE_HOST_UNREACHABLE');
    expect(during.message).toMatch(/reconnecting/);

    const reconnected = nextEvent<{ attempt: number }>((r) => c.once('reconnect', r), 60_000, 'reconnect');
    await crashed;
    await new Promise((r) => setTimeout(r, 300)); // let a few attempts fail against the dead socket
    await d.restart();
    const { attempt } = await reconnected;
    expect(attempt).toBeGreaterThanOrEqual(2);
    expect(c.state).toBe('open');
    expect(sub.callbackId).not.toBeNull();

    // the re-registered callback delivers events of the new daemon
    await c.suspend('test');
    await c.resume('test');
    const deadline = Date.now() + 5000;
    while (events.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(events).toEqual([['test', VIR_DOMAIN_EVENT.SUSPENDED], ['test', VIR_DOMAIN_EVENT.RESUMED]]);
    await sub.off();
  });

  it('auto-reconnect gives up after maxAttempts and closes with the reason', async () => {
    await ensureUp();
    const c = await LibvirtConnection.open(d.unixUri('test', '/default'), { autoReconnect: { initialDelayMs: 50, maxAttempts: 3 } });
    conns.push(c);
    const closed = nextEvent<LibvirtError | null>((r) => c.once('close', r), 15_000, 'close');
    await d.crash();
    const err = await closed;
    expect(err?.tideCode).toBe('TIDE_HOST_UNREACHABLE');
    expect(err?.message).toMatch(/gave up reconnecting .* after 3 attempt\(s\)/);
    expect(c.state).toBe('closed');
  });
});
