// The JavaScript that runs inside QuickJS around an operator's hook: it walks one batch of
// records per call, presents each as `pkt`, calls the hook, and writes verdicts into an Int32Array.
//
// Why a driver inside the VM: crossing the host/VM boundary costs microseconds (handles, copies),
// so it is crossed twice per batch (buffers in, verdicts out), never per packet. The driver
// exposes no host function at all: ctx.tag/sample/log/fixChecksums only record plain data that
// the host reads after the batch and validates (it trusts nothing the VM writes).
//
// What the driver returns (tag names, log lines, the first error) is bytes, not a string: a
// Uint8Array of entries, each a kind byte, a byte length (u16 LE) and the text as UTF-8 with
// lone surrogates replaced by U+FFFD (RESULT_ENTRY, read by decodeDriverResult). No content
// can break that framing. It used to be one string of "T<index>;<length>:<name>" records with
// lengths in UTF-16 units, read on the host as a NUL-terminated UTF-8 C string (issue 21): a
// "\0" in a tag or log line cut off everything after it, and a lone surrogate came back as
// three characters, so a crafted log line slid the parser into text of the hook's choosing
// (a tag "FORGED" on a packet the hook never ran on, an invented failure report).
// Which packet a tag belongs to is not in the entry: the driver counts each record's tags in
// its meta slot (META_RECORD.TAGS) while it runs that record, and the host hands the tag
// entries out to records in order by those counts. A hook can only tag the packet it runs on.
//
// The bytes are built with intrinsics captured before the hook's module runs (charCodeAt,
// Uint8Array): no array, no JSON, nothing a hook can replace or poison (issue 9: a hook that set
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
  /** Bytes of result entries in the buffer the driver returned (driver writes). */
  RESULT_BYTES: 5,
  /** ctx.log lines over LOG_LINES_PER_BATCH, not sent (driver writes). */
  LOGS_SUPPRESSED: 6,
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
  /** How many of the result's tag entries belong to this record, in order (host pre-fills 0, ctx.tag counts). */
  TAGS: OFFSET_FIELD_COUNT + 10,
} as const;
export const META_RECORD_INTS = OFFSET_FIELD_COUNT + 11;

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
 * Kinds of the driver's result entries: kind (u8), then a u16 LE that is the byte length of the
 * UTF-8 text that follows (TAG, LOG, ERROR), or for TAG_AGAIN the number of an earlier TAG entry
 * of the same batch (0 = the first) whose name is used again, with no text.
 */
export const RESULT_ENTRY = {
  /** A tag name of the next record whose META_RECORD.TAGS count is not used up. */
  TAG: 1,
  /** The same, naming an earlier TAG entry: a hook tags thousands of packets with a few names, and each is encoded and decoded once per batch. */
  TAG_AGAIN: 4,
  /** A ctx.log line. */
  LOG: 2,
  /** The description of the batch's first failed packet (a throw, a bad verdict, out of memory inside the hook). */
  ERROR: 3,
} as const;
export const RESULT_ENTRY_HEADER_BYTES = 3;
/** TAG entries of a batch that TAG_AGAIN can name (its u16); later new names are sent whole every time. */
const TAG_AGAIN_NAMES = 65535;
/** The driver's result buffer starts at this size and doubles as needed. */
const RESULT_INITIAL_BYTES = 4096;
/** A result buffer grown past this (a batch with many long tags) is not kept for the next batch. */
const RESULT_KEEP_BYTES = 65536;
/** UTF-8 bytes of one UTF-16 unit at most (a surrogate pair: 4 bytes for 2 units). */
const UTF8_BYTES_PER_UNIT = 3;

export interface DriverResult {
  /** Tag names in the order ctx.tag was called (so in record order). */
  tagNames: string[];
  logs: string[];
  firstError: string | undefined;
}

const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * Reads the driver's result entries. The VM is untrusted: an entry that overruns the bytes,
 * is longer than its kind allows, or has an unknown kind ends the read, and what was read so
 * far is returned (the caller re-checks every value against its limits). Bytes that are not
 * UTF-8 become U+FFFD.
 */
