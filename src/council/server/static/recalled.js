// What memory went into an answer, shown under it: the user's own facts with the day each was
// said, then, apart and folded, the council's past answers (which may be wrong) and knowledge
// passages. Everything here is text (h() makes text nodes), never HTML.

import { h } from "./markdown.js";

// The day in UTC, as the prompt shows it to the heads ("- (2026-05-01) I live in Lisbon").
export function day(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds)) return "an unknown day";
  return new Date(seconds * 1000).toISOString().slice(0, 10);
}

const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;

function folded(cls, title, items, line) {
  return h("details", { class: `used-more ${cls}` },
    h("summary", {}, title),
    h("ul", {}, items.map((r) => h("li", {}, line(r)))));
}

// null when nothing was recalled. Items from before facts existed carry kind "memory" too.
export function memoryUsed(recalled) {
  const items = (Array.isArray(recalled) ? recalled : []).filter((r) => r && typeof r === "object");
  const facts = items.filter((r) => r.kind === "fact").sort((a, b) => (b.said_at || 0) - (a.said_at || 0));
  const knowledge = items.filter((r) => r.kind === "knowledge");
  const past = items.filter((r) => r.kind !== "fact" && r.kind !== "knowledge");
  if (!items.length) return null;
  return h("div", { class: "used" },
    facts.length
      ? h("div", { class: "used-facts" },
          h("div", { class: "used-title" }, `What you told it, used here · ${count(facts.length, "fact", "facts")}`),
          h("ul", {}, facts.map((f) => h("li", { class: "used-fact" },
            h("span", { class: "used-text" }, f.text || ""),
            h("span", { class: "used-when" }, `said ${day(f.said_at)}`)))))
      : null,
    past.length
      ? folded("used-past", `Past answers recalled · ${past.length} (the council's own, may be wrong)`,
          past, (r) => r.text || r.snippet || "")
      : null,
    knowledge.length
      ? folded("used-knowledge", `Knowledge recalled · ${knowledge.length}`, knowledge,
          (k) => `${k.source ? `${k.source}${k.position !== undefined ? `, part ${k.position}` : ""}: ` : ""}${k.text || ""}`)
      : null,
  );
}
