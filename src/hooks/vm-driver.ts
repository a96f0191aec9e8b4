// The JavaScript that runs inside QuickJS around an operator's hook: it walks one batch of
// records per call, presents each as `pkt`, calls the hook, and writes verdicts into an Int32Array.
//
// Why a driver inside the VM: crossing the host/VM boundary costs microseconds (handles, copies),
// so it is crossed twice per batch (buffers in, verdicts out), never per packet. The driver
// exposes no host function at all: ctx.tag/sample/log/fixChecksums only record plain data that
// the host reads after the batch and validates (it trusts nothing the VM writes).
//
// What the driver returns (tags, log lines, the first error) is one string built only by
// concatenating primitives (RESULT_FIELD below, parsed by parseDriverResult): no array, no
// JSON.stringify, no toJSON, nothing a hook can replace or poison (issue 9: a hook that set
// Array.prototype.toJSON, an index setter on Array.prototype, or JSON.stringify dropped its tags).
//
// Shared layout (host writes, driver reads; see META below):
//   meta:  Int32[ META_HEADER_INTS ] then per record Int32[ META_RECORD_INTS ]
//   data:  the batch bytes exactly as in PacketBatch (16-byte record headers + captured data)
import { OFFSET_FIELD, OFFSET_FIELD_COUNT } from "../packet/packet-offsets.ts";

/** Slots of the meta header. */
export const META_HEADER = {
  /** Records in this batch (host writes). */
  COUNT: 0,
  LINKTYPE: 1,
  /** 1 when ts_frac is nanoseconds. */
  NANO: 2,
  /** Index of the record being processed; `count` once the batch is done. Records below it have verdicts. */
  PROGRESS: 3,
  /** Why the driver stopped early (STOP_REASON); 0 when it finished the batch. */
  STOP: 4,
} as const;
export const META_HEADER_INTS = 8;

/** Per-record slots after the decoded offsets (OFFSET_FIELD occupies the first OFFSET_FIELD_COUNT). */
export const META_RECORD = {
  /** Offset of the record's packet data in the data buffer. */
  DATA_OFFSET: OFFSET_FIELD_COUNT,
  CAPLEN: OFFSET_FIELD_COUNT + 1,
  LEN: OFFSET_FIELD_COUNT + 2,
  TS_SEC: OFFSET_FIELD_COUNT + 3,
  TS_FRAC: OFFSET_FIELD_COUNT + 4,
  /** VERDICT code; the host pre-fills PASS and the driver writes anything else. */
  VERDICT: OFFSET_FIELD_COUNT + 5,
  /** Output caplen; the host pre-fills the input caplen, pkt.caplen and returned arrays change it. */
  OUT_CAPLEN: OFFSET_FIELD_COUNT + 6,
  /** RECORD_FLAG bits (host pre-fills 0). */
  FLAGS: OFFSET_FIELD_COUNT + 7,
  /** pcapng EPB direction bits from the batch's meta.flags (0 unknown, 1 inbound, 2 outbound): pkt.direction. */
  DIRECTION: OFFSET_FIELD_COUNT + 8,
  /** RECORD_MARK bits the host derives from the batch's meta.comments. */
  MARKS: OFFSET_FIELD_COUNT + 9,
} as const;
export const META_RECORD_INTS = OFFSET_FIELD_COUNT + 10;

/** Bits of META_RECORD.MARKS. */
export const RECORD_MARK = {
  /** The checksums stage found a bad checksum (a "checksum bad: ..." comment): pkt.badChecksum. */
  BAD_CHECKSUM: 1,
} as const;

/** Verdict codes the driver writes per record. */
export const VERDICT = {
  PASS: 0,
  DROP: 1,
  /** The hook returned a Uint8Array; the driver copied it over the record's data. */
  REPLACED: 2,
  /** The hook threw. */
  THREW: 3,
  /** The hook returned something that is not a verdict (or a too-long Uint8Array). */
  BAD_VERDICT: 4,
  /** The hook ran out of memory (caught inside the VM). */
  OUT_OF_MEMORY: 5,
} as const;