export function decodeDriverResult(bytes: Uint8Array): DriverResult {
  const result: DriverResult = { tagNames: [], logs: [], firstError: undefined };
  const end = bytes.byteLength;
  let at = 0;
  /** Names of the TAG entries so far, for TAG_AGAIN. */
  const named: string[] = [];
  while (at + RESULT_ENTRY_HEADER_BYTES <= end) {
    const kind = bytes[at]!;
    const length = bytes[at + 1]! | (bytes[at + 2]! << 8);
    const start = at + RESULT_ENTRY_HEADER_BYTES;
    if (kind === RESULT_ENTRY.TAG_AGAIN) {
      const name = named[length];
      if (name === undefined) break;
      result.tagNames.push(name);
      at = start;
      continue;
    }
    if (start + length > end) break;
    const limit = kind === RESULT_ENTRY.TAG ? DRIVER_LIMITS.TAG_CHARS : DRIVER_LIMITS.LOG_LINE_CHARS;
    if (length > limit * UTF8_BYTES_PER_UNIT) break;
    const text = decodeText(bytes, start, length);
    if (kind === RESULT_ENTRY.TAG) {
      result.tagNames.push(text);
      named.push(text);
    } else if (kind === RESULT_ENTRY.LOG) {
      result.logs.push(text);
    } else if (kind === RESULT_ENTRY.ERROR) {
      result.firstError ??= text;
    } else {
      break;
    }
    at = start + length;
  }
  return result;
}

/** Longest ASCII text decoded by hand: short tags are the common case and TextDecoder's call costs more than the loop. */
const ASCII_FAST_PATH_BYTES = 32;

