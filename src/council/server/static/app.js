// The chat page: state, the sidebar of conversations, the composer. The conversation id lives
// in the URL hash (#c=ID) so a reload or a bookmark lands in the same conversation;
// the browser's choices (user, mode, strategy) live in localStorage.

import { api, ApiError, streamChat } from "./api.js";
import { confirmed, icon } from "./icons.js";
import { h } from "./markdown.js";
import { initMemory } from "./memory.js";
import { signedIn } from "./session.js";
import { TurnView } from "./turn.js";

const $ = (id) => document.getElementById(id);
const store = {
  get: (key, fallback) => localStorage.getItem(`council.${key}`) ?? fallback,
  set: (key, value) => localStorage.setItem(`council.${key}`, value),
};

const state = {
  config: null, // GET /api/strategies
  user: store.get("user", "anonymous"),
  mode: store.get("mode", "council"), // "council" (the ballot) or "single" (the fast head)
  strategy: store.get("strategy", ""),
  cid: null,
  title: null,
  turns: [], // TurnView objects of the open conversation
  busy: null, // AbortController of the request in flight
  historyOn: true,
};

// randomUUID needs a secure context; a LAN address over http is not one.
function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

function banner(message) {
  const el = $("banner");
  el.hidden = !message;
  el.replaceChildren(message ? h("span", {}, message) : "");
  if (message) el.append(h("button", { type: "button", class: "icon", "aria-label": "Dismiss", onclick: () => banner(null) }, "✕"));
}

function ago(seconds) {
  const d = Date.now() / 1000 - seconds;
  if (d < 60) return "just now";
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  return new Date(seconds * 1000).toLocaleDateString();
}

// --- controls ----------------------------------------------------------------------------
function renderControls() {
  const { config } = state;
  for (const b of document.querySelectorAll("[data-mode]")) {
    b.setAttribute("aria-pressed", String(b.dataset.mode === state.mode));
  }
  const fast = config && config.fast_head;
  $("mode-single").title = fast ? `One head answers, no ballot: ${fast}` : "No enabled head";
  const select = $("strategy");
  select.disabled = state.mode === "single";
  $("strategy-field").classList.toggle("off", state.mode === "single");
  if (config && select.options.length === 0) {
    for (const name of config.strategies) {
      select.append(h("option", { value: name, title: config.descriptions[name] || "" }, name));
    }
  }
  if (config && !config.strategies.includes(state.strategy)) state.strategy = config.default;
  select.value = state.strategy;
  select.title = (config && config.descriptions[state.strategy]) || "";
}

function setMode(mode) {
  state.mode = mode;
  store.set("mode", mode);
  renderControls();
}

// --- sidebar -----------------------------------------------------------------------------
async function refreshList() {
  const list = $("conversations");
  const note = $("history-note");
  try {
    const { conversations } = await api(`/api/conversations?user=${encodeURIComponent(state.user)}`);
    state.historyOn = true;
    note.hidden = true;
    list.replaceChildren(...conversations.map(conversationItem));
    if (!conversations.length) list.append(h("p", { class: "hint" }, "No conversations yet."));
  } catch (e) {
    state.historyOn = !(e instanceof ApiError && e.code === "memory_disabled");
    note.hidden = false;
    note.textContent = state.historyOn ? `Could not load conversations: ${e.message}` : e.message;
    note.classList.toggle("err", state.historyOn);
    list.replaceChildren();
  }
}

function conversationItem(c) {
  const title = h("a", { class: "conv-title", href: `#c=${encodeURIComponent(c.id)}` }, c.title || "Untitled");
  const when = h("span", { class: "conv-meta" }, `${c.turns} turn${c.turns === 1 ? "" : "s"} · ${ago(c.updated_at)}`);
  const item = h("div", { class: `conv${c.id === state.cid ? " active" : ""}`, dataset: { id: c.id } });
  const rename = h("button", { type: "button", class: "icon rename", "aria-label": "Rename", title: "Rename" }, icon("pencil"));
  const del = h("button", { type: "button", class: "icon delete", "aria-label": "Delete", title: "Delete" }, icon("trash"));
  rename.addEventListener("click", () => startRename(item, c));
  del.addEventListener("click", async () => {
    if (!confirmed(del)) return;
    try {
      await api(`/api/conversations/${encodeURIComponent(c.id)}`, { method: "DELETE" });
      if (c.id === state.cid) newConversation();
      await refreshList();
    } catch (e) {
      banner(`Could not delete “${c.title}”: ${e.message}`);
    }
  });
  item.append(h("div", { class: "conv-text" }, title, when), rename, del);
  return item;
}

