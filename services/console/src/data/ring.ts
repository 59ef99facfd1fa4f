/** The newest `capacity` items, oldest first: the pipeline's sample history. */
export class Ring<T> {
  private readonly items: T[] = [];
  constructor(private readonly capacity: number) {
    if (capacity < 1) throw new Error('a ring holds at least one item');
  }
  push(item: T): void {
    this.items.push(item);
    if (this.items.length > this.capacity) this.items.shift();
  }
  /** Oldest first. */
  toArray(): T[] {
    return [...this.items];
  }
  last(): T | undefined {
    return this.items[this.items.length - 1];
  }
}
