import { expect } from 'vitest';
import { DriverError } from '../../src/drivers/errors.js';
import { LibvirtError } from '../../src/libvirt/index.js';

/** Awaits `p`, expects it to reject with a LibvirtError, and returns that error. */
export async function rejection(p: Promise<unknown>): Promise<LibvirtError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(LibvirtError);
    return e as LibvirtError;
  }
  throw new Error('expected a rejection');
}

/** Awaits `p`, expects it to reject with a DriverError, and returns that error. */
export async function driverRejection(p: Promise<unknown>): Promise<DriverError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DriverError);
    return e as DriverError;
  }
  throw new Error('expected a rejection, the call succeeded');
}
