/**
 * Transfer buffers handed from a reader to a writer and back, so a long copy reuses a few megabytes instead of
 * leaving a freed buffer behind for every command. Node's ArrayBuffers live outside the JS heap, and V8 collects
 * them only after some 64 MiB of them have piled up: without reuse, that garbage is most of a copy's memory.
 *
 * Only a buffer the pool handed out goes back into it, and only whole: a writer gives back what it sent as is
 * once its WRITE completed; a view of part of a pool buffer is left to the garbage collector, since another view
 * of the same memory may still be in use.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];
  private made = 0;
  private readonly mine = new WeakSet<ArrayBuffer>();
  private readonly out = new WeakSet<ArrayBuffer>();

  /** @param size bytes of each buffer; @param keep the most buffers kept for reuse. */
  constructor(readonly size: number, private readonly keep = 16) {
    if (!Number.isInteger(size) || size <= 0) throw new RangeError(`a buffer pool needs a positive size, not ${size}`);
  }

  /** A buffer of `size` bytes (contents undefined), reused when one was given back. */
  take(): Buffer {
    const b = this.free.pop() ?? this.fresh();
    this.out.add(b.buffer as ArrayBuffer);
    return b;
  }

  /** Gives back a buffer taken from this pool, once nothing will read or write it any more; others are ignored. */
  give(b: Buffer): void {
    const ab = b.buffer as ArrayBuffer;
    if (!this.mine.has(ab) || !this.out.has(ab) || b.byteOffset !== 0 || b.length !== this.size) return;
    this.out.delete(ab);
    if (this.free.length < this.keep) this.free.push(b);
  }

  /** Buffers waiting for reuse (tests). */
  get idle(): number {
    return this.free.length;
  }

  /** Buffers allocated so far (tests, benchmarks): a pool that works stops allocating after the first few. */
  get created(): number {
    return this.made;
  }

  private fresh(): Buffer {
    // Its own ArrayBuffer (never a slice of Node's shared pool), so the pool can tell its buffers apart.
    const b = Buffer.from(new ArrayBuffer(this.size));
    this.made++;
    this.mine.add(b.buffer as ArrayBuffer);
    return b;
  }
}
