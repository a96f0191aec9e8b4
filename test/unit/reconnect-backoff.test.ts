// The one reconnect backoff (src/net/reconnect-backoff.ts), as each caller uses it: exact
// schedules, the cap, and the jitter's bounds.
import { expect, test } from "bun:test";
import { backoffDelayMs, REMOTE_SOURCE_BACKOFF, type BackoffSchedule } from "../../src/net/reconnect-backoff.ts";
import { ACTIVE_RETRY_JITTER_RATIO, ACTIVE_RETRY_MAX_FACTOR, activeRetryDelayMs } from "../../src/daemon/active-dialer.ts";

const schedule = (s: BackoffSchedule, n: number, random?: () => number) => Array.from({ length: n }, (_, i) => backoffDelayMs(s, i + 1, random));

test("PCAP-over-IP and RT sources: 0.5 s doubling to 30 s, no jitter", () => {
  expect(schedule(REMOTE_SOURCE_BACKOFF, 10)).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000]);
  expect(backoffDelayMs(REMOTE_SOURCE_BACKOFF, 10_000)).toBe(30000);
});

test("PCAP-over-IP with its own reconnect options (tests use 10 ms)", () => {
  expect(schedule({ initialDelayMs: 10, maxDelayMs: 30_000 }, 5)).toEqual([10, 20, 40, 80, 160]);
  expect(schedule({ initialDelayMs: 20, maxDelayMs: 100 }, 5)).toEqual([20, 40, 80, 100, 100]);
});

test("rpcapd's active dialer: the --active retry doubling to 8 times it, spread ±20 %", () => {
  expect(ACTIVE_RETRY_MAX_FACTOR).toBe(8);
  expect(ACTIVE_RETRY_JITTER_RATIO).toBe(0.2);
  const middle = () => 0.5;
  expect(Array.from({ length: 6 }, (_, i) => activeRetryDelayMs(30_000, i + 1, middle))).toEqual([30000, 60000, 120000, 240000, 240000, 240000]);
  expect(Array.from({ length: 5 }, (_, i) => activeRetryDelayMs(1000, i + 1, () => 0))).toEqual([800, 1600, 3200, 6400, 6400]);
  expect(Array.from({ length: 5 }, (_, i) => activeRetryDelayMs(1000, i + 1, () => 1))).toEqual([1200, 2400, 4800, 9600, 9600]);
  expect(activeRetryDelayMs(333, 1, () => 0.25)).toBe(300); // 333 × 0.9 = 299.7: whole ms
});

test("zero or negative failures count as the first; huge counts stay at the cap", () => {
  expect(backoffDelayMs(REMOTE_SOURCE_BACKOFF, 0)).toBe(500);
  expect(backoffDelayMs({ initialDelayMs: 1, maxDelayMs: Number.MAX_SAFE_INTEGER }, 1_000)).toBe(2 ** 30);
});
