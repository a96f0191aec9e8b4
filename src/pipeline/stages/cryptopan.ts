// Prefix-preserving address anonymization, CryptoPAn (J. Xu, J. Fan, M. Ammar, S. Moon,
// "Prefix-Preserving IP Address Anonymization", ICNP 2002), the reference variant:
//
//   key = 32 bytes: the first 16 are the AES-128 key, the last 16 are encrypted once into `pad`.
//   For bit position i (0 = most significant) of an address a:
//     block_i = the first i bits of a, then bits i.. of pad (pad's first 4 bytes for IPv4,
//               all 16 for IPv6; the rest of the block is pad's remaining bytes)
//     flip_i  = most significant bit of AES(block_i)
//   anonymized a = a XOR (flip_0 flip_1 ... flip_{n-1}).
//
// Two addresses sharing a k-bit prefix produce the same blocks for i <= k, so the results share
// exactly k bits (bit k differs because a's bit k differs and flip_k is the same).
// IPv4 matches the reference code's sample vectors (test/integration/stages-cryptopan.test.ts) and
// Debian's traceanon; IPv6 uses all 128 bits the same way, as Yawning Angel's Go cryptopan does
// (implementations differ for IPv6: docs/stages.md).
//
// AES: node:crypto aes-128-ecb, all of an address's blocks in ONE update() call (the blocks are
// independent: block_i depends on the address and pad, not on earlier outputs). Measured on the
// reference machine (Bun 1.4.4, 2 cores, this session): one block per update() 143 ns; 32 blocks
// per update() 255 ns per IPv4 address (8 ns a block, AES-NI); a table-driven pure TypeScript
// AES 77 ns a block (2.5 µs an address); a new createCipheriv per block 618 ns. Hence one cipher
// per key, one call per new address, and a cache in front (anonymize.ts).
import { createCipheriv, pbkdf2Sync, type Cipheriv } from "node:crypto";

/** Bytes of a CryptoPAn key: 16 for AES-128 and 16 for the pad (the file `traceanon -f` reads). */
export const CRYPTOPAN_KEY_BYTES = 32;

const AES_BLOCK_BYTES = 16;

/**
 * Key derivation for `--anonymize-passphrase`: PBKDF2-HMAC-SHA256 with this salt and iteration
 * count, 32 bytes out. Reproducible elsewhere, e.g. to hand the same key to traceanon:
 *   python3 -c "import hashlib,sys; sys.stdout.buffer.write(hashlib.pbkdf2_hmac('sha256',
 *     b'PASSPHRASE', b'probe-cryptopan-v1', 200000, 32))" > key.bin
 * 200,000 iterations cost ~0.1 s once at start and slow down guessing a short passphrase.
 */
export const PASSPHRASE_SALT = "probe-cryptopan-v1";
export const PASSPHRASE_ITERATIONS = 200_000;

/** The 32 key bytes for a passphrase (see PASSPHRASE_SALT). */
export function cryptoPanKeyFromPassphrase(passphrase: string): Uint8Array {
  return new Uint8Array(pbkdf2Sync(passphrase, PASSPHRASE_SALT, PASSPHRASE_ITERATIONS, CRYPTOPAN_KEY_BYTES, "sha256"));
}

/** One CryptoPAn key: anonymizes IPv4 and IPv6 addresses. Holds a cipher; no per-call allocation except AES output. */
export class CryptoPan {
  private readonly cipher: Cipheriv;
  private readonly pad: Uint8Array;
  /** The pad's first word, big-endian, for the IPv4 blocks. */
  private readonly padWord: number;
  /** 32 IPv4 blocks laid out for one update(); bytes 4..15 of each hold the pad and never change. */
  private readonly blocks4 = new Uint8Array(32 * AES_BLOCK_BYTES);
  /** 128 IPv6 blocks. */
  private readonly blocks6 = new Uint8Array(128 * AES_BLOCK_BYTES);
  /** AES calls made (one per new address): the cost counter for summaries and benchmarks. */
  encryptions = 0;

  constructor(key: Uint8Array) {
    if (key.byteLength !== CRYPTOPAN_KEY_BYTES) {
      throw new RangeError(`a CryptoPAn key is ${CRYPTOPAN_KEY_BYTES} bytes, not ${key.byteLength}`);
    }
    this.cipher = createCipheriv("aes-128-ecb", key.subarray(0, 16), null);
    this.cipher.setAutoPadding(false);
    this.pad = new Uint8Array(this.cipher.update(key.subarray(16, 32)));
    this.padWord = ((this.pad[0]! << 24) | (this.pad[1]! << 16) | (this.pad[2]! << 8) | this.pad[3]!) >>> 0;
    for (let i = 0; i < 32; i++) this.blocks4.set(this.pad, i * AES_BLOCK_BYTES);
  }

  /** Anonymizes an IPv4 address given as an unsigned 32-bit number; returns the same form. */
  anonymizeIpv4(address: number): number {
    const a = address >>> 0;
    const blocks = this.blocks4;
    for (let i = 0; i < 32; i++) {
      // The first i bits from the address, the rest from the pad. `-1 << 32` is -1 in JS, so bit 0 is special.
      const mask = i === 0 ? 0 : (-1 << (32 - i)) >>> 0;
      const word = ((a & mask) | (this.padWord & ~mask)) >>> 0;
      const at = i * AES_BLOCK_BYTES;
      blocks[at] = word >>> 24;
      blocks[at + 1] = (word >>> 16) & 0xff;
      blocks[at + 2] = (word >>> 8) & 0xff;
      blocks[at + 3] = word & 0xff;
    }
    const out = this.cipher.update(blocks);
    this.encryptions++;
    let flips = 0;
    for (let i = 0; i < 32; i++) flips |= (out[i * AES_BLOCK_BYTES]! >>> 7) << (31 - i);
    return (a ^ flips) >>> 0;
  }

  /** Anonymizes the 16-byte IPv6 address at `bytes[at..at+16)` into `out[outAt..outAt+16)` (may overlap exactly). */
  anonymizeIpv6(bytes: Uint8Array, at: number, out: Uint8Array, outAt: number): void {
    const blocks = this.blocks6;
    const pad = this.pad;
    for (let i = 0; i < 128; i++) {
      const base = i * AES_BLOCK_BYTES;
      const fullBytes = i >>> 3;
      const bits = i & 7;
      for (let b = 0; b < fullBytes; b++) blocks[base + b] = bytes[at + b]!;
      let b = fullBytes;
      if (bits !== 0) {
        const mask = (0xff << (8 - bits)) & 0xff;
        blocks[base + b] = (bytes[at + b]! & mask) | (pad[b]! & ~mask & 0xff);
        b++;
      }
      for (; b < 16; b++) blocks[base + b] = pad[b]!;
    }
    const encrypted = this.cipher.update(blocks);
    this.encryptions++;
    for (let byte = 0; byte < 16; byte++) {
      let flips = 0;
      for (let bit = 0; bit < 8; bit++) flips |= (encrypted[(byte * 8 + bit) * AES_BLOCK_BYTES]! >>> 7) << (7 - bit);
      out[outAt + byte] = bytes[at + byte]! ^ flips;
    }
  }
}
