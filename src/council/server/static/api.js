// Talking to the server: JSON calls and the /v1 SSE stream. Every failure becomes an ApiError
// whose message a person can act on (the server's own message when it sent one).

export class ApiError extends Error {
  constructor(message, { status = 0, code = null } = {}) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Sent on every call: the server refuses a state-changing request carried by the session
// cookie alone (a cross-site page cannot add this header), see server/auth.py.
const PAGE = { "X-Council-Page": "1" };

const UNREACHABLE = () =>
  `Cannot reach the Council server at ${location.origin}. Is it running? ` +
  "Start it with: make run (or: council serve), then try again.";

async function errorFrom(res) {
  const text = await res.text().catch(() => "");
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON (a proxy's error page): fall through to the status line
  }
  const err = body && body.error;
  const message = (err && err.message) || `The server answered HTTP ${res.status} ${res.statusText}.`;
  return new ApiError(message, { status: res.status, code: err && err.code });
}

export async function api(path, { method = "GET", body, signal } = {}) {
  let res;
  try {
    res = await fetch(path, {
      method,
      signal,
      headers: body === undefined ? PAGE : { ...PAGE, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(UNREACHABLE());
  }
  if (!res.ok) throw await errorFrom(res);
  return res.status === 204 ? null : res.json();
}

// POST /v1/chat/completions with stream: true. `on` receives:
//   delta(text)   a piece of the answer
//   event(ev)     a council_event (heads finishing) — optional, the server may not send any
//   final(meta)   the `council` block of the finishing chunk (votes, confidence, ...)
// Resolves when [DONE] arrives; rejects with ApiError on any failure, including one the
// server reports in-band after the headers were sent.
export async function streamChat(payload, on, signal) {
  let res;
  try {
    res = await fetch("/v1/chat/completions", {
      method: "POST",
      signal,
      headers: { ...PAGE, "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ ...payload, stream: true }),
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(UNREACHABLE());
  }
  if (!res.ok) throw await errorFrom(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let done = false;
  let failure = null;
  const handle = (data) => {
    if (data === "[DONE]") {
      done = true;
      return;
    }
    let obj;
    try {
      obj = JSON.parse(data);
    } catch {
      failure = new ApiError(`The server sent an unreadable stream line: ${data.slice(0, 120)}`);
      return;
    }
    if (obj.error) {
      failure = new ApiError(obj.error.message || "The server reported an error.", {
        code: obj.error.code,
      });
      return;
    }
    if (obj.council_event) on.event && on.event(obj.council_event);
    for (const choice of obj.choices || []) {
      const text = choice.delta && choice.delta.content;
      if (text) on.delta(text);
      if (choice.finish_reason) on.final(obj.council || null, choice.finish_reason);
    }
  };
  while (!done) {
    let step;
    try {
      step = await reader.read();
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError(
        "The connection to the server dropped before the answer finished. " +
          "Check that the server is still running (its log says why it stopped).",
      );
    }
    if (step.done) break;
    buffer += step.value.replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of block.split("\n")) {
        if (line.startsWith("data:")) handle(line.slice(5).trim());
      }
    }
  }
  if (failure) throw failure;
  if (!done) {
    throw new ApiError(
      "The server closed the stream before the answer was complete. Its log has the details.",
    );
  }
}
