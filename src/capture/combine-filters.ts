// Joins filter expressions with "and", parenthesising each, skipping empty ones; used to add
// "leave out my own traffic" clauses to an operator's filter without changing its meaning.

export function combineFilters(...expressions: (string | undefined)[]): string {
  const parts = expressions.map((e) => e?.trim() ?? "").filter((e) => e.length > 0);
  if (parts.length <= 1) return parts[0] ?? "";
  return parts.map((e) => `(${e})`).join(" and ");
}