export const RECORD_FLAG = {
  /** ctx.fixChecksums(pkt) was called. */
  FIX_CHECKSUMS: 1,
} as const;

export const STOP_REASON = {
  NONE: 0,
  OUT_OF_MEMORY: 1,
} as const;

/** Limits the driver enforces inside the VM (the host re-checks everything it reads). */
export const DRIVER_LIMITS = {
  /** Tags kept per packet; later ones are ignored (pcapng comments should stay short). */
  TAGS_PER_PACKET: 16,
  /** Longest tag name in UTF-16 units; longer names throw so the author notices. */
  TAG_CHARS: 64,
  /** ctx.log lines kept per batch; the rest are counted as suppressed. */
  LOG_LINES_PER_BATCH: 10,
  /** A log line is cut to this many UTF-16 units. */
  LOG_LINE_CHARS: 512,
  /** Distinct keys ctx.sample() remembers; the table is cleared when full (bounded memory). */
  SAMPLE_KEYS: 65536,
} as const;

/**
 * Record letters of the driver's result string. Each record is the letter, then fields:
 * numbers end with ";", strings are written LENGTH ":" TEXT (length in UTF-16 units).
 */
export const RESULT_FIELD = {
  /** T index; name */
  TAG: "T",
  /** L line */
  LOG: "L",
  /** S suppressed-log-lines; */
  SUPPRESSED: "S",
  /** E error-count; first-error */
  ERROR: "E",
} as const;

export interface DriverResult {
  tags: { index: number; name: string }[];
  logs: string[];
  logsSuppressed: number;
  errorCount: number;
  firstError: string | undefined;
}

/**
 * Parses the driver's result string. The VM is untrusted: a malformed string ends the parse
 * and what was read so far is returned (the caller re-checks every value against its limits).
 */
export function parseDriverResult(text: string): DriverResult {
  const result: DriverResult = { tags: [], logs: [], logsSuppressed: 0, errorCount: 0, firstError: undefined };
  let at = 0;
  const number = (): number | undefined => {
    const end = text.indexOf(";", at);
    if (end < 0 || end - at > 16) return undefined;
    const value = Number(text.slice(at, end));
    at = end + 1;
    return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  };
  const string = (): string | undefined => {
    const colon = text.indexOf(":", at);
    if (colon < 0 || colon - at > 16) return undefined;
    const length = Number(text.slice(at, colon));
    if (!Number.isSafeInteger(length) || length < 0 || colon + 1 + length > text.length) return undefined;
    at = colon + 1 + length;
    return text.slice(colon + 1, at);
  };
  while (at < text.length) {
    const letter = text[at++];
    if (letter === RESULT_FIELD.TAG) {
      const index = number();
      const name = string();
      if (index === undefined || name === undefined) break;
      result.tags.push({ index, name });
    } else if (letter === RESULT_FIELD.LOG) {
      const line = string();
      if (line === undefined) break;
      result.logs.push(line);
    } else if (letter === RESULT_FIELD.SUPPRESSED) {
      const n = number();
      if (n === undefined) break;
      result.logsSuppressed = n;
    } else if (letter === RESULT_FIELD.ERROR) {
      const n = number();
      const first = string();
      if (n === undefined || first === undefined) break;
      result.errorCount = n;
      result.firstError = first;
    } else {
      break;
    }
  }
  return result;
}

/**
 * Source of an expression that evaluates to `makeDriver(hookFunction)`. It is evaluated before the
 * hook's module so it captures the intrinsics it uses before hook code can replace them.
 */
