// How hook-supplied text (tag names, ctx.log lines, error messages) is shown to people: the
// hook is untrusted, so its words go through the logger's peerText() escaping like any
// peer's, and a tag name that is not a plain word is quoted so it cannot pass for another
// tag, a count, or a second line.
import { peerText } from "../logging/index.ts";
import type { HookCountersSnapshot } from "./hook-counters.ts";
import { DRIVER_LIMITS } from "./vm-driver.ts";

/** Tag names shown bare: letters, digits and a few separators that cannot be mistaken for the `name=count` or `a,b` around them. */
const PLAIN_TAG = /^[A-Za-z0-9_.:/+-]+$/;

/** A tag name for a terminal or a log line: bare when plain (`dns`), else quoted and escaped (`"a\nb"`). */
export function tagText(name: string): string {
  return PLAIN_TAG.test(name) ? name : peerText(name, DRIVER_LIMITS.TAG_CHARS);
}

/** A ctx.log line or an error message of a hook, quoted and escaped, whole (they are already cut in the VM). */
export function hookLineText(line: string): string {
  return peerText(line, DRIVER_LIMITS.LOG_LINE_CHARS);
}

/** `dns=3 icmp=1 "a b"=2`, plus `(other names)=N` for tags past the counted names; "" when nothing was tagged. */
export function tagCountsText(stats: Pick<HookCountersSnapshot, "tagged" | "taggedOtherNames">): string {
  const words = Object.entries(stats.tagged).map(([name, count]) => `${tagText(name)}=${count}`);
  if (stats.taggedOtherNames > 0) words.push(`(other names)=${stats.taggedOtherNames}`);
  return words.join(" ");
}

/**
 * A record's tags as its pcapng comments (opt_comment, UTF-8). The comment is data in a file,
 * so the names go as they are, control characters included (whoever prints them must escape
 * them, as probe does), with one exception: NUL becomes U+FFFD, because the readers of those
 * files take a comment as a C string and would show "a\0b" as "a" (tshark does), hiding the rest
 * of the name, the same loss issue 21 found in the hook results. The tags were decoded from
 * UTF-8 with every bad sequence and lone surrogate replaced, so the comments are valid UTF-8.
 */
export function tagComments(tags: readonly string[]): readonly string[] {
  if (!tags.some((tag) => tag.includes("\0"))) return tags;
  return tags.map((tag) => tag.replaceAll("\0", "\ufffd"));
}
