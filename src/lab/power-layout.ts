/**
 * Names, addresses and paths of the lab's power add-on (`tide lab up --power`, see power.ts).
 * Shared by the CLI side (power.ts) and the per-host agent (power-agent.ts), so both find the
 * same files. Everything lives under <lab dir>/power/, which `tide lab down` removes.
 *
 *   netns tide-lab-sw: the controller (ipmitool, wakeonlan), 10.77.0.254
 *     └─ swp-a ═ eth0 ─ br0 10.77.0.1    lab-a: reaper → libvirtd → QEMU guests  (the "OS")
 *                        │   10.77.0.101  UDP 623: ipmi_sim = BMC of lab-a      (the "hardware":
 *                        └─ UDP 9 on every address of the netns: WoL            stays up while off)
 *     └─ swp-b ═ eth0 ─ br0 10.77.0.2 / 10.77.0.102 …
 */
import { join } from 'node:path';
import { LAB_NET_PREFIX, type HostLayout } from './layout.js';

/** RMCP+ port of every lab BMC (each BMC has its own address). */
export const BMC_PORT = 623;
export const BMC_USER = 'admin';
/** Wake-on-LAN: UDP port and the lab subnet's broadcast address. */
export const WOL_PORT = 9;
export const WOL_BROADCAST = `${LAB_NET_PREFIX}.255`;
/** ipmitool cipher suite: ipmi_sim 2.0.33 has no SHA-256 suites (17), and without -C ipmitool waits ~10 s. */
export const BMC_CIPHER_SUITE = 3;
/** From "power on" until libvirtd is started (emulated POST/boot), ms. */
export const DEFAULT_BOOT_DELAY_MS = 3_000;
/** Soft off: how long guests get for an ACPI shutdown before they are destroyed, ms. */
export const SOFT_GUEST_GRACE_MS = 2_000;
/** Soft off: how long libvirtd gets to exit after SIGTERM before the plug is pulled, ms. */
export const SOFT_DAEMON_GRACE_MS = 10_000;
/** The agent's entry file name (dist/lab/ or its transpiled copy); process classification keys on it. */
export const AGENT_FILE = 'power-agent.js';

/** The BMC address of a lab host: a second IP on its br0 (a shared-NIC BMC), .101, .102, … */
export function bmcIp(h: HostLayout): string {
  const last = Number(h.ip.split('.').pop());
  return `${LAB_NET_PREFIX}.${100 + last}`;
}

export interface PowerHostPaths {
  readonly dir: string;
  /** ipmi_sim's LAN configuration (holds the BMC password: mode 0600). */
  readonly lanConf: string;
  /** ipmi_sim's emulator command file (the management controller). */
  readonly emu: string;
  /** ipmi_sim's persistent state directory. */
  readonly stateDir: string;
  /** The agent's control socket (the chassis_control hook talks to it). */
  readonly socket: string;
  readonly agentPidFile: string;
  readonly ipmiSimPidFile: string;
  /** The agent's log: every power action, WoL packet and BMC request, one line each. */
  readonly log: string;
  readonly ipmiSimLog: string;
}

export function powerDir(labDir: string): string {
  return join(labDir, 'power');
}

/** The BMC password file (one line, mode 0600); its path goes into the config as passwordFile. */
export function passwordFile(labDir: string): string {
  return join(powerDir(labDir), 'bmc-password');
}

export function powerHostPaths(labDir: string, host: string): PowerHostPaths {
  const dir = join(powerDir(labDir), host);
  return {
    dir,
    lanConf: join(dir, 'lan.conf'),
    emu: join(dir, 'bmc.emu'),
    stateDir: join(dir, 'state'),
    socket: join(dir, 'agent.sock'),
    agentPidFile: join(dir, 'agent.pid'),
    ipmiSimPidFile: join(dir, 'ipmi_sim.pid'),
    log: join(dir, 'agent.log'),
    ipmiSimLog: join(dir, 'ipmi_sim.log'),
  };
}
