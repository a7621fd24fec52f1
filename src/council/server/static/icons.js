// Line icons drawn here as SVG paths (24×24, stroke): emoji fonts are missing on many
// systems (headless Chromium included) and would render as empty boxes.

const PATHS = {
  up: "M7 11v9H4v-9zM7 11l4-8c1.4 0 2.5 1.1 2.5 2.5V9h5a2 2 0 0 1 2 2.3l-1.2 7A2 2 0 0 1 17.3 20H7",
  trash: "M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13M10 11v6M14 11v6",
  pencil: "M4 20h4L19 9l-4-4L4 16zM13 7l4 4",
  plus: "M12 5v14M5 12h14",
  scale: "M12 4v16M8 20h8M5 7h14M5 7l-3 7h6zM19 7l-3 7h6z",
};

export function icon(name, { flip = false } = {}) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "svg-icon");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", PATHS[name === "down" ? "up" : name]);
  if (name === "down" || flip) path.setAttribute("transform", "rotate(180 12 12)");
  svg.append(path);
  return svg;
}

// A delete button's second click: the first turns it into "Delete?" for four seconds.
export function confirmed(button) {
  if (button.classList.contains("confirm")) return true;
  button.classList.add("confirm");
  button.textContent = "Delete?";
  const disarm = () => button.isConnected && (button.classList.remove("confirm"), button.replaceChildren(icon("trash")));
  setTimeout(disarm, 4000);
  return false;
}
