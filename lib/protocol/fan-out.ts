/**
 * One source stream read once, delivered to several consumers with bounded memory: the source is pulled only when
 * every consumer still reading has fewer than `depth` chunks waiting, so the slowest consumer sets the pace and no
 * consumer waits while another has data ready. A consumer that stops (its write failed) drops out; the others go on.
 * Chunks are shared, not copied: consumers must not modify them.
 */
export function fanOut(source: AsyncIterable<Buffer>, consumers: number, depth = 4): AsyncIterable<Buffer>[] {
  const it = source[Symbol.asyncIterator]();
  const queues: Buffer[][] = Array.from({ length: consumers }, () => []);
  const active = new Set<number>(queues.keys());
  let ended = false;
  let failure: { error: unknown } | undefined;
  let pulling: Promise<void> | undefined;
  /** Resolved whenever a consumer takes a chunk or leaves (the producer may pull again). */
  let space: (() => void) | undefined;

  const roomForAll = () => [...active].every((i) => queues[i]!.length < depth);

  async function pull(): Promise<void> {
    while (!roomForAll()) await new Promise<void>((r) => (space = r));
    try {
      const r = await it.next();
      if (r.done) ended = true;
      else for (const i of active) queues[i]!.push(r.value);
    } catch (error) {
      failure = { error };
      ended = true;
    }
  }

  const wake = () => {
    const s = space;
    space = undefined;
    s?.();
  };

  function branch(i: number): AsyncIterable<Buffer> {
    return {
      [Symbol.asyncIterator]() {
        return {
          async next(): Promise<IteratorResult<Buffer>> {
            for (;;) {
              const q = queues[i]!;
              if (q.length > 0) {
                const value = q.shift()!;
                wake();
                return { value, done: false };
              }
              if (failure) throw failure.error;
              if (ended) return { value: undefined, done: true };
              // One pull at a time feeds every queue; the others wait for it.
              pulling ??= pull().finally(() => { pulling = undefined; });
              await pulling;
            }
          },
          async return(): Promise<IteratorResult<Buffer>> {
            // This consumer stopped early (its drive failed): it no longer holds the others back.
            active.delete(i);
            queues[i] = [];
            wake();
            if (active.size === 0 && !ended) {
              ended = true;
              await it.return?.();
            }
            return { value: undefined, done: true };
          },
        };
      },
    };
  }
  return queues.map((_, i) => branch(i));
}