function startRename(item, c) {
  const input = h("input", { type: "text", class: "rename-input", value: c.title || "", maxlength: "200", "aria-label": "New title" });
  let settled = false;
  const finish = async (save) => {
    if (settled) return;
    settled = true;
    const title = input.value.trim();
    if (save && title && title !== c.title) {
      try {
        await api(`/api/conversations/${encodeURIComponent(c.id)}`, { method: "PATCH", body: { title } });
        if (c.id === state.cid) setTitle(title);
      } catch (e) {
        banner(`Could not rename: ${e.message}`);
      }
    }
    await refreshList();
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") finish(true);
    if (e.key === "Escape") finish(false);
  });
  input.addEventListener("blur", () => finish(true));
  item.replaceChildren(input);
  input.focus();
  input.select();
}

function markActive() {
  for (const el of document.querySelectorAll(".conv")) {
    el.classList.toggle("active", el.dataset.id === state.cid);
  }
}

function setTitle(title) {
  state.title = title;
  $("title").textContent = title || "New conversation";
  document.title = title ? `${title} · Council` : "Council";
}

// --- conversations -----------------------------------------------------------------------
function showEmpty() {
  $("empty").hidden = state.turns.length > 0;
}

function newConversation() {
  openConversation(newId(), { fresh: true });
}

async function openConversation(cid, { fresh = false } = {}) {
  if (state.busy) state.busy.abort();
  state.cid = cid;
  store.set("cid", cid);
  if (location.hash !== `#c=${cid}`) history.replaceState(null, "", `#c=${cid}`);
  state.turns = [];
  $("messages").replaceChildren($("empty"));
  setTitle(null);
  showEmpty();
  markActive();
  closeDrawer();
  if (fresh || !state.historyOn) return;
  try {
    const conv = await api(`/api/conversations/${encodeURIComponent(cid)}`);
    if (state.cid !== cid) return; // another conversation was opened meanwhile
    setTitle(conv.title);
    for (const ex of conv.exchanges) {
      const last = ex.feedback.length ? ex.feedback[ex.feedback.length - 1] : null;
      const comment = [...ex.feedback].reverse().find((f) => f.comment);
      const fix = [...ex.feedback].reverse().find((f) => f.correction);
      addTurn({
        prompt: ex.prompt,
        answer: ex.answer,
        meta: ex.meta,
        exchangeId: ex.exchange_id,
        rating: last ? last.rating : 0,
        comment: comment ? comment.comment : null,
        correction: fix ? fix.correction : null,
      });
    }
    scrollDown(true);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      // Never answered (a fresh id) or deleted: a deleted id must not be reused, so start anew.
      if (state.cid === cid) openConversation(newId(), { fresh: true });
    } else if (!(e instanceof ApiError && e.code === "memory_disabled")) {
      banner(`Could not open the conversation: ${e.message}`);
    }
  }
}

function addTurn(turn) {
  const view = new TurnView(turn, { onRetry: retry });
  state.turns.push(view);
  $("messages").append(view.el);
  showEmpty();
  return view;
}

function scrollDown(force = false) {
  const box = $("messages");
  const near = box.scrollHeight - box.scrollTop - box.clientHeight < 160;
  if (force || near) box.scrollTop = box.scrollHeight;
}

// The history the heads see: earlier answered turns, oldest dropped past the server's limit.
function history_(prompt) {
  const messages = [{ role: "user", content: prompt }];
  let size = prompt.length;
  const limit = (state.config && state.config.max_prompt_chars) || 32000;
  const done = state.turns.filter((v) => v.turn.answer && !v.turn.error && v.turn.meta);
  for (const v of done.reverse()) {
    const add = v.turn.prompt.length + v.turn.answer.length;
    if (size + add > limit) break;
    size += add;
    messages.unshift({ role: "user", content: v.turn.prompt }, { role: "assistant", content: v.turn.answer });
  }
  return messages;
}