export function driverSource(): string {
  const F = OFFSET_FIELD;
  const R = META_RECORD;
  const H = META_HEADER;
  const V = VERDICT;
  const L = DRIVER_LIMITS;
  return `(function () {
  "use strict";
  const uncurry = Function.prototype.call.bind(Function.prototype.bind, Function.prototype.call);
  const setInto = uncurry(Uint8Array.prototype.set);
  const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype);
  const tagOf = uncurry(Object.getOwnPropertyDescriptor(typedArrayProto, Symbol.toStringTag).get);
  const lengthOf = uncurry(Object.getOwnPropertyDescriptor(typedArrayProto, "length").get);
  const isView = ArrayBuffer.isView;
  const mapGet = uncurry(Map.prototype.get);
  const mapSet = uncurry(Map.prototype.set);
  const mapClear = uncurry(Map.prototype.clear);
  const mapSize = uncurry(Object.getOwnPropertyDescriptor(Map.prototype, "size").get);
  const stringSlice = uncurry(String.prototype.slice);
  const toString = String;
  const freeze = Object.freeze;
  const isInteger = Number.isInteger;
  const MapCtor = Map;
  const Int32ArrayCtor = Int32Array;
  const Uint8ArrayCtor = Uint8Array;
  const InternalErrorCtor = InternalError;
  const RangeErrorCtor = RangeError;
  const TypeErrorCtor = TypeError;

  return function makeDriver(hook) {
    // Per-packet state lives in closure variables. To keep the loop short, only index and base
    // are written per packet: the getters and ctx methods compare "...For" with index instead
    // of the loop resetting caches, and caplen/flags go straight into the record's meta slots.
    let meta = null, data = null, dataBuffer = null, base = 0, index = -1;
    let view = null, viewFor = -1;
    let linkType = 0, nano = 0, interfaceName = "";
    // The batch's result, built as a string of primitives (see RESULT_FIELD) as it happens.
    let out = "", tagCount = 0, tagCap = 0, logCount = 0, logsSuppressed = 0;
    const sampleCounts = new MapCtor();

    function bytesView() {
      if (viewFor !== index) {
        const at = meta[base + ${R.DATA_OFFSET}];
        // new Uint8Array(buffer, offset, length) is ~35% cheaper in QuickJS than subarray(), which
        // looks up the species constructor on every call.
        view = new Uint8ArrayCtor(dataBuffer, at, meta[base + ${R.CAPLEN}]);
        viewFor = index;
      }
      return view;
    }
    function ipText(at, v4) {
      const b = bytesView();
      if (v4) return b[at] + "." + b[at + 1] + "." + b[at + 2] + "." + b[at + 3];
      let s = "";
      for (let k = 0; k < 16; k += 2) s += (k ? ":" : "") + ((b[at + k] << 8) | b[at + k + 1]).toString(16);
      return s;
    }
    function u32(i) { return meta[base + i] >>> 0; }

    const pkt = freeze({
      get bytes() { return bytesView(); },
      get caplen() { return meta[base + ${R.OUT_CAPLEN}]; },
      set caplen(value) {
        const limit = meta[base + ${R.CAPLEN}];
        if (!isInteger(value) || value < 0 || value > limit) throw new RangeErrorCtor("pkt.caplen must be an integer from 0 to " + limit);
        meta[base + ${R.OUT_CAPLEN}] = value;
      },
      get len() { return u32(${R.LEN}); },
      get tsSec() { return u32(${R.TS_SEC}); },
      get tsNsec() { return nano ? u32(${R.TS_FRAC}) : u32(${R.TS_FRAC}) * 1000; },
      get timestampMs() { return u32(${R.TS_SEC}) * 1000 + (nano ? u32(${R.TS_FRAC}) / 1e6 : u32(${R.TS_FRAC}) / 1e3); },
      get index() { return index; },
      get interfaceName() { return interfaceName; },
      get linkType() { return linkType; },
      get etherType() { const v = meta[base + ${F.etherType}]; return v < 0 ? undefined : v; },
      get vlanCount() { return meta[base + ${F.vlanCount}]; },
      get vlanId() { const v = meta[base + ${F.vlanId}]; return v < 0 ? undefined : v; },
      get l3Offset() { const v = meta[base + ${F.l3Offset}]; return v < 0 ? undefined : v; },
      get ipVersion() { return meta[base + ${F.ipVersion}]; },
      get protocol() { const v = meta[base + ${F.protocol}]; return v < 0 ? undefined : v; },
      get l3End() { const v = meta[base + ${F.l3End}]; return v < 0 ? undefined : v; },
      get isFragment() { return (meta[base + ${F.l3Flags}] & 1) !== 0; },
      get l4Offset() { const v = meta[base + ${F.l4Offset}]; return v < 0 ? undefined : v; },
      get payloadOffset() { const v = meta[base + ${F.payloadOffset}]; return v < 0 ? undefined : v; },
      get payloadLength() {
        const p = meta[base + ${F.payloadOffset}], e = meta[base + ${F.l3End}];
        return p < 0 ? undefined : e > p ? e - p : 0;
      },
      get srcPort() { const v = meta[base + ${F.srcPort}]; return v < 0 ? undefined : v; },
      get dstPort() { const v = meta[base + ${F.dstPort}]; return v < 0 ? undefined : v; },
      get tcpFlags() { const v = meta[base + ${F.tcpFlags}]; return v < 0 ? undefined : v; },
      get flowHash() { return meta[base + ${F.flowHash}] >>> 0; },
      get direction() { const d = meta[base + ${R.DIRECTION}]; return d === 1 ? "in" : d === 2 ? "out" : undefined; },
      get badChecksum() { return (meta[base + ${R.MARKS}] & ${RECORD_MARK.BAD_CHECKSUM}) !== 0; },
      get srcAddr() {
        const l3 = meta[base + ${F.l3Offset}], v = meta[base + ${F.ipVersion}];
        return v === 4 ? ipText(l3 + 12, true) : v === 6 ? ipText(l3 + 8, false) : undefined;
      },
      get dstAddr() {
        const l3 = meta[base + ${F.l3Offset}], v = meta[base + ${F.ipVersion}];
        return v === 4 ? ipText(l3 + 16, true) : v === 6 ? ipText(l3 + 24, false) : undefined;
      },
    });

    const ctx = freeze({
      state: {},
      tag(name) {
        if (typeof name !== "string") throw new TypeErrorCtor("ctx.tag(name): name must be a string");
        const n = name.length;
        if (n === 0 || n > ${L.TAG_CHARS}) throw new RangeErrorCtor("ctx.tag(name): 1 to ${L.TAG_CHARS} characters");
        // Per-batch cap keeps memory bounded; the host enforces the per-packet limit and dedupes.
        if (tagCount >= tagCap) return;
        tagCount++;
        out += "${RESULT_FIELD.TAG}" + index + ";" + n + ":" + name;
      },
      sample(n, key) {
        if (!isInteger(n) || n < 1) throw new RangeErrorCtor("ctx.sample(n): n must be a positive integer");
        if (key === undefined) key = meta[base + ${F.flowHash}];
        else if (typeof key !== "string" && typeof key !== "number") throw new TypeErrorCtor("ctx.sample(n, key): key must be a string or a number");
        // Position of this packet in its key's cycle of n: the first of every n passes.
        let position = mapGet(sampleCounts, key);
        if (position === undefined) {
          if (mapSize(sampleCounts) >= ${L.SAMPLE_KEYS}) mapClear(sampleCounts);
          position = 0;
        }
        mapSet(sampleCounts, key, position + 1 >= n ? 0 : position + 1);
        return position === 0;
      },
      log(...parts) {
        if (logCount >= ${L.LOG_LINES_PER_BATCH}) { logsSuppressed++; return; }
        let line = "";
        for (let k = 0; k < parts.length; k++) line += (k ? " " : "") + toString(parts[k]);
        line = stringSlice(line, 0, ${L.LOG_LINE_CHARS});
        logCount++;
        out += "${RESULT_FIELD.LOG}" + line.length + ":" + line;
      },
      fixChecksums(p) {
        if (p !== undefined && p !== pkt) throw new TypeErrorCtor("ctx.fixChecksums(pkt): pass the packet being processed");
        meta[base + ${R.FLAGS}] |= ${RECORD_FLAG.FIX_CHECKSUMS};
      },
    });

    function describe(error) {
      try {
        if (error !== null && typeof error === "object") return stringSlice(toString(error.name) + ": " + toString(error.message), 0, ${L.LOG_LINE_CHARS});
        return stringSlice("thrown value: " + toString(error), 0, ${L.LOG_LINE_CHARS});
      } catch (inner) {
        return "thrown value that cannot be printed";
      }
    }

    function isOutOfMemory(error) {
      try { return error instanceof InternalErrorCtor && error.message === "out of memory"; } catch (inner) { return false; }
    }

    // The host pre-fills VERDICT = PASS, OUT_CAPLEN = caplen, FLAGS = 0 and trusts only
    // records below meta[PROGRESS]; the loop writes a verdict only when it is not a plain pass.
    return function drive(metaBuffer, batchBuffer, ifName) {
      meta = new Int32ArrayCtor(metaBuffer);
      dataBuffer = batchBuffer;
      data = new Uint8ArrayCtor(batchBuffer);
      interfaceName = ifName;
      linkType = meta[${H.LINKTYPE}];
      nano = meta[${H.NANO}];
      const count = meta[${H.COUNT}];
      out = ""; tagCount = 0; tagCap = count * ${L.TAGS_PER_PACKET}; logCount = 0; logsSuppressed = 0;
      viewFor = -1;
      let firstError = null, errorCount = 0, result;
      for (let i = 0; i < count; i++) {
        index = i;
        base = ${META_HEADER_INTS} + i * ${META_RECORD_INTS};
        meta[${H.PROGRESS}] = i;
        try {
          result = hook(pkt, ctx);
        } catch (error) {
          errorCount++;
          if (firstError === null) firstError = describe(error);
          if (isOutOfMemory(error)) {
            meta[base + ${R.VERDICT}] = ${V.OUT_OF_MEMORY};
            meta[${H.STOP}] = ${STOP_REASON.OUT_OF_MEMORY};
            break;
          }
          meta[base + ${R.VERDICT}] = ${V.THREW};
          continue;
        }
        if (result === undefined || result === true || result === "pass") continue;
        if (result === false || result === "drop") {
          meta[base + ${R.VERDICT}] = ${V.DROP};
        } else if (isView(result) && tagOf(result) === "Uint8Array") {
          const length = lengthOf(result);
          const limit = meta[base + ${R.CAPLEN}];
          if (length > limit) {
            meta[base + ${R.VERDICT}] = ${V.BAD_VERDICT};
            errorCount++;
            if (firstError === null) firstError = "returned a Uint8Array of " + length + " bytes, longer than caplen " + limit;
          } else if (viewFor === i && result === view) {
            // The packet's own bytes, edited in place: a pass with edits (pkt.caplen still applies).
          } else {
            setInto(data, result, meta[base + ${R.DATA_OFFSET}]);
            meta[base + ${R.OUT_CAPLEN}] = length;
            meta[base + ${R.VERDICT}] = ${V.REPLACED};
          }
        } else {
          meta[base + ${R.VERDICT}] = ${V.BAD_VERDICT};
          errorCount++;
          if (firstError === null) firstError = "returned " + (result === null ? "null" : typeof result) + "; expected undefined, true, false, \\"pass\\", \\"drop\\" or a Uint8Array";
        }
      }
      if (meta[${H.STOP}] === 0) meta[${H.PROGRESS}] = count;
      view = null; viewFor = -1; index = -1;
      meta = null;
      data = null;
      dataBuffer = null;
      if (logsSuppressed > 0) out += "${RESULT_FIELD.SUPPRESSED}" + logsSuppressed + ";";
      if (firstError !== null) out += "${RESULT_FIELD.ERROR}" + errorCount + ";" + firstError.length + ":" + firstError;
      const text = out;
      out = "";
      return text === "" ? undefined : text;
    };
  };
})()`;
}
