// Fixed-size, allocation-free caches from an original address to its anonymized form, so steady
// traffic pays one table probe per address instead of one AES call (cryptopan.ts).
//
// Open addressing with linear probing in typed arrays: no per-entry objects, no garbage, and a
// memory bound fixed at construction. When the table is half full it is cleared and refilled
// (counted as a reset): simpler than eviction, and a working set larger than the table costs
// AES calls, never memory.

/** IPv4 slots: 2^20 (keys and values 8 MiB). Holds 512 Ki addresses before a reset: a busy /13. */
export const IPV4_CACHE_SLOTS_LOG2 = 20;
/** IPv6 slots: 2^16 (keys and values 2 MiB). Holds 32 Ki addresses before a reset. */
export const IPV6_CACHE_SLOTS_LOG2 = 16;

/** Counters both caches keep. */
export interface CacheCounters {
  hits: number;
  misses: number;
  resets: number;
}

/**
 * The bookkeeping both caches share: which slots are used, the hash shift and probe mask for a
 * power-of-two table, and the clear-when-half-full rule. Subclasses keep keys and values in
 * typed arrays of their own shape.
 */
abstract class OpenAddressingTable {
  protected readonly used: Uint8Array;
  protected readonly shift: number;
  protected readonly mask: number;
  private readonly limit: number;
  protected size = 0;
  readonly counters: CacheCounters = { hits: 0, misses: 0, resets: 0 };

  constructor(slotsLog2: number) {
    const slots = 1 << slotsLog2;
    this.used = new Uint8Array(slots);
    this.shift = 32 - slotsLog2;
    this.mask = slots - 1;
    this.limit = slots >>> 1;
  }

  /** Empties the table when it is half full (counted as a reset), before an insert. */
  protected makeRoom(): void {
    if (this.size < this.limit) return;
    this.used.fill(0);
    this.size = 0;
    this.counters.resets++;
  }
}

/** u32 -> u32 map. `get` returns -1 for a miss (values are unsigned, so -1 cannot be one). */
export class Ipv4AddressCache extends OpenAddressingTable {
  private readonly keys: Uint32Array;
  private readonly values: Uint32Array;

  constructor(slotsLog2 = IPV4_CACHE_SLOTS_LOG2) {
    super(slotsLog2);
    this.keys = new Uint32Array(1 << slotsLog2);
    this.values = new Uint32Array(1 << slotsLog2);
  }

  get(address: number): number {
    let slot = Math.imul(address, 0x9e3779b1) >>> this.shift;
    while (this.used[slot] === 1) {
      if (this.keys[slot] === address) {
        this.counters.hits++;
        return this.values[slot]!;
      }
      slot = (slot + 1) & this.mask;
    }
    this.counters.misses++;
    return -1;
  }

  set(address: number, value: number): void {
    this.makeRoom();
    let slot = Math.imul(address, 0x9e3779b1) >>> this.shift;
    while (this.used[slot] === 1) {
      if (this.keys[slot] === address) break;
      slot = (slot + 1) & this.mask;
    }
    if (this.used[slot] === 0) this.size++;
    this.used[slot] = 1;
    this.keys[slot] = address;
    this.values[slot] = value;
  }
}

/** 16-byte -> 16-byte map over addresses inside packet bytes. */
export class Ipv6AddressCache extends OpenAddressingTable {
  private readonly keys: Uint32Array;
  private readonly values: Uint8Array;

  constructor(slotsLog2 = IPV6_CACHE_SLOTS_LOG2) {
    super(slotsLog2);
    this.keys = new Uint32Array((1 << slotsLog2) * 4);
    this.values = new Uint8Array((1 << slotsLog2) * 16);
  }

  /** Copies the cached value for `bytes[at..at+16)` into `out[outAt..]` and returns true, or returns false. */
  get(bytes: Uint8Array, at: number, out: Uint8Array, outAt: number): boolean {
    const w0 = word(bytes, at);
    const w1 = word(bytes, at + 4);
    const w2 = word(bytes, at + 8);
    const w3 = word(bytes, at + 12);
    let slot = hash4(w0, w1, w2, w3) >>> this.shift;
    const keys = this.keys;
    while (this.used[slot] === 1) {
      const k = slot * 4;
      if (keys[k] === w0 && keys[k + 1] === w1 && keys[k + 2] === w2 && keys[k + 3] === w3) {
        this.counters.hits++;
        const v = slot * 16;
        for (let b = 0; b < 16; b++) out[outAt + b] = this.values[v + b]!;
        return true;
      }
      slot = (slot + 1) & this.mask;
    }
    this.counters.misses++;
    return false;
  }

  /** Stores `value[valueAt..+16)` for the address `bytes[at..at+16)`. */
  set(bytes: Uint8Array, at: number, value: Uint8Array, valueAt: number): void {
    this.makeRoom();
    const w0 = word(bytes, at);
    const w1 = word(bytes, at + 4);
    const w2 = word(bytes, at + 8);
    const w3 = word(bytes, at + 12);
    let slot = hash4(w0, w1, w2, w3) >>> this.shift;
    const keys = this.keys;
    while (this.used[slot] === 1) {
      const k = slot * 4;
      if (keys[k] === w0 && keys[k + 1] === w1 && keys[k + 2] === w2 && keys[k + 3] === w3) break;
      slot = (slot + 1) & this.mask;
    }
    if (this.used[slot] === 0) this.size++;
    this.used[slot] = 1;
    const k = slot * 4;
    keys[k] = w0;
    keys[k + 1] = w1;
    keys[k + 2] = w2;
    keys[k + 3] = w3;
    const v = slot * 16;
    for (let b = 0; b < 16; b++) this.values[v + b] = value[valueAt + b]!;
  }
}

function word(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

function hash4(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a, 0x9e3779b1);
  h = Math.imul(h ^ b ^ (h >>> 15), 0x85ebca6b);
  h = Math.imul(h ^ c ^ (h >>> 13), 0xc2b2ae35);
  h = Math.imul(h ^ d ^ (h >>> 16), 0x9e3779b1);
  return (h ^ (h >>> 15)) >>> 0;
}
