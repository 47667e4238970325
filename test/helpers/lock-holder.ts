// Child for the lock race test: waits until a given instant, tries the lock, holds it a while, prints what it did.
// node --import tsx test/helpers/lock-holder.ts <root> <epoch ms to start> <hold ms>
import { acquireLock } from '../../lib/lock.ts';

const [root, at, hold] = process.argv.slice(2);
while (Date.now() < Number(at)) {
  // spin: every child starts within the same millisecond or two
}
try {
  const lock = acquireLock(root!, 'race', () => {});
  const t0 = Date.now();
  const until = t0 + Number(hold);
  while (Date.now() < until) {
    // hold
  }
  const t1 = Date.now();
  lock.release();
  console.log(JSON.stringify({ held: [t0, t1] }));
} catch (err) {
  console.log(JSON.stringify({ refused: (err as Error).message }));
}
