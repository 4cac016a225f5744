/** Async iterables of buffers, both ways, for the tests of streaming code. */

/** Every buffer of `it` concatenated (each copied first: a recycling producer may reuse its buffers). */
export async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of it) parts.push(Buffer.from(b));
  return Buffer.concat(parts);
}

/** The buffers as an async iterable, one per step. */
export async function* fromList(bufs: Buffer[]): AsyncGenerator<Buffer> {
  for (const b of bufs) yield b;
}
