// xenlive web console: keeps the domain table current and sends actions (with the token) by POST.
"use strict";

const POLL_MS = 2000;
let consoleName = null;

function formatMemory(mib) { return mib === null ? "-" : `${mib} MiB`; }

function cell(row, content) {
  const td = document.createElement("td");
  if (content instanceof Node) td.appendChild(content); else td.textContent = content;
  row.appendChild(td);
  return td;
}

function renderRow(domain) {
  const row = document.createElement("tr");
  row.dataset.name = domain.name;
  row.dataset.actions = domain.actions.join(" ");
  cell(row, domain.name);
  const state = document.createElement("span");
  state.className = `state state-${domain.state.replace(/ /g, "-")}`;
  state.textContent = domain.state;
  const stateCell = cell(row, state);
  if (domain.left_out) {  // not on this ISO: why
    const why = document.createElement("span");
    why.className = "why";
    why.textContent = domain.left_out;
    stateCell.append(" ", why);
  }
  cell(row, formatMemory(domain.memory));
  cell(row, domain.vcpus === null ? "-" : String(domain.vcpus));
  cell(row, domain.uptime_text);
  cell(row, domain.ip);
  const actions = cell(row, "");
  actions.className = "actions";
  for (const action of domain.actions) {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.action = action;
    button.dataset.name = domain.name;
    button.textContent = action;
    actions.appendChild(button);
  }
  if (domain.name !== "Domain-0" && !domain.left_out) {
    const link = document.createElement("a");
    link.className = "console-link";
    link.href = `/console/${encodeURIComponent(domain.name)}`;
    link.textContent = "console";
    actions.append(" ", link);
  }
  return row;
}

// Rows are updated in place while their actions stay the same, so a button is not swapped under the pointer.
function updateTable(domains) {
  const tbody = document.querySelector("#domains tbody");
  const old = new Map([...tbody.rows].map((row) => [row.dataset.name, row]));
  const rows = domains.map((domain) => {
    const fresh = renderRow(domain);
    const row = old.get(domain.name);
    if (!row || row.dataset.actions !== fresh.dataset.actions) return fresh;
    for (let i = 0; i < 6; i++) row.cells[i].replaceChildren(...fresh.cells[i].childNodes);
    return row;
  });
  tbody.replaceChildren(...rows);
}

async function refresh() {
  try {
    const answer = await fetch("/api/domains", { headers: { Accept: "application/json" } });
    const data = await answer.json();
    updateTable(data.domains);
    document.getElementById("error").textContent = data.error ? `toolstack: ${data.error}` : "";
    document.getElementById("updated").textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  } catch (e) {
    document.getElementById("error").textContent = `no answer from dom0 (${e})`;
  }
  if (consoleName !== null) await refreshConsole();
}

async function refreshConsole() {
  const answer = await fetch(`/api/console/${encodeURIComponent(consoleName)}`);
  const data = await answer.json();
  const pre = document.getElementById("console-text");
  const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.textContent = answer.ok ? data.console || "(no output yet)" : data.error;
  if (atEnd) pre.scrollTop = pre.scrollHeight;
}

function showMessage(ok, text) {
  const message = document.getElementById("message");
  message.className = ok ? "ok" : "failed";
  message.textContent = text;
}

async function act(action, name) {
  if (!window.confirm(`${action} ${name}?`)) return;
  const token = document.getElementById("token").value.trim();
  sessionStorage.setItem("xenlive-token", token);
  showMessage(true, `${action} ${name}: sent, waiting for dom0...`);
  try {
    const answer = await fetch("/api/action", {
      method: "POST",
      headers: { Accept: "application/json" },
      body: new URLSearchParams({ action, name, token }),
    });
    const data = await answer.json();
    showMessage(answer.ok, answer.ok ? data.message : `${action} ${name}: ${data.error}`);
  } catch (e) {
    showMessage(false, `${action} ${name}: no answer from dom0 (${e})`);
  }
  await refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  const token = document.getElementById("token");
  token.value = sessionStorage.getItem("xenlive-token") || "";
  document.getElementById("domains").addEventListener("click", (event) => {
    const target = event.target;
    if (target instanceof HTMLButtonElement && target.dataset.action) {
      act(target.dataset.action, target.dataset.name);
    } else if (target instanceof HTMLAnchorElement && target.classList.contains("console-link")) {
      event.preventDefault();
      consoleName = target.closest("tr").dataset.name;
      document.getElementById("console-name").textContent = consoleName;
      document.getElementById("console-panel").hidden = false;
      refreshConsole();
    }
  });
  document.getElementById("console-close").addEventListener("click", () => {
    consoleName = null;
    document.getElementById("console-panel").hidden = true;
  });
  setInterval(refresh, POLL_MS);
});
