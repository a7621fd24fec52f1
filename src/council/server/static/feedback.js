// Rating an answer (POST /api/feedback). 👍 and 👎 are recorded at once; then a comment may
// follow, and after 👎 a small box "What should it have said?" whose text goes as
// `correction` with rating -1. Leaving the box empty leaves a plain 👎.

import { api } from "./api.js";
import { icon } from "./icons.js";
import { h } from "./markdown.js";

function statusText(turn) {
  if (!turn.rating) return "";
  const what = `Recorded: ${turn.rating === 1 ? "good" : "bad"} answer`;
  const why = turn.comment ? ` — “${turn.comment}”` : "";
  const fix = turn.rating === -1 && turn.correction ? ` · your correction: “${turn.correction}”` : "";
  return what + why + fix;
}

// turn: {exchangeId, rating, comment, correction}; updated as feedback is saved.
export function feedbackRow(turn) {
  const row = h("div", { class: "feedback" });
  if (!turn.exchangeId) {
    row.append(h("span", { class: "hint" },
      "Feedback needs memory: start the server with COUNCIL_MEMORY=true."));
    return row;
  }
  const status = h("span", { class: "fb-status", role: "status" });
  const up = h("button", { type: "button", class: "icon thumb", "aria-label": "Good answer", title: "Good answer" }, icon("up"));
  const down = h("button", { type: "button", class: "icon thumb", "aria-label": "Bad answer", title: "Bad answer" }, icon("down"));
  const comment = h("input", { type: "text", class: "fb-comment", placeholder: "Why? (optional)", maxlength: "4000", "aria-label": "Feedback comment" });
  const save = h("button", { type: "button", class: "small" }, "Save comment");
  const form = h("div", { class: "fb-form", hidden: true }, comment, save);
  const correction = h("textarea", {
    class: "fb-correction", rows: "2", maxlength: "4000", "aria-label": "What should it have said?",
    placeholder: "The answer you expected (optional; Ctrl+Enter sends)",
  });
  const sendFix = h("button", { type: "button", class: "small" }, "Send correction");
  const fixBox = h("div", { class: "fb-fix", hidden: true },
    h("div", { class: "fb-fix-title" }, "What should it have said?"),
    h("div", { class: "fb-fix-row" }, correction, sendFix));

  const show = () => {
    up.setAttribute("aria-pressed", String(turn.rating === 1));
    down.setAttribute("aria-pressed", String(turn.rating === -1));
    status.classList.remove("err");
    status.textContent = statusText(turn);
  };
  const send = async (rating, extra = {}) => {
    status.classList.remove("err");
    status.textContent = "Saving…";
    try {
      await api("/api/feedback", { method: "POST", body: { exchange_id: turn.exchangeId, rating, ...extra } });
      if (rating !== turn.rating) turn.correction = null; // a correction belongs to a 👎
      turn.rating = rating;
      if (extra.comment) turn.comment = extra.comment;
      if (extra.correction) turn.correction = extra.correction;
      show();
      return true;
    } catch (e) {
      status.classList.add("err");
      status.textContent = `Feedback not saved: ${e.message}`;
      return false;
    }
  };
  const rate = async (rating) => {
    if (!(await send(rating))) return;
    form.hidden = false;
    fixBox.hidden = rating !== -1;
    if (rating === -1) correction.focus();
  };
  up.addEventListener("click", () => rate(1));
  down.addEventListener("click", () => rate(-1));
  const saveComment = async () => {
    const text = comment.value.trim();
    if (!text || !turn.rating) return;
    if (await send(turn.rating, { comment: text })) {
      comment.value = "";
      form.hidden = true;
    }
  };
  const saveCorrection = async () => {
    const text = correction.value.trim();
    if (!text || turn.rating !== -1) return; // empty: the plain 👎 already stands
    if (await send(-1, { correction: text })) {
      correction.value = "";
      fixBox.hidden = true;
    }
  };
  save.addEventListener("click", saveComment);
  comment.addEventListener("keydown", (e) => e.key === "Enter" && saveComment());
  sendFix.addEventListener("click", saveCorrection);
  correction.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) saveCorrection();
  });
  row.append(up, down, status, fixBox, form);
  show();
  return row;
}
