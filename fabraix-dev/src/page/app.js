// fabraix-dev's page: the runs the local Fabraix API received, live.
//
// Every value shown comes from what an agent sent, so it reaches the DOM only as text
// (textContent, text nodes, attribute values): never as HTML.
"use strict";

(() => {
  const FOLD_LINES = 14;
  const FOLD_CHARS = 1600;
  const MIN_REFRESH_MS = 120;

  const state = {
    runs: [],
    open: null, // trace id of the run shown
    run: null,
    agent: "",
    type: "",
    expanded: new Set(), // keys of unfolded contents
    lastRefresh: 0,
  };

  const $ = (id) => document.getElementById(id);

  // Builds an element. `attrs`: "class", "text", or attribute names (set as attributes).
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = String(value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function getJSON(url, options) {
    const response = await fetch(url, Object.assign({ cache: "no-store" }, options));
    if (!response.ok) {
      const error = new Error(`${url}: ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  // ---- formatting -------------------------------------------------------------------

  const pad = (n, width) => String(n).padStart(width || 2, "0");

  function clock(ms) {
    if (typeof ms !== "number" || !isFinite(ms)) return "—";
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }

  function dateTime(value) {
    if (typeof value !== "string") return "—";
    const d = new Date(value);
    if (isNaN(d.getTime())) return value;
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(d.getTime())}`;
  }

  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

  const show = (value) =>
    value === null || value === undefined ? "—" : typeof value === "string" ? value : JSON.stringify(value);

  // A JSON document's text, re-indented token by token: keys stay in the agent's order and
  // numbers as written (JSON.parse would lose digits past 2^53).
  function prettyJson(text) {
    let out = "";
    let depth = 0;
    let inString = false;
    let escaped = false;
    const newline = () => "\n" + "  ".repeat(depth);
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        out += c;
        if (escaped) escaped = false;
        else if (c === "\\") escaped = true;
        else if (c === '"') inString = false;
        continue;
      }
      if (c === " " || c === "\t" || c === "\n" || c === "\r") continue;
      if (c === '"') {
        inString = true;
        out += c;
      } else if (c === "{" || c === "[") {
        const close = c === "{" ? "}" : "]";
        let j = i + 1;
        while (j < text.length && " \t\n\r".includes(text[j])) j++;
        if (text[j] === close) {
          out += c + close;
          i = j;
        } else {
          depth++;
          out += c + newline();
        }
      } else if (c === "}" || c === "]") {
        depth--;
        out += newline() + c;
      } else if (c === ",") {
        out += "," + newline();
      } else if (c === ":") {
        out += ": ";
      } else {
        out += c;
      }
    }
    return out;
  }

  // A JSON document as a person reads it: a lone {"text": ...} as its text, anything
  // else pretty-printed.
  function documentText(text) {
    try {
      const value = JSON.parse(text);
      if (value && typeof value === "object" && !Array.isArray(value)) {
        const keys = Object.keys(value);
        if (keys.length === 1 && keys[0] === "text" && typeof value.text === "string") {
          return value.text;
        }
      }
    } catch (error) {
      return text;
    }
    return prettyJson(text);
  }

  // A block of text, folded when long; `key` remembers an unfolding across updates.
  function block(text, key, extraClass) {
    const lines = text.split("\n").length;
    const long = lines > FOLD_LINES || text.length > FOLD_CHARS;
    const pre = el("pre", { class: `content ${extraClass || ""}`.trim(), text });
    if (!long) return pre;
    const open = state.expanded.has(key);
    if (!open) pre.classList.add("folded");
    const toggle = el("button", {
      type: "button",
      class: "fold",
      "aria-expanded": open ? "true" : "false",
      text: open ? "Fold" : `Show all (${plural(lines, "line", "lines")}, ${text.length} characters)`,
    });
    toggle.addEventListener("click", () => {
      if (state.expanded.has(key)) state.expanded.delete(key);
      else state.expanded.add(key);
      renderRun();
      const again = document.querySelector(`[data-fold="${CSS.escape(key)}"] button.fold`);
      if (again) again.focus();
    });
    return el("div", { class: "foldable", "data-fold": key }, pre, toggle);
  }

  // ---- keyed lists: update in place, so focus and unfolded blocks survive --------------

  function reconcile(container, entries) {
    const existing = new Map();
    for (const node of Array.from(container.children)) existing.set(node.dataset.key, node);
    const focusedKey = (() => {
      const active = document.activeElement;
      const holder = active && active.closest ? active.closest("[data-key]") : null;
      return holder && holder.parentElement === container ? holder.dataset.key : null;
    })();
    entries.forEach((entry, index) => {
      let node = existing.get(entry.key);
      if (node && node.dataset.sig !== entry.sig && entry.update) {
        // Same element, new contents: focus and references to it survive.
        entry.update(node);
        node.dataset.sig = entry.sig;
      } else if (!node || node.dataset.sig !== entry.sig) {
        const fresh = entry.build();
        fresh.dataset.key = entry.key;
        fresh.dataset.sig = entry.sig;
        if (node) node.replaceWith(fresh);
        node = fresh;
      }
      existing.delete(entry.key);
      if (container.children[index] !== node) {
        container.insertBefore(node, container.children[index] || null);
      }
    });
    for (const stale of existing.values()) stale.remove();
    if (focusedKey && !container.contains(document.activeElement)) {
      const again = container.querySelector(`[data-key="${CSS.escape(focusedKey)}"]`);
      const target = again && (again.matches("button") ? again : again.querySelector("button"));
      if (target) target.focus();
    }
  }

  // ---- the list of runs ------------------------------------------------------------------

  function runMatches(run) {
    if (state.agent && show(run.agent_id) !== state.agent) return false;
    if (state.type && state.type !== "register" && !(run.types || []).includes(state.type)) return false;
    return true;
  }

  function renderAgents() {
    const select = $("agent-filter");
    const seen = new Map();
    for (const run of state.runs) {
      const agent = show(run.agent_id);
      if (!seen.has(agent)) seen.set(agent, { prompt: run.system_prompt, runs: 0 });
      seen.get(agent).runs += 1;
    }
    if (state.agent && !seen.has(state.agent)) seen.set(state.agent, { prompt: null, runs: 0 });
    const entries = [{ key: "", sig: "", build: () => el("option", { value: "", text: "All agents" }) }];
    for (const [agent, about] of seen) {
      const label = `${agent} (${plural(about.runs, "run", "runs")})${about.prompt ? ` — ${about.prompt}` : ""}`;
      entries.push({
        key: agent,
        sig: label,
        build: () => el("option", { value: agent, text: label }),
      });
    }
    reconcile(select, entries);
    select.value = state.agent;
  }

  // Fills a run's button (new or already in the list) with what the run is now.
  function fillRun(button, run) {
    const counts = el(
      "span",
      { class: "run-counts" },
      el("span", { class: "pill", text: plural(run.events, "event", "events") }),
      el("span", { class: "pill", text: plural(run.checks, "check", "checks") }),
      run.blocked ? el("span", { class: "pill bad", text: `${run.blocked} blocked` }) : null,
      run.rejected ? el("span", { class: "pill warn", text: `${run.rejected} rejected` }) : null,
    );
    if (run.trace_id === state.open) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
    button.replaceChildren(
      el(
        "span",
        { class: "run-line" },
        el("span", { class: "run-time", text: dateTime(run.registered_at) }),
        counts,
      ),
      el("span", { class: "run-trace mono", text: run.trace_id }),
      el("span", { class: "run-agent mono", text: `agent ${show(run.agent_id)}` }),
      run.system_prompt ? el("span", { class: "run-prompt", text: run.system_prompt }) : null,
    );
  }

  function runRow(run) {
    const button = el("button", {
      type: "button",
      class: "run",
      "data-trace": run.trace_id,
      title: `Open run ${run.trace_id}`,
    });
    fillRun(button, run);
    button.addEventListener("click", () => openRun(run.trace_id));
    return el("li", {}, button);
  }

  function renderRuns() {
    renderAgents();
    const shown = state.runs.filter(runMatches);
    $("run-count").textContent = state.runs.length
      ? shown.length === state.runs.length
        ? `(${state.runs.length})`
        : `(${shown.length} of ${state.runs.length})`
      : "";
    $("no-runs").hidden = state.runs.length > 0;
    reconcile(
      $("run-list"),
      shown.map((run) => ({
        key: run.trace_id,
        sig: JSON.stringify([run, run.trace_id === state.open]),
        build: () => runRow(run),
        update: (node) => fillRun(node.querySelector("button.run"), run),
      })),
    );
  }

  // ---- one run's timeline ----------------------------------------------------------------

  function statusBadge(item) {
    if (item.status === null || item.status === undefined) {
      return el("span", { class: "badge pending", text: "awaiting answer" });
    }
    if (item.status >= 200 && item.status < 300) return null;
    return el("span", { class: "badge rejected", text: `rejected ${item.status}` });
  }

  function errorLine(item) {
    if (!item.error) return null;
    const code = item.error.code ? `${show(item.error.code)}: ` : "";
    return el("p", { class: "error-line", text: `${code}${show(item.error.message)}` });
  }

  // The JSON document sent as `item[field]`, or what was sent when it was not one.
  function contentBlock(item, field, label) {
    if (typeof item[field] !== "string") return null;
    const key = `${item.sequence}:${field}`;
    if (item[`${field}_json`]) {
      return el("div", { class: "field" }, label ? el("span", { class: "label", text: label }) : null,
        block(documentText(item[field]), key));
    }
    return el("div", { class: "field" }, el("span", { class: "label", text: `${label || "content"} (not JSON)` }),
      block(item[field], key, "raw"));
  }

  function timelineItem(item) {
    const sentAt = typeof item.timestamp === "number" ? item.timestamp * 1000 : item.received_at;
    const head = el(
      "div",
      { class: "item-head" },
      el("time", {
        text: clock(sentAt),
        title: `sent ${clock(sentAt)} (the agent's clock), received ${clock(item.received_at)}`,
      }),
      el("span", { class: `badge type type-${item.type}`, text: show(item.type) }),
      item.kind === "check" ? el("span", { class: "action mono", text: show(item.action) }) : null,
      statusBadge(item),
    );
    const classes = ["item", item.kind];
    const body = [];
    if (item.kind === "event") {
      body.push(contentBlock(item, "content", ""));
    } else if (item.kind === "check") {
      if (item.description) body.push(el("p", { class: "description", text: show(item.description) }));
      body.push(contentBlock(item, "arguments", "arguments"));
      if (item.verdict) {
        const safe = item.verdict.is_safe === true;
        classes.push(safe ? "allowed" : "blocked");
        body.push(
          el(
            "div",
            { class: `verdict ${safe ? "allowed" : "blocked"}`, role: safe ? null : "alert" },
            el("strong", { class: "verdict-word", text: safe ? "✓ Allowed" : "✖ BLOCKED" }),
            el("span", { class: "reasoning", text: show(item.verdict.reasoning) }),
            el("span", { class: "check-id mono", text: show(item.verdict.action_check_id) }),
          ),
        );
      }
    } else if (item.kind === "register") {
      body.push(el("p", { class: "facts-line" },
        el("span", { class: "label", text: "agent " }), el("code", { class: "mono", text: show(item.agent_id) }),
        el("span", { class: "label", text: " registered at " }), el("span", { text: dateTime(item.registered_at) })));
      if (typeof item.system_prompt === "string") {
        body.push(el("div", { class: "field" }, el("span", { class: "label", text: "system prompt" }),
          block(item.system_prompt, `${item.sequence}:prompt`)));
      }
    }
    if (item.status !== null && item.status !== undefined && (item.status < 200 || item.status >= 300)) {
      classes.push("rejected");
    }
    body.push(errorLine(item));
    return el("li", { class: classes.join(" "), "data-sequence": item.sequence }, head, ...body);
  }

  function renderRun() {
    const run = state.run;
    $("run-view").hidden = !run;
    $("no-selection").hidden = !!run;
    if (!run) return;
    $("run-trace").textContent = run.trace_id;
    $("run-agent").textContent = show(run.agent_id);
    $("run-registered").textContent = dateTime(run.registered_at);
    $("run-counts").textContent = [
      plural(run.events, "event", "events"),
      plural(run.checks, "check", "checks"),
      `${run.blocked} blocked`,
      `${run.rejected} rejected`,
    ].join(", ");
    const items = run.timeline.filter((item) => !state.type || item.type === state.type);
    $("timeline-empty").hidden = items.length > 0;
    reconcile(
      $("timeline"),
      items.map((item) => {
        const unfolded = Array.from(state.expanded).filter((key) => key.startsWith(`${item.sequence}:`));
        return {
          key: String(item.sequence),
          sig: JSON.stringify([item, unfolded]),
          build: () => timelineItem(item),
        };
      }),
    );
  }

  async function loadRun() {
    if (!state.open) {
      state.run = null;
      renderRun();
      return;
    }
    const trace = state.open;
    try {
      const answer = await getJSON(`/api/runs/${encodeURIComponent(trace)}`);
      if (state.open === trace) state.run = answer.run;
    } catch (error) {
      if (error.status !== 404) throw error;
      if (state.open === trace) {
        state.run = null;
        $("no-selection").textContent = `Run ${trace} is no longer recorded (cleared, or past --keep-runs).`;
      }
    }
    renderRun();
  }

  async function openRun(trace) {
    state.open = trace;
    $("no-selection").textContent = "Loading…";
    if (location.hash !== `#run=${trace}`) history.replaceState(null, "", `#run=${trace}`);
    renderRuns();
    await loadRun();
  }

  // ---- requests outside any run ------------------------------------------------------------

  function unattachedItem(request) {
    return el(
      "li",
      { class: "item other rejected" },
      el("div", { class: "item-head" },
        el("time", { text: clock(request.received_at) }),
        el("span", { class: "mono", text: `${request.method} ${request.path}` }),
        statusBadge(request),
        request.authenticated ? null : el("span", { class: "badge rejected", text: "wrong or missing key" })),
      errorLine(request),
      request.body ? block(request.body, `u${request.sequence}:body`, "raw") : null,
    );
  }

  async function loadUnattached() {
    const answer = await getJSON("/api/unattached");
    $("unattached-count").textContent = `(${answer.requests.length})`;
    if (!$("unattached-box").open) return;
    reconcile(
      $("unattached-list"),
      answer.requests.map((request) => ({
        key: String(request.sequence),
        sig: JSON.stringify([request, state.expanded.has(`u${request.sequence}:body`)]),
        build: () => unattachedItem(request),
      })),
    );
  }

  // ---- live updates: long polling on /api/changes ------------------------------------------

  function setLive(ok) {
    const live = $("live");
    live.textContent = ok ? "● live" : "● reconnecting…";
    live.classList.toggle("down", !ok);
  }

  async function refresh() {
    const wait = state.lastRefresh + MIN_REFRESH_MS - Date.now();
    if (wait > 0) await sleep(wait);
    state.lastRefresh = Date.now();
    const answer = await getJSON("/api/runs");
    state.runs = answer.runs;
    renderRuns();
    await Promise.all([loadRun(), loadUnattached()]);
    return answer.changes;
  }

  async function follow() {
    let seen = null;
    let backoff = 500;
    for (;;) {
      try {
        if (seen === null) {
          seen = await refresh();
          setLive(true);
        }
        const answer = await getJSON(`/api/changes?after=${seen}`);
        setLive(true);
        backoff = 500;
        if (answer.changes !== seen) seen = await refresh();
      } catch (error) {
        setLive(false);
        seen = null;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }

  async function loadInfo() {
    try {
      const info = await getJSON("/api/info");
      $("base-url").textContent = info.base_url;
      $("env-lines").textContent =
        `FABRAIX_BASE_URL=${info.base_url}\nFABRAIX_API_KEY=<the key fabraix-dev printed>`;
      const blocking = info.blocked.map((rule) => rule.action);
      $("blocking").textContent = blocking.length ? `blocking: ${blocking.join(", ")}` : "";
      $("blocking").title = info.blocked.map((rule) => `${rule.action}: ${rule.reasoning}`).join("\n");
    } catch (error) {
      // The page still works without it; follow() shows whether the server is reachable.
    }
  }

  // ---- keyboard and controls ---------------------------------------------------------------

  function moveFocus(event) {
    const buttons = Array.from(document.querySelectorAll("#run-list button.run"));
    const index = buttons.indexOf(document.activeElement);
    if (index < 0) return;
    const next = {
      ArrowDown: index + 1,
      ArrowUp: index - 1,
      Home: 0,
      End: buttons.length - 1,
    }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    const target = buttons[Math.max(0, Math.min(buttons.length - 1, next))];
    if (target) target.focus();
  }

  function openFromHash() {
    const match = /^#run=([0-9a-fA-F-]{36})$/.exec(location.hash);
    if (match && match[1] !== state.open) openRun(match[1]).catch(() => {});
  }

  function start() {
    $("agent-filter").addEventListener("change", (event) => {
      state.agent = event.target.value;
      renderRuns();
    });
    $("type-filter").addEventListener("change", (event) => {
      state.type = event.target.value;
      renderRuns();
      renderRun();
    });
    $("run-list").addEventListener("keydown", moveFocus);
    $("unattached-box").addEventListener("toggle", () => loadUnattached().catch(() => {}));
    $("clear").addEventListener("click", async () => {
      if (!confirm("Forget every recorded run and request? Runs still going keep their trace ids.")) return;
      await getJSON("/api/runs", { method: "DELETE" });
      state.open = null;
      state.run = null;
      history.replaceState(null, "", location.pathname);
      await refresh();
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && state.open && !event.target.closest("select")) {
        const trace = state.open;
        state.open = null;
        state.run = null;
        $("no-selection").textContent = "Open a run to see its timeline.";
        history.replaceState(null, "", location.pathname);
        renderRuns();
        renderRun();
        const row = document.querySelector(`#run-list button[data-trace="${CSS.escape(trace)}"]`);
        if (row) row.focus();
      }
    });
    window.addEventListener("hashchange", openFromHash);
    openFromHash();
    loadInfo();
    follow();
  }

  start();
})();
