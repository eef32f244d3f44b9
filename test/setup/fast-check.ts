/**
 * fast-check's seed for the property tests. Under CI (CI set) they replay one fixed seed, so a
 * landing never depends on a lucky draw; developers draw new seeds each run (and a failure
 * prints its seed and counterexample, which become regression cases). TIDE_FC_SEED=N replays
 * seed N anywhere; TIDE_FC_SEED=random draws under CI too (see CONTRIBUTING.md, "Properties").
 */
import fc from 'fast-check';

const wanted = process.env.TIDE_FC_SEED ?? (process.env.CI ? '20261202' : 'random');
if (wanted !== 'random') {
  const seed = Number(wanted);
  if (!Number.isInteger(seed)) throw new Error(`TIDE_FC_SEED: expected an integer or 'random', got '${wanted}'`);
  fc.configureGlobal({ seed });
}
