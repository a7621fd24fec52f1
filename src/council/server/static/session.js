// Signing in: GET /api/session says the mode. In "keys" mode the page asks for a key once,
// trades it for an HttpOnly session cookie (POST /api/session), and from then on the key's
// user is who the page speaks for; in "single-user" mode nothing changes ("You are" is a label).

import { api, ApiError } from "./api.js";

const $ = (id) => document.getElementById(id);

function askForKey(message) {
  const dialog = $("signin");
  const form = $("signin-form");
  const note = $("signin-error");
  note.textContent = message || "";
  note.hidden = !message;
  dialog.showModal();
  $("signin-key").focus();
  return new Promise((resolve) => {
    form.onsubmit = async (e) => {
      e.preventDefault();
      const key = $("signin-key").value.trim();
      if (!key) return;
      try {
        const who = await api("/api/session", { method: "POST", body: { key } });
        $("signin-key").value = "";
        dialog.close();
        resolve(who);
      } catch (err) {
        note.textContent = err instanceof ApiError ? err.message : String(err);
        note.hidden = false;
      }
    };
  });
}

// Resolves with {mode, user, admin} once this browser may use the server.
export async function signedIn() {
  let who;
  try {
    who = await api("/api/session");
  } catch (e) {
    return { mode: "single-user", user: null, admin: false }; // the page reports the outage
  }
  if (who.mode === "keys" && !who.user) who = await askForKey("");
  show(who);
  return who;
}

function show(who) {
  const mode = $("mode-note");
  const out = $("sign-out");
  if (who.mode !== "keys") {
    mode.textContent = "Single-user mode: no sign-in; the name is a label.";
    return;
  }
  mode.textContent = `Signed in as ${who.user}${who.admin ? " (admin)" : ""}.`;
  const user = $("user");
  user.value = who.user;
  user.readOnly = true;
  user.title = "Your key decides who you are";
  out.hidden = false;
  out.onclick = async () => {
    await api("/api/session", { method: "DELETE" }).catch(() => null);
    location.reload();
  };
}