function decodeText(bytes: Uint8Array, start: number, length: number): string {
  if (length <= ASCII_FAST_PATH_BYTES) {
    let text = "";
    let k = 0;
    for (; k < length; k++) {
      const b = bytes[start + k]!;
      if (b >= 0x80) break;
      text += String.fromCharCode(b);
    }
    if (k === length) return text;
  }
  return utf8.decode(bytes.subarray(start, start + length));
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
  const charCodeAt = uncurry(String.prototype.charCodeAt);
  const toString = String;
  const freeze = Object.freeze;
  const isInteger = Number.isInteger;
  const MapCtor = Map;
  const Int32ArrayCtor = Int32Array;
  const Uint8ArrayCtor = Uint8Array;
  const ArrayBufferCtor = ArrayBuffer;
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
    // The batch's result entries (RESULT_ENTRY), appended as they happen.
    let outBuffer = null, out = null, outCapacity = 0, outLength = 0;
    let tagCount = 0, tagCap = 0, logCount = 0, logsSuppressed = 0;
    // Tag names sent whole in this batch -> their TAG entry's number, for TAG_AGAIN.
    const tagNumbers = new MapCtor();
    let tagNames = 0;
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

    function reserve(bytes) {
      const need = outLength + bytes;
      if (need <= outCapacity) return;
      let capacity = outCapacity * 2;
      while (capacity < need) capacity *= 2;
      newResultBuffer(capacity);
    }
    function newResultBuffer(capacity) {
      const next = new ArrayBufferCtor(capacity);
      const bytes = new Uint8ArrayCtor(next);
      if (out !== null && outLength > 0) setInto(bytes, new Uint8ArrayCtor(outBuffer, 0, outLength));
      outBuffer = next; out = bytes; outCapacity = capacity;
    }
    // Appends one entry: kind, byte length (u16 LE), the text as UTF-8 with lone surrogates as
    // U+FFFD. The text is a primitive string of at most LOG_LINE_CHARS units, so its UTF-8 fits a u16.
    function put(kind, text) {
      const units = text.length;
      reserve(${RESULT_ENTRY_HEADER_BYTES} + ${UTF8_BYTES_PER_UNIT} * units);
      const start = outLength;
      let w = start + ${RESULT_ENTRY_HEADER_BYTES};
      for (let k = 0; k < units; k++) {
        let c = charCodeAt(text, k);
        if (c < 0x80) { out[w++] = c; continue; }
        if (c < 0x800) { out[w++] = 0xc0 | (c >> 6); out[w++] = 0x80 | (c & 63); continue; }
        if (c >= 0xd800 && c <= 0xdfff) {
          const low = k + 1 < units ? charCodeAt(text, k + 1) : 0;
          if (c <= 0xdbff && low >= 0xdc00 && low <= 0xdfff) {
            const p = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
            out[w++] = 0xf0 | (p >> 18); out[w++] = 0x80 | ((p >> 12) & 63); out[w++] = 0x80 | ((p >> 6) & 63); out[w++] = 0x80 | (p & 63);
            k++;
            continue;
          }
          c = 0xfffd; // a lone surrogate
        }
        out[w++] = 0xe0 | (c >> 12); out[w++] = 0x80 | ((c >> 6) & 63); out[w++] = 0x80 | (c & 63);
      }
      const length = w - start - ${RESULT_ENTRY_HEADER_BYTES};
      out[start] = kind; out[start + 1] = length & 255; out[start + 2] = length >> 8;
      outLength = w;
    }

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
        // Outside a packet's run (a ctx kept and called later) there is no packet to tag.
        // Per-batch cap keeps memory bounded; the host enforces the per-packet limit and dedupes.
        if (index < 0 || tagCount >= tagCap) return;
        tagCount++;
        const number = mapGet(tagNumbers, name);
        if (number === undefined) {
          put(${RESULT_ENTRY.TAG}, name);
          if (tagNames < ${TAG_AGAIN_NAMES}) mapSet(tagNumbers, name, tagNames);
          tagNames++;
        } else {
          reserve(${RESULT_ENTRY_HEADER_BYTES});
          out[outLength] = ${RESULT_ENTRY.TAG_AGAIN}; out[outLength + 1] = number & 255; out[outLength + 2] = number >> 8;
          outLength += ${RESULT_ENTRY_HEADER_BYTES};
        }
        meta[base + ${R.TAGS}]++;
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
        if (index < 0) return;
        if (logCount >= ${L.LOG_LINES_PER_BATCH}) { logsSuppressed++; return; }
        let line = "";
        for (let k = 0; k < parts.length; k++) line += (k ? " " : "") + toString(parts[k]);
        line = stringSlice(line, 0, ${L.LOG_LINE_CHARS});
        // toString() above may have run hook code that ended the batch's run (index -1) or logged itself.
        if (index < 0) return;
        if (logCount >= ${L.LOG_LINES_PER_BATCH}) { logsSuppressed++; return; }
        logCount++;
        put(${RESULT_ENTRY.LOG}, line);
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
      outLength = 0;
      if (out === null || outCapacity > ${RESULT_KEEP_BYTES}) newResultBuffer(${RESULT_INITIAL_BYTES});
      tagCount = 0; tagCap = count * ${L.TAGS_PER_PACKET}; logCount = 0; logsSuppressed = 0;
      if (tagNames > 0) { mapClear(tagNumbers); tagNames = 0; }
      viewFor = -1;
      let firstError = null, result;
      for (let i = 0; i < count; i++) {
        index = i;
        base = ${META_HEADER_INTS} + i * ${META_RECORD_INTS};
        meta[${H.PROGRESS}] = i;
        try {
          result = hook(pkt, ctx);
        } catch (error) {
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
          if (firstError === null) firstError = "returned " + (result === null ? "null" : typeof result) + "; expected undefined, true, false, \\"pass\\", \\"drop\\" or a Uint8Array";
        }
      }
      if (meta[${H.STOP}] === 0) meta[${H.PROGRESS}] = count;
      view = null; viewFor = -1; index = -1;
      if (firstError !== null) put(${RESULT_ENTRY.ERROR}, firstError);
      meta[${H.RESULT_BYTES}] = outLength;
      meta[${H.LOGS_SUPPRESSED}] = logsSuppressed;
      meta = null;
      data = null;
      dataBuffer = null;
      return outLength === 0 ? undefined : outBuffer;
    };
  };
})()`;
}
