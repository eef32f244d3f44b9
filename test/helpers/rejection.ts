import { expect } from 'vitest';
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
