// The Memory panel: the facts Council keeps about the user (GET /api/memories), each one
// editable (PATCH) and erasable (DELETE /api/memories/{id}); "show history" adds the facts a
// newer one replaced; "Forget everything about me" erases facts, conversations and answers
// after the user types the confirmation. Fact texts are user data: text nodes only.

import { api, ApiError } from "./api.js";
import { confirmed, icon } from "./icons.js";
import { h } from "./markdown.js";
import { day } from "./recalled.js";

const $ = (id) => document.getElementById(id);
const CONFIRM = "forget everything"; // what DELETE /api/memories asks for, typed by the user

const TELL =
  "Just tell it in chat, in your own words — for example “Remember: my cat is called " +
  "Zorblax” or “I moved to Lisbon” — and the fact appears here a moment after the answer. " +
  "It is then used to answer you, in any conversation.";

let opts = { user: () => "anonymous", forgotten: () => {} };
let factsOn = true;

const whose = () => `user=${encodeURIComponent(opts.user())}`;

function note(text, { err = false } = {}) {
  const el = $("memory-note");
  el.hidden = !text;
  el.textContent = text || "";
  el.classList.toggle("err", err);
}

async function load() {
  const list = $("memory-list");
  $("memory").setAttribute("aria-busy", "true"); // until the list below is drawn
  $("memory-user").textContent = opts.user();
  const history = $("memory-history").checked;
  try {
    const { memories } = await api(`/api/memories?${whose()}${history ? "&history=true" : ""}`);
    factsOn = true;
    list.replaceChildren(...memories.map(factItem));
    note(memories.length ? null : `Nothing remembered yet. ${TELL}`);
  } catch (e) {
    list.replaceChildren();
    // Facts off: the server's message says how to turn them on (COUNCIL_FACTS=true).
    factsOn = !(e instanceof ApiError && e.code === "memory_disabled");
    note(factsOn ? `Could not load your memory: ${e.message}` : e.message, { err: factsOn });
  }
  $("memory-history-field").hidden = !factsOn;
  $("forget").hidden = !factsOn;
  $("memory").setAttribute("aria-busy", "false");
}

function factItem(f) {
  const old = f.superseded_at !== null && f.superseded_at !== undefined;
  const text = h("div", { class: "fact-text" }, f.text);
  const when = h("div", { class: "fact-meta" }, `said ${day(f.said_at)}`,
    old ? h("span", { class: "badge old" }, `replaced by a newer fact on ${day(f.superseded_at)}`) : null);
  const item = h("li", { class: `fact${old ? " superseded" : ""}`, dataset: { id: String(f.id) } });
  const edit = old ? null : h("button", { type: "button", class: "icon", "aria-label": "Edit", title: "Edit" }, icon("pencil"));
  const del = h("button", { type: "button", class: "icon delete", "aria-label": "Delete", title: "Forget this fact" }, icon("trash"));
  const status = h("div", { class: "fact-status hint", role: "status", hidden: true });
  if (edit) edit.addEventListener("click", () => startEdit(item, f));
  del.addEventListener("click", async () => {
    if (!confirmed(del)) return;
    try {
      await api(`/api/memories/${f.id}`, { method: "DELETE" });
      await load();
    } catch (e) {
      status.hidden = false;
      status.classList.add("err");
      status.textContent = `Not deleted: ${e.message}`;
    }
  });
  item.append(h("div", { class: "fact-body" }, text, when, status), h("div", { class: "fact-actions" }, edit, del));
  return item;
}

function startEdit(item, f) {
  const input = h("textarea", { class: "fact-input", rows: "2", maxlength: "1000", "aria-label": "Fact text" });
  input.value = f.text;
  const status = h("div", { class: "hint err", role: "alert", hidden: true });
  const save = h("button", { type: "button", class: "small primary" }, "Save");
  const cancel = h("button", { type: "button", class: "small" }, "Cancel");
  const finish = async (keep) => {
    const text = input.value.trim();
    if (keep && text && text !== f.text) {
      try {
        await api(`/api/memories/${f.id}`, { method: "PATCH", body: { text } });
      } catch (e) {
        status.hidden = false;
        status.textContent = `Not saved: ${e.message}`;
        return;
      }
    }
    await load();
  };
  save.addEventListener("click", () => finish(true));
  cancel.addEventListener("click", () => finish(false));
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      finish(true);
    }
    if (e.key === "Escape") {
      e.preventDefault(); // cancels the edit, not the whole panel
      finish(false);
    }
  });
  item.replaceChildren(h("div", { class: "fact-body" }, input, h("div", { class: "fact-edit" }, save, cancel), status));
  input.focus();
}

// --- forget everything --------------------------------------------------------------------
function resetForget() {
  $("forget-form").hidden = true;
  $("forget-start").hidden = false;
  $("forget-confirm").value = "";
  $("forget-go").disabled = true;
  $("forget-error").hidden = true;
}

async function forgetEverything() {
  const err = $("forget-error");
  try {
    const done = await api("/api/memories", { method: "DELETE", body: { confirm: CONFIRM, user: opts.user() } });
    resetForget();
    await load();
    const d = done.deleted || {};
    note(`Forgotten: ${d.facts || 0} facts, ${d.exchanges || 0} answers and ` +
      `${d.conversations || 0} conversations. ${TELL}`);
    opts.forgotten();
  } catch (e) {
    err.hidden = false;
    err.textContent = `Nothing was erased: ${e.message}`;
  }
}

function wireForget() {
  const typed = $("forget-confirm");
  $("forget-start").addEventListener("click", () => {
    $("forget-start").hidden = true;
    $("forget-form").hidden = false;
    $("forget-who").textContent = opts.user();
    typed.focus();
  });
  typed.addEventListener("input", () => {
    $("forget-go").disabled = typed.value.trim().toLowerCase() !== CONFIRM;
  });
  $("forget-cancel").addEventListener("click", resetForget);
  $("forget-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (typed.value.trim().toLowerCase() === CONFIRM) forgetEverything();
  });
}

// user(): whose memory (the signed-in user, or the "You are" label); forgotten(): called once
// everything was erased, to empty the conversation list and the open conversation.
export function initMemory(options) {
  opts = { ...opts, ...options };
  const dialog = $("memory");
  $("memory-open").addEventListener("click", () => {
    resetForget();
    note(null);
    dialog.showModal();
    load();
  });
  $("memory-close").addEventListener("click", () => dialog.close());
  $("memory-history").addEventListener("change", load);
  wireForget();
}