// --- sending -----------------------------------------------------------------------------
async function send(prompt) {
  if (state.busy || !prompt.trim()) return;
  const single = state.mode === "single";
  const config = state.config || {};
  const messages = history_(prompt);
  const view = addTurn({ prompt });
  const payload = {
    model: single ? config.fast_head || "" : "council",
    messages,
    user: state.user,
    conversation_id: state.cid,
  };
  if (!single) payload.strategy = state.strategy;
  const heads = single ? [config.fast_head].filter(Boolean) : [...(config.heads || [])];
  view.waiting(heads);
  scrollDown(true);
  const controller = new AbortController();
  state.busy = controller;
  setBusy(true);
  try {
    if (single && !config.fast_head) {
      throw new ApiError("Single-head mode needs an enabled head; this server has none (see GET /health).");
    }
    await streamChat(payload, {
      event: (ev) => view.headDone(ev),
      delta: (text) => {
        view.delta(text);
        scrollDown();
      },
      final: (meta) => meta && view.finish(meta),
    }, controller.signal);
    if (!view.turn.meta) view.finish({});
    if (state.historyOn) refreshList();
    if (!state.title) setTitle(prompt.slice(0, 80));
  } catch (e) {
    view.fail(e.name === "AbortError"
      ? "Stopped. Send it again to get an answer."
      : e.message);
  } finally {
    if (state.busy === controller) state.busy = null;
    setBusy(false);
    refreshHealth();
    scrollDown();
  }
}

function retry(view) {
  if (state.busy) return;
  view.el.remove();
  state.turns = state.turns.filter((v) => v !== view);
  showEmpty();
  send(view.turn.prompt);
}

function setBusy(busy) {
  const button = $("send");
  button.textContent = busy ? "Stop" : "Send";
  button.classList.toggle("stop", busy);
  button.setAttribute("aria-label", busy ? "Stop" : "Send");
}

// --- health ------------------------------------------------------------------------------
async function refreshHealth() {
  const el = $("health");
  try {
    const health = await api("/health");
    const enabled = health.heads.filter((x) => x.enabled);
    const ready = enabled.filter((x) => x.status === "ready");
    el.className = `health ${health.status}`;
    el.textContent = `${ready.length}/${enabled.length} heads ready`;
    el.title = enabled
      .map((x) => `${x.id}: ${x.status}${x.last_error ? ` — last error: ${x.last_error}` : ""}`)
      .join("\n");
  } catch (e) {
    el.className = "health down";
    el.textContent = "server unreachable";
    el.title = e.message;
  }
}

// --- drawer (narrow screens) -------------------------------------------------------------
function openDrawer() {
  document.body.classList.add("drawer-open");
}
function closeDrawer() {
  document.body.classList.remove("drawer-open");
}

// --- start -------------------------------------------------------------------------------
function cidFromHash() {
  const m = location.hash.match(/^#c=([^&]+)/);
  return m ? decodeURIComponent(m[1]) : null;
}

function wire() {
  const input = $("input");
  const grow = () => {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 220)}px`;
  };
  input.addEventListener("input", grow);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      if (!state.busy) $("composer").requestSubmit(); // Enter never stops an answer; Stop does
    }
  });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    if (state.busy) {
      state.busy.abort();
      return;
    }
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    grow();
    send(text);
  });
  for (const b of document.querySelectorAll("[data-mode]")) {
    b.addEventListener("click", () => setMode(b.dataset.mode));
  }
  $("strategy").addEventListener("change", (e) => {
    state.strategy = e.target.value;
    store.set("strategy", state.strategy);
    renderControls();
  });
  const user = $("user");
  user.value = state.user;
  user.addEventListener("change", async () => {
    state.user = user.value.trim() || "anonymous";
    user.value = state.user;
    store.set("user", state.user);
    newConversation();
    await refreshList();
  });
  $("new-chat").addEventListener("click", newConversation);
  // After "forget everything" the open conversation and the list are gone: show that.
  initMemory({ user: () => state.user, forgotten: () => (newConversation(), refreshList()) });
  $("menu").addEventListener("click", openDrawer);
  $("scrim").addEventListener("click", closeDrawer);
  document.addEventListener("keydown", (e) => e.key === "Escape" && closeDrawer());
  window.addEventListener("hashchange", () => {
    const cid = cidFromHash();
    if (cid && cid !== state.cid) openConversation(cid);
  });
  for (const b of document.querySelectorAll("[data-example]")) {
    b.addEventListener("click", () => send(b.textContent));
  }
}

async function main() {
  wire();
  renderControls();
  const who = await signedIn(); // in keys mode, the key's user is who the page speaks for
  if (who.user) state.user = who.user;
  try {
    state.config = await api("/api/strategies");
  } catch (e) {
    banner(`The server did not answer: ${e.message}`);
  }
  renderControls();
  refreshHealth();
  await refreshList();
  const cid = cidFromHash() || store.get("cid", null);
  if (cid) await openConversation(cid);
  else newConversation();
  document.body.classList.add("ready");
}

main();
