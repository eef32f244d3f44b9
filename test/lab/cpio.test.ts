/** The initramfs writer (no root needed). */
import { describe, expect, it } from 'vitest';
import { newcArchive, readNewc } from '../../src/lab/cpio.js';
import { kernelCmdline, domainXml } from '../../src/lab/domain.js';
import { parseJobInfo } from '../../src/lab/virsh.js';
import { hostLayout, guestMac, labLayout } from '../../src/lab/layout.js';

describe('newc cpio', () => {
  it('round-trips files, dirs, symlinks and device nodes with 4-byte alignment', () => {
    const buf = newcArchive([
      { type: 'dir', path: 'bin' },
      { type: 'file', path: '/bin/x', data: 'hello', mode: 0o755 },
      { type: 'symlink', path: 'bin/sh', target: 'x' },
      { type: 'chardev', path: 'console', major: 5, minor: 1 },
    ]);
    expect(buf.length % 4).toBe(0);
    expect(buf.toString('ascii', 0, 6)).toBe('070701');
    const e = readNewc(buf);
    expect(e.map((x) => x.name)).toEqual(['bin', 'bin/x', 'bin/sh', 'console']);
    expect(e[0]!.mode).toBe(0o040755);
    expect(e[1]!.mode).toBe(0o100755);
    expect(e[1]!.data.toString()).toBe('hello');
    expect(e[2]!.mode).toBe(0o120777);
    expect(e[2]!.data.toString()).toBe('x');
    expect(e[3]!.rdev).toEqual([5, 1]);
    expect(buf.includes(Buffer.from('TRAILER!!!\0'))).toBe(true);
  });

  it('rejects paths escaping the archive', () => {
    expect(() => newcArchive([{ type: 'dir', path: '../x' }])).toThrow();
  });
});

describe('lab layout and domain', () => {
  it('derives names, URIs and addresses', () => {
    const a = hostLayout('/tmp/l', 'lab-a');
    expect(a).toMatchObject({
      netns: 'tide-lab-a', ip: '10.77.0.1', uri: 'qemu+unix:///system?socket=/tmp/l/hosts/lab-a/run/libvirt-sock',
      peerUri: 'qemu+tcp://10.77.0.1/system', migrationAddress: 'tcp://10.77.0.1', mac: '02:77:00:00:00:0a',
    });
    expect(hostLayout('/tmp/l', 'lab-b').uuid).not.toBe(a.uuid);
    expect(guestMac('10.77.0.11')).toBe('52:54:00:77:00:0b');
    expect(() => labLayout(`/tmp/${'x'.repeat(100)}`)).toThrow(/too long/);
  });

  it('builds domain XML with the boot contract on the kernel command line', () => {
    const g = { name: 'vm1', ip: '10.77.0.11', mac: '52:54:00:77:00:0b', memMiB: 128, dirtyMiB: 8, disk: null };
    expect(kernelCmdline(g, 24)).toContain('lab.ip=10.77.0.11/24 lab.dirty=8');
    const xml = domainXml(g, 'tcg', { kernel: '/k', initrd: '/i&', consoleLog: '/c' }, 24);
    expect(xml).toContain("<domain type='qemu'>");
    expect(xml).toContain('<initrd>/i&amp;</initrd>');
    expect(domainXml(g, 'kvm', { kernel: '/k', initrd: '/i', consoleLog: '/c' }, 24)).toContain("<domain type='kvm'>");
  });

  it('parses virsh domjobinfo', () => {
    const j = parseJobInfo('Job type:         Completed\nTime elapsed:     608          ms\nData processed:   61.647 MiB\nTotal downtime:   148          ms\n');
    expect(j).toEqual({ jobType: 'Completed', timeElapsedMs: 608, dataProcessedMiB: 61.647, totalDowntimeMs: 148 });
  });
});
