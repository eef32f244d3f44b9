/** The pure core: model, detection, placement, strategies and plans. No I/O, no clock. */
export * from './model/types.js';
