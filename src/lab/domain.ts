/**
 * libvirt domain XML for lab guests: 1 vCPU, RAM-only (direct kernel + initramfs boot), one
 * virtio NIC on the host bridge br0, serial console to a file on the shared path.
 */
import { domainType, type Accel } from './accel.js';

export interface GuestDisk {
  /**
   * shared: a raw file under <lab dir>/shared/disks, the same file on both hosts (like NFS);
   *   libvirt 9 does not trust a local filesystem as shared storage, so live migration needs
   *   --unsafe (VIR_MIGRATE_UNSAFE).
   * local: /var/lib/libvirt/images/NAME.img, which is a *different* file on each host (that
   *   directory is bind-mounted per host): for --copy-storage-all tests. The destination file
   *   must exist before the migration (Lab.prepareLocalDisk), since libvirt pre-creates disks
   *   only for volumes in storage pools.
   */
  mode: 'shared' | 'local';
  path: string;
  sizeMiB: number;
}

export interface GuestSpec {
  name: string;
  ip: string;
  mac: string;
  memMiB: number;
  /** MiB of RAM the guest keeps rewriting from boot (0 = idle); changeable at run time. */
  dirtyMiB: number;
  disk: GuestDisk | null;
}

export interface BootFiles {
  kernel: string;
  initrd: string;
  consoleLog: string;
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');

export const GUEST_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$/;

export function kernelCmdline(g: GuestSpec, prefixBits: number): string {
  // quiet: the serial console is slow under TCG. panic=-1: reboot on panic instead of hanging
  // (on_reboot=destroy then turns it into a visible shutoff).
  return `console=ttyS0 quiet panic=-1 lab.name=${g.name} lab.ip=${g.ip}/${prefixBits} lab.dirty=${g.dirtyMiB}`;
}

export function domainXml(g: GuestSpec, accel: Accel, boot: BootFiles, prefixBits: number): string {
  if (!GUEST_NAME_RE.test(g.name)) throw new Error(`bad guest name '${g.name}'`);
  const disk = g.disk === null ? '' : `
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source file='${esc(g.disk.path)}'/>
      <target dev='vda' bus='virtio'/>
    </disk>`;
  return `<domain type='${domainType(accel)}'>
  <name>${g.name}</name>
  <memory unit='MiB'>${g.memMiB}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${esc(boot.kernel)}</kernel>
    <initrd>${esc(boot.initrd)}</initrd>
    <cmdline>${esc(kernelCmdline(g, prefixBits))}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>${disk}
    <interface type='bridge'>
      <source bridge='br0'/>
      <mac address='${g.mac}'/>
      <model type='virtio'/>
      <rom enabled='no'/>
    </interface>
    <serial type='file'>
      <source path='${esc(boot.consoleLog)}' append='on'/>
    </serial>
    <console type='file'>
      <source path='${esc(boot.consoleLog)}' append='on'/>
      <target type='serial'/>
    </console>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}
