interface Waiter {
  resolve: (result: IteratorResult<Uint8Array>) => void;
  reject: (err: unknown) => void;
}

interface Offer {
  chunk: Uint8Array;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * A one-chunk hand-off between a producer and one consumer that iterates it: `push`
 * resolves when the consumer has taken the chunk, so a slow consumer slows the producer.
 * When either side stops (`fail`, or the consumer breaking off), the other learns it.
 */
export class Channel implements AsyncIterable<Uint8Array> {
  private offer: Offer | undefined;
  private waiter: Waiter | undefined;
  private ended = false;
  private failure: unknown;

  push(chunk: Uint8Array): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const waiter = this.waiter;
      if (waiter) {
        this.waiter = undefined;
        waiter.resolve({ value: chunk, done: false });
        resolve();
      } else {
        this.offer = { chunk, resolve, reject };
      }
    });
  }

  end(): void {
    this.ended = true;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.resolve({ value: undefined, done: true });
  }

  fail(err: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = err ?? new Error('channel failed');
    const { waiter, offer } = this;
    this.waiter = undefined;
    this.offer = undefined;
    waiter?.reject(this.failure);
    offer?.reject(this.failure);
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return {
      next: () => {
        const offer = this.offer;
        if (offer) {
          this.offer = undefined;
          offer.resolve();
          return Promise.resolve({ value: offer.chunk, done: false });
        }
        if (this.failure !== undefined) return Promise.reject(this.failure);
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          this.waiter = { resolve, reject };
        });
      },
      return: () => {
        this.fail(new Error('the consumer stopped reading'));
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
