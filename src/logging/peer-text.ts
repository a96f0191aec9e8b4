// Peer-supplied text (interface names from OPEN, usernames, hook names, error texts a peer
// sent) goes into log lines only through these helpers, so a peer cannot forge a line: a
// client once sent an OPEN whose "interface name" held a newline and a whole
// "authenticated as admin" line, and it was logged raw.

/**
 * Longest piece of peer text kept in a log line, in characters: names and messages that
 * matter are far shorter, and a peer must not be able to turn one line into megabytes.
 */
export const MAX_PEER_TEXT_CHARS = 200;

// C0 controls, DEL, C1 controls, and the Unicode line/paragraph separators and bidi
// overrides that some viewers render as a line break or use to reorder text (CVE-2021-42574).
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function escapeOne(character: string): string {
  switch (character) {
    case "\n":
      return "\\n";
    case "\r":
      return "\\r";
    case "\t":
      return "\\t";
    default: {
      const code = character.charCodeAt(0);
      return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
    }
  }
}

/**
 * Replaces control characters (and line separators, bidi overrides) by visible escapes
 * (`\n`, `\x1b`, `\u2028`). The logger applies it to every whole message, so no caller can
 * emit a second line by mistake.
 */
export function escapeControlCharacters(text: string): string {
  return text.replace(UNSAFE, escapeOne);
}

/**
 * Peer text for a log line: escaped, double-quoted (quotes and backslashes inside escaped),
 * and cut at MAX_PEER_TEXT_CHARS with the number of characters left out, so a reader always
 * sees where the peer's words start and end.
 */
export function peerText(value: string, maxChars = MAX_PEER_TEXT_CHARS): string {
  const text = String(value);
  const kept = text.length > maxChars ? text.slice(0, maxChars) : text;
  const body = escapeControlCharacters(kept.replace(/[\\"]/g, (c) => `\\${c}`));
  const cut = text.length > maxChars ? `...(+${text.length - maxChars} chars)` : "";
  return `"${body}"${cut}`;
}
