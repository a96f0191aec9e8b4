// CryptoPAn: the reference implementation's sample pairs (sample_trace_raw / _sanitized of the
// Crypto-PAn 1.0 distribution, as listed in Yawning Angel's Go port's tests), IPv6 vectors of that
// Go port, prefix preservation as a property, and the passphrase derivation against Python's.
import { describe, expect, test } from "bun:test";
import { CryptoPan, cryptoPanKeyFromPassphrase, PASSPHRASE_ITERATIONS, PASSPHRASE_SALT } from "../../src/pipeline/stages/cryptopan.ts";
import { Ipv4AddressCache, Ipv6AddressCache } from "../../src/pipeline/stages/address-cache.ts";
import { CRYPTOPAN_SAMPLE_KEY, parseIpv4, parseIpv6, seededRandom } from "../support/packet-builder.ts";

const SAMPLE_KEY = CRYPTOPAN_SAMPLE_KEY;

const SAMPLE_PAIRS: [string, string][] = [
  ["128.11.68.132", "135.242.180.132"], ["129.118.74.4", "134.136.186.123"], ["130.132.252.244", "133.68.164.234"],
  ["141.223.7.43", "141.167.8.160"], ["141.233.145.108", "141.129.237.235"], ["152.163.225.39", "151.140.114.167"],
  ["156.29.3.236", "147.225.12.42"], ["165.247.96.84", "162.9.99.234"], ["166.107.77.190", "160.132.178.185"],
  ["192.102.249.13", "252.138.62.131"], ["192.215.32.125", "252.43.47.189"], ["192.233.80.103", "252.25.108.8"],
  ["192.41.57.43", "252.222.221.184"], ["193.150.244.223", "253.169.52.216"], ["195.205.63.100", "255.186.223.5"],
  ["198.200.171.101", "249.199.68.213"], ["198.26.132.101", "249.36.123.202"], ["198.36.213.5", "249.7.21.132"],
  ["198.51.77.238", "249.18.186.254"], ["199.217.79.101", "248.38.184.213"], ["202.49.198.20", "245.206.7.234"],
  ["203.12.160.252", "244.248.163.4"], ["204.184.162.189", "243.192.77.90"], ["204.202.136.230", "243.178.4.198"],
  ["204.29.20.4", "243.33.20.123"], ["205.178.38.67", "242.108.198.51"], ["205.188.147.153", "242.96.16.101"],
  ["205.188.248.25", "242.96.88.27"], ["205.245.121.43", "242.21.121.163"], ["207.105.49.5", "241.118.205.138"],
  ["207.135.65.238", "241.202.129.222"], ["207.155.9.214", "241.220.250.22"], ["207.188.7.45", "241.255.249.220"],
  ["207.25.71.27", "241.33.119.156"], ["207.33.151.131", "241.1.233.131"], ["208.147.89.59", "227.237.98.191"],
  ["208.234.120.210", "227.154.67.17"], ["208.28.185.184", "227.39.94.90"], ["208.52.56.122", "227.8.63.165"],
  ["209.12.231.7", "226.243.167.8"], ["209.238.72.3", "226.6.119.243"], ["209.246.74.109", "226.22.124.76"],
  ["209.68.60.238", "226.184.220.233"], ["209.85.249.6", "226.170.70.6"], ["212.120.124.31", "228.135.163.231"],
  ["212.146.8.236", "228.19.4.234"], ["212.186.227.154", "228.59.98.98"], ["212.204.172.118", "228.71.195.169"],
  ["212.206.130.201", "228.69.242.193"], ["216.148.237.145", "235.84.194.111"], ["216.157.30.252", "235.89.31.26"],
  ["216.184.159.48", "235.96.225.78"], ["216.227.10.221", "235.28.253.36"], ["216.254.18.172", "235.7.16.162"],
  ["216.32.132.250", "235.192.139.38"], ["216.35.217.178", "235.195.157.81"], ["24.0.250.221", "100.15.198.226"],
  ["24.13.62.231", "100.2.192.247"], ["24.14.213.138", "100.1.42.141"], ["24.5.0.80", "100.9.15.210"],
  ["24.7.198.88", "100.10.6.25"], ["24.94.26.44", "100.88.228.35"], ["38.15.67.68", "64.3.66.187"],
  ["4.3.88.225", "124.60.155.63"], ["63.14.55.111", "95.9.215.7"], ["63.195.241.44", "95.179.238.44"],
  ["63.97.7.140", "95.97.9.123"], ["64.14.118.196", "0.255.183.58"], ["64.34.154.117", "0.221.154.117"],
  ["64.39.15.238", "0.219.7.41"],
];

/** IPv6 results of Yawning Angel's Go cryptopan (full 128-bit extension) with the sample key. */
const GO_IPV6_PAIRS: [string, string][] = [
  ["::1", "78ff:f001:9fc0:20df:8380:b1f1:704:ed"],
  ["::2", "78ff:f001:9fc0:20df:8380:b1f1:704:ef"],
  ["::ffff", "78ff:f001:9fc0:20df:8380:b1f1:704:f838"],
  ["2001:db8::1", "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1e"],
  ["2001:db8::2", "4401:2bc:603f:d91d:27f:ff8e:e6f1:dc1c"],
];

