/** Small stream stages shared by copy and open: hashing, padding to blocks, cutting to a length. */
import { createHash, type Hash } from 'node:crypto';

export async function* tapHash(source: AsyncIterable<Buffer>, hash: Hash, onBytes?: (n: number) => void): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const b of source) {
    hash.update(b);
    n += b.length;
    onBytes?.(n);
    yield b;
  }
}

/** Pads the stream's end with zeros to a whole number of blocks. */
export async function* padToBlocks(source: AsyncIterable<Buffer>, blockSize: number): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const b of source) {
    n += b.length;
    yield b;
  }
  const rem = n % blockSize;
  if (rem) yield Buffer.alloc(blockSize - rem);
}

/** Yields exactly `length` bytes of the source (the rest is block padding). */
export async function* takeBytes(source: AsyncIterable<Buffer>, length: number): AsyncGenerator<Buffer> {
  let left = length;
  for await (const b of source) {
    if (left <= 0) break;
    const piece = b.length > left ? b.subarray(0, left) : b;
    left -= piece.length;
    yield piece;
  }
}

export function sha256(): Hash {
  return createHash('sha256');
}
