// One exchange on screen: the user's message, the answer as it streams, then the verdict's
// meta line, the memory it used, the ballot (every head, failed ones included) and feedback.

import { feedbackRow } from "./feedback.js";
import { icon } from "./icons.js";
import { h, markdownInto } from "./markdown.js";
import { memoryUsed } from "./recalled.js";

export function formatMs(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
}

export function formatCost(usd) {
  if (!usd) return "$0";
  return usd < 0.0001 ? "<$0.0001" : `$${usd.toFixed(4)}`;
}

function level(confidence) {
  return confidence >= 0.75 ? "high" : confidence >= 0.5 ? "mid" : "low";
}

// A stable hue per cluster so equal answers share a colour across the ballot.
function clusterBadge(cluster) {
  if (cluster === null || cluster === undefined) return null;
  return h("span", { class: `badge cluster c${cluster % 6}`, title: "Answers in one cluster agree" },
    `cluster ${cluster + 1}`);
}

// "counted as 56" helps when a head said "The answer is 56."; for free text it is noise.
function countedDiffers(v) {
  const squash = (t) => String(t || "").toLowerCase().replace(/\s+/g, " ").trim();
  return v.extracted && v.extracted.length <= 40 && squash(v.extracted) !== squash(v.answer);
}

function voteItem(v) {
  const failed = Boolean(v.error);
  return h("li", { class: `vote${v.won ? " won" : ""}${failed ? " failed" : ""}` },
    h("div", { class: "vote-top" },
      h("span", { class: "head-id" }, v.head),
      v.won ? h("span", { class: "badge win" }, "✓ winner") : null,
      failed ? h("span", { class: "badge fail" }, "✗ failed") : clusterBadge(v.cluster),
      h("span", { class: "vote-stat" }, formatMs(v.latency_ms)),
      !failed && v.weight !== undefined ? h("span", { class: "vote-stat" }, `weight ${+v.weight.toFixed(2)}`) : null,
    ),
    failed
      ? h("div", { class: "vote-error" }, v.error)
      : h("div", { class: "vote-answer" }, v.answer || "(empty answer)"),
    !failed && countedDiffers(v)
      ? h("div", { class: "vote-extracted" }, "counted as ", h("code", {}, v.extracted))
      : null,
  );
}

export function ballot(meta) {
  const votes = meta.votes || [];
  const failed = votes.filter((v) => v.error).length;
  const summary = `Ballot · ${votes.length} head${votes.length === 1 ? "" : "s"}` +
    (failed ? ` · ${failed} failed` : "");
  const notes = (meta.notes || []).filter(Boolean);
  return h("details", { class: "ballot" },
    h("summary", {}, summary),
    h("ol", { class: "votes" }, votes.map(voteItem)),
    notes.length ? h("ul", { class: "notes" }, notes.map((n) => h("li", {}, n))) : null,
  );
}

function metaLine(meta) {
  const c = typeof meta.confidence === "number" ? meta.confidence : null;
  const bar = h("span", { class: "conf-bar" }, h("span", { class: `conf-fill ${c === null ? "" : level(c)}` }));
  if (c !== null) bar.firstChild.style.width = `${Math.round(c * 100)}%`;
  return h("div", { class: "meta" },
    h("span", { class: "stat", title: "Share of the answering weight behind the winner" },
      bar, `confidence ${c === null ? "–" : Math.round(c * 100) + "%"}`),
    h("span", { class: "stat", title: "How the ballot was decided" }, `strategy ${meta.strategy || "–"}`),
    h("span", { class: "stat", title: "Time to decide" }, formatMs(meta.latency_ms)),
    h("span", { class: "stat", title: "Cost of every head call" }, `cost ${formatCost(meta.cost_usd)}`),
  );
}

// A turn: {prompt, answer, meta, exchangeId, rating, comment, correction, error}. The
// constructor draws it; the streaming methods update the pieces in place.
export class TurnView {
  constructor(turn, { onRetry } = {}) {
    this.turn = turn;
    this.onRetry = onRetry;
    this.answerEl = h("div", { class: "answer markdown" });
    this.progressEl = h("div", { class: "progress", hidden: true });
    this.extraEl = h("div", { class: "extra" });
    this.el = h("article", { class: "turn" },
      h("div", { class: "msg user" }, h("div", { class: "bubble" }, turn.prompt)),
      h("div", { class: "msg assistant" },
        h("div", { class: "avatar", "aria-hidden": "true" }, icon("scale")),
        h("div", { class: "body" }, this.progressEl, this.answerEl, this.extraEl)),
    );
    if (turn.answer) markdownInto(this.answerEl, turn.answer);
    if (turn.meta) this.finish(turn.meta);
    if (turn.error) this.fail(turn.error);
  }

  waiting(heads) {
    this.started = performance.now();
    this.heads = heads;
    this.done = new Map();
    this.progressEl.hidden = false;
    this.el.classList.add("streaming");
    this.tick();
    this.timer = setInterval(() => this.tick(), 100);
  }

  tick() {
    const secs = ((performance.now() - this.started) / 1000).toFixed(1);
    const chips = this.heads.map((id) => {
      const ev = this.done.get(id);
      if (!ev) return h("span", { class: "chip pending" }, id);
      return ev.error
        ? h("span", { class: "chip failed", title: ev.error }, `${id} ✗`)
        : h("span", { class: "chip ok" }, `${id} · ${formatMs(ev.latency_ms)}`);
    });
    const label = this.turn.answer
      ? "Answer decided, streaming…"
      : this.done.size
        ? `Heads answering… ${this.done.size}/${this.heads.length}`
        : `Asking ${this.heads.length} head${this.heads.length === 1 ? "" : "s"}…`;
    this.progressEl.replaceChildren(
      h("span", { class: "spinner", "aria-hidden": "true" }),
      h("span", { class: "progress-label" }, label),
      h("span", { class: "elapsed" }, `${secs} s`),
      h("span", { class: "chips" }, chips),
    );
  }

  headDone(ev) {
    if (ev.event !== "head_done" || !ev.head) return;
    if (!this.heads.includes(ev.head)) this.heads.push(ev.head);
    this.done.set(ev.head, ev);
    this.tick();
  }

  delta(text) {
    this.turn.answer = (this.turn.answer || "") + text;
    markdownInto(this.answerEl, this.turn.answer);
  }

  stop() {
    clearInterval(this.timer);
    this.progressEl.hidden = true;
    this.el.classList.remove("streaming");
  }

  finish(meta) {
    this.stop();
    this.turn.meta = meta;
    this.turn.exchangeId = meta.exchange_id || null;
    if (this.turn.exchangeId) this.el.dataset.exchangeId = this.turn.exchangeId;
    const parts = [metaLine(meta), memoryUsed(meta.recalled), ballot(meta), feedbackRow(this.turn)];
    this.extraEl.replaceChildren(...parts.filter(Boolean));
  }

  fail(message) {
    this.stop();
    this.turn.error = message;
    this.el.classList.add("failed");
    const retry = this.onRetry
      ? h("button", { type: "button", class: "small", onclick: () => this.onRetry(this) }, "Try again")
      : null;
    this.extraEl.replaceChildren(
      h("div", { class: "error", role: "alert" },
        h("strong", {}, "No answer. "), message, retry ? " " : null, retry),
    );
  }
}