const v4 = (text: string) => parseIpv4(text).reduce((a, b) => a * 256 + b, 0);
const v4Text = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");

function sharedPrefixBits(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length * 8; i++) {
    const bit = (x: Uint8Array) => (x[i >> 3]! >> (7 - (i & 7))) & 1;
    if (bit(a) !== bit(b)) return i;
  }
  return a.length * 8;
}

describe("CryptoPAn", () => {
  const cp = new CryptoPan(SAMPLE_KEY);

  test("the reference distribution's 70 sample pairs", () => {
    for (const [original, anonymized] of SAMPLE_PAIRS) expect(`${original} -> ${v4Text(cp.anonymizeIpv4(v4(original)))}`).toBe(`${original} -> ${anonymized}`);
  });

  test("IPv6 as the Go port computes it (128-bit extension of the same construction)", () => {
    for (const [original, anonymized] of GO_IPV6_PAIRS) {
      const out = new Uint8Array(16);
      cp.anonymizeIpv6(Uint8Array.from(parseIpv6(original)), 0, out, 0);
      expect(Array.from(out)).toEqual(parseIpv6(anonymized));
    }
  });

  test("prefix preservation over random IPv4 and IPv6 pairs: shared prefix in = shared prefix out", () => {
    const rand = seededRandom(7);
    for (let n = 0; n < 300; n++) {
      const a = Math.floor(rand() * 2 ** 32);
      // Flip one chosen bit and randomize everything below it, so every prefix length occurs.
      const k = n % 32;
      const below = k === 31 ? 0 : Math.floor(rand() * 2 ** (31 - k));
      const b = ((a ^ (1 << (31 - k))) & ~((2 ** (31 - k)) - 1) | below) >>> 0;
      const bytes = (x: number) => Uint8Array.from([x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255]);
      expect(sharedPrefixBits(bytes(cp.anonymizeIpv4(a)), bytes(cp.anonymizeIpv4(b)))).toBe(sharedPrefixBits(bytes(a), bytes(b)));
    }
    for (let n = 0; n < 60; n++) {
      const a = Uint8Array.from({ length: 16 }, () => Math.floor(rand() * 256));
      const b = a.slice();
      const k = (n * 37) % 128;
      b[k >> 3]! ^= 0x80 >> (k & 7);
      for (let i = k + 1; i < 128; i++) if (rand() < 0.5) b[i >> 3]! ^= 0x80 >> (i & 7);
      const oa = new Uint8Array(16);
      const ob = new Uint8Array(16);
      cp.anonymizeIpv6(a, 0, oa, 0);
      cp.anonymizeIpv6(b, 0, ob, 0);
      expect(sharedPrefixBits(oa, ob)).toBe(k);
    }
  });

  test("a key of the wrong size is refused", () => {
    expect(() => new CryptoPan(new Uint8Array(16))).toThrow("32 bytes, not 16");
  });

  test("passphrase derivation equals Python's hashlib.pbkdf2_hmac with the documented salt and count", () => {
    const script = `import hashlib,sys; sys.stdout.write(hashlib.pbkdf2_hmac('sha256', b'correct horse', b'${PASSPHRASE_SALT}', ${PASSPHRASE_ITERATIONS}, 32).hex())`;
    const python = Bun.spawnSync(["/usr/bin/python3", "-c", script]);
    expect(Buffer.from(cryptoPanKeyFromPassphrase("correct horse")).toString("hex")).toBe(python.stdout.toString());
  });
});

describe("address caches", () => {
  test("IPv4: hits after a set, misses otherwise, cleared when half full", () => {
    const cache = new Ipv4AddressCache(4); // 16 slots, cleared at 8
    expect(cache.get(1)).toBe(-1);
    cache.set(1, 0xffffffff);
    expect(cache.get(1)).toBe(0xffffffff);
    for (let i = 2; i <= 9; i++) cache.set(i, i + 100);
    expect(cache.counters.resets).toBe(1);
    expect(cache.get(9)).toBe(109);
    expect(cache.get(1)).toBe(-1);
  });

  test("IPv6: 16-byte keys and values", () => {
    const cache = new Ipv6AddressCache(4);
    const key = Uint8Array.from(parseIpv6("2001:db8::1"));
    const value = Uint8Array.from(parseIpv6("fe80::9"));
    const out = new Uint8Array(16);
    expect(cache.get(key, 0, out, 0)).toBe(false);
    cache.set(key, 0, value, 0);
    expect(cache.get(key, 0, out, 0)).toBe(true);
    expect(Array.from(out)).toEqual(Array.from(value));
    key[15] = 2;
    expect(cache.get(key, 0, out, 0)).toBe(false);
  });
});
