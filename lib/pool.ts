// Bounded concurrency over a stream of work (e.g. a paged listing): at most `limit` items in flight, items pulled
// only as workers free up, so a million-object listing never sits in memory at once.

/**
 * Run fn over every item with at most `limit` running. The first failure stops new work; the running items settle,
 * the source iterator is closed, and that first error is thrown.
 */
export async function forEachBounded<T>(items: Iterable<T> | AsyncIterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const it: Iterator<T> | AsyncIterator<T> = Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : items[Symbol.iterator]();
  let failure: { err: unknown } | undefined;
  // Async generators queue concurrent next() calls, so each worker gets the next item in order.
  const worker = async (): Promise<void> => {
    while (!failure) {
      let r: IteratorResult<T>;
      try {
        r = await it.next();
      } catch (err) {
        failure ??= { err };
        return;
      }
      if (r.done) return;
      try {
        await fn(r.value);
      } catch (err) {
        failure ??= { err };
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.floor(limit)) }, worker));
  if (failure) {
    await Promise.resolve(it.return?.()).catch(() => {});
    throw failure.err;
  }
}
