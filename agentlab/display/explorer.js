// The agentlab run explorer's page. Plain ES module, no dependencies, nothing fetched:
// every view is asked of the kernel one page at a time (model.send / "msg:custom").
// Stored strings only ever reach the page as text nodes (textContent), never as HTML.

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = String(v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

const BAD = new Set(["error", "denied", "rejected", "failed", "errored"]);
const statusClass = (st) => "al-st al-st-" + (BAD.has(st) ? "bad" : st === "ok" || st === "succeeded" || st === "approved" ? "ok" : "other");
const short = (id) => (id || "").slice(0, 12);
const when = (iso) => (iso ? iso.replace("T", " ").slice(0, 19) : "-");
// 0.42 ms, 68 ms, 4.2 s, 6.6 min, 2.5 h, 2.5 days: as a person would say it
const duration = (ms) => {
  const s = ms / 1000;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
};

function render({ model, el }) {
  let nextId = 1;
  const waiting = new Map();
  model.on("msg:custom", (msg) => {
    const done = waiting.get(msg.id);
    if (done) { waiting.delete(msg.id); done(msg); }
  });
  function ask(type, body) {
    const id = nextId++;
    return new Promise((resolve) => {
      waiting.set(id, resolve);
      model.send({ id, type, ...body });
    });
  }

  const state = { filters: {}, cursors: [null], pageNo: 0, runId: null, compareWith: null };
  const root = h("div", { class: "al-explorer" });
  el.append(root);

  // -- the run list ------------------------------------------------------------------
  const status = h("div", { class: "al-status", role: "status", "aria-live": "polite" });
  const inputs = {};
  function suggest(name, label) {
    const list = h("datalist", { id: `al-${name}-${Math.random().toString(36).slice(2)}` });
    const input = h("input", { type: "text", list: list.id, placeholder: label, "aria-label": label,
                               "data-filter": name, class: "al-filter", onchange: () => applyFilters() });
    inputs[name] = input;
    return [input, list];
  }
  const statusSelect = h("select", { "aria-label": "status", "data-filter": "status",
                                     onchange: () => applyFilters() },
    h("option", { value: "", text: "status: any" }),
    ...["running", "succeeded", "failed", "errored"].map((v) => h("option", { value: v, text: v })));
  const search = h("input", { type: "search", placeholder: "search run, task, workflow, agent",
                              "aria-label": "search runs", class: "al-search",
                              onkeydown: (ev) => { if (ev.key === "Enter") applyFilters(); } });
  const since = h("input", { type: "date", "aria-label": "started since", onchange: () => applyFilters() });
  const until = h("input", { type: "date", "aria-label": "started before", onchange: () => applyFilters() });
  const filterBar = h("div", { class: "al-filters" },
    ...suggest("workflow", "workflow"), ...suggest("agent", "agent"),
    ...suggest("agent_version", "version"), statusSelect,
    h("label", {}, "since ", since), h("label", {}, "before ", until), search,
    h("button", { class: "al-btn", onclick: () => applyFilters() }, "Search"));
  const runBody = h("tbody");
  const runTable = h("table", { class: "al-runs" },
    h("thead", {}, h("tr", {}, ...["run", "workflow", "agent", "version", "task", "status",
                                  "started", "events", ""].map((t) => h("th", { text: t })))),
    runBody);
  const newer = h("button", { class: "al-btn", onclick: () => loadRuns(state.pageNo - 1) }, "◀ Newer");
  const older = h("button", { class: "al-btn", onclick: () => loadRuns(state.pageNo + 1) }, "Older ▶");
  const pageLabel = h("span", { class: "al-muted" });
  const runsPane = h("section", { class: "al-pane al-runs-pane", "aria-label": "runs" },
    filterBar, h("div", { class: "al-scroll" }, runTable),
    h("div", { class: "al-pager" }, newer, pageLabel, older));

  // -- one run: tabs ---------------------------------------------------------------------
  const runTitle = h("div", { class: "al-run-title" });
  const tabs = {};
  const panels = {};
  const tabBar = h("div", { class: "al-tabs", role: "tablist" });
  for (const name of ["Steps", "Timeline", "Compare"]) {
    tabs[name] = h("button", { role: "tab", class: "al-tab", "aria-selected": "false",
                               onclick: () => showTab(name) }, name);
    panels[name] = h("div", { role: "tabpanel", class: "al-panel", hidden: true, "aria-label": name });
    tabBar.append(tabs[name]);
  }
  const detail = h("section", { class: "al-pane al-detail", "aria-label": "step detail" },
                   h("div", { class: "al-muted", text: "Open a step to see its detail." }));
  const runPane = h("section", { class: "al-pane al-run-pane", "aria-label": "run", hidden: true },
    runTitle, tabBar, h("div", { class: "al-split" },
      h("div", { class: "al-panels" }, ...Object.values(panels)), detail));
  root.append(status, runsPane, runPane);

  function say(text, bad) {
    status.textContent = text || "";
    status.classList.toggle("al-error", !!bad);
  }
  async function call(type, body) {
    const reply = await ask(type, body);
    if (!reply.ok) { say(reply.error, true); return null; }
    say("");
    return reply.data;
  }
  function showTab(name) {
    for (const [n, t] of Object.entries(tabs)) {
      t.setAttribute("aria-selected", String(n === name));
      panels[n].hidden = n !== name;
    }
  }

  async function loadFacets() {
    const data = await call("facets", {});
    if (!data) return;
    for (const [name, col] of [["workflow", "workflow"], ["agent", "agent_name"],
                               ["agent_version", "agent_version"]]) {
      const list = inputs[name].nextSibling;
      list.replaceChildren(...(data.facets[col] || []).map((v) => h("option", { value: v })));
    }
  }
  function applyFilters() {
    state.filters = {
      workflow: inputs.workflow.value.trim(), agent: inputs.agent.value.trim(),
      agent_version: inputs.agent_version.value.trim(), status: statusSelect.value,
      since: since.value, until: until.value, search: search.value,
    };
    state.cursors = [null];
    loadRuns(0);
  }
  async function loadRuns(pageNo) {
    if (pageNo < 0 || pageNo >= state.cursors.length) return;
    const data = await call("runs", { filters: state.filters, after: state.cursors[pageNo],
                                      limit: model.get("page_size") });
    if (!data) return;
    state.pageNo = pageNo;
    state.cursors.length = pageNo + 1;
    if (data.next) state.cursors.push(data.next);
    runBody.replaceChildren(...data.rows.map(runRow));
    if (!data.rows.length) runBody.append(h("tr", {}, h("td", { colspan: 9, class: "al-muted", text: "no runs match" })));
    newer.disabled = pageNo === 0;
    older.disabled = !data.next;
    pageLabel.textContent = ` page ${pageNo + 1} `;
  }
  function runRow(r) {
    const open = () => openRun(r.run_id);
    return h("tr", { class: "al-run-row" + (r.run_id === state.runId ? " al-current" : ""),
                     "data-run": r.run_id },
      h("td", {}, h("button", { class: "al-link al-open-run", title: r.run_id, onclick: open },
                    short(r.run_id))),
      h("td", { text: r.workflow }), h("td", { text: r.agent }),
      h("td", { text: r.agent_version || "-" }), h("td", { text: r.task_id || "-" }),
      h("td", {}, h("span", { class: statusClass(r.status), text: r.status })),
      h("td", { text: when(r.started) }), h("td", { text: r.events, title: r.counts }),
      h("td", {}, h("button", { class: "al-btn al-compare", disabled: !state.runId || state.runId === r.run_id,
                                title: "compare the open run with this one",
                                onclick: () => compare(state.runId, r.run_id) }, "Compare")));
  }

  // -- the trace tree ------------------------------------------------------------------
  function stepButton(runId, n) {
    return h("button", { class: "al-node-label", "data-seq": n.seq, title: n.summary,
                         onclick: () => openStep(runId, n.seq) },
      h("span", { class: "al-seq", text: `#${n.seq}` }), " ",
      h("span", { class: "al-kind", text: n.kind }), " ",
      h("b", { text: n.name }), " ",
      h("span", { class: statusClass(n.status), text: n.status }), " ",
      h("span", { class: "al-muted", text: n.summary }));
  }
  function treeItem(runId, n) {
    const li = h("li", { class: "al-node", "data-seq": n.seq });
    if (n.children > 0) {
      const kids = h("ul", { class: "al-tree", role: "group", hidden: true });
      let loaded = false;
      const toggle = h("button", { class: "al-toggle", "aria-expanded": "false",
                                   "aria-label": `expand step ${n.seq} (${n.children} inside)` }, "▸");
      toggle.addEventListener("click", async () => {
        const open = toggle.getAttribute("aria-expanded") !== "true";
        toggle.setAttribute("aria-expanded", String(open));
        toggle.textContent = open ? "▾" : "▸";
        kids.hidden = !open;
        if (open && !loaded) { loaded = true; await loadTree(runId, n.id, 0, kids); }
      });
      li.append(toggle, stepButton(runId, n), h("span", { class: "al-muted", text: ` (${n.children})` }), kids);
    } else {
      li.append(h("span", { class: "al-toggle-space" }), stepButton(runId, n));
    }
    return li;
  }
  async function loadTree(runId, parent, after, list) {
    const data = await call("tree", { run_id: runId, parent, after, limit: model.get("page_size") });
    if (!data) return null;
    for (const n of data.nodes) list.append(treeItem(runId, n));
    if (data.next) {
      const more = h("li", {}, h("button", { class: "al-btn al-more" }, "more steps…"));
      more.firstChild.addEventListener("click", async () => { more.remove(); await loadTree(runId, parent, data.next, list); });
      list.append(more);
    }
    return data;
  }
  async function openRun(runId) {
    state.runId = runId;
    runPane.hidden = false;
    for (const row of runBody.querySelectorAll("tr.al-run-row")) {
      row.classList.toggle("al-current", row.dataset.run === runId);
      const btn = row.querySelector("button.al-compare");
      if (btn) btn.disabled = row.dataset.run === runId;
    }
    const list = h("ul", { class: "al-tree", role: "tree", "aria-label": "steps" });
    panels.Steps.replaceChildren(list);
    panels.Timeline.replaceChildren(h("div", { class: "al-muted", text: "loading…" }));
    panels.Compare.replaceChildren(h("div", { class: "al-muted",
      text: "Press Compare on another run in the list to put it beside this one." }));
    detail.replaceChildren(h("div", { class: "al-muted", text: "Open a step to see its detail." }));
    showTab("Steps");
    const data = await loadTree(runId, null, 0, list);
    if (data && data.run) {
      const r = data.run;
      runTitle.replaceChildren(h("b", { text: `run ${r.run_id}` }), " ",
        h("span", { text: `${r.workflow} / ${r.agent} ${r.agent_version || ""} · task ${r.task_id || "-"} · ` }),
        h("span", { class: statusClass(r.status), text: r.status }),
        h("span", { class: "al-muted", text: ` · ${r.counts} · started ${when(r.started)}` }));
    }
    loadTimeline(runId, 0);
  }

  // -- a step's detail -------------------------------------------------------------------
  function block(title, value) {
    return h("div", { class: "al-block" }, h("div", { class: "al-block-title", text: title }),
      h("pre", { class: "al-pre", text: value.text }),
      value.cut ? h("div", { class: "al-muted", text: `cut at ${value.text.length} of ${value.chars} characters` }) : null);
  }
  function kv(rows) {
    return h("table", { class: "al-kv" }, ...rows.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", { text: typeof v === "object" ? JSON.stringify(v) : v }))));
  }
  async function openStep(runId, seq) {
    const d = await call("step", { run_id: runId, seq });
    if (!d) return;
    const parts = [h("h4", { class: "al-step-title" }, h("span", { text: `#${d.seq} ${d.kind} ` }),
                     h("b", { text: d.name }), " ", h("span", { class: statusClass(d.status), text: d.status })),
                   h("div", { class: "al-muted", text: d.summary }),
                   kv([["at", when(d.ts)], ["duration", d.duration_ms !== null ? duration(d.duration_ms) : null],
                       ["agent", d.agent], ["reads state", d.reads && d.reads.length ? d.reads.join(", ") : null]])];
    const g = d.governance;
    if (Object.keys(g).length) {
      parts.push(h("div", { class: "al-block al-governance" }, h("div", { class: "al-block-title", text: "governance" }),
        kv([["grant", g.grant], ["key fingerprint", g.credential], ["scope", g.scope],
            ["policy rule", g.policy_rule], ["phase", g.phase], ["approval request", g.approval]])));
    }
    if (d.approval) {
      const a = d.approval;
      parts.push(h("div", { class: "al-block al-approval" }, h("div", { class: "al-block-title", text: "approval" }),
        kv([["status", a.status], ["decision", a.action], ["by", a.decided_by], ["via", a.channel],
            ["reason", a.reason], ["rule", a.rule], ["decided at", when(a.decided_at)]]),
        a.edited_arguments ? block("edited arguments", a.edited_arguments) : null));
    }
    for (const [k, v] of Object.entries(d.inputs)) parts.push(block(k, v));
    for (const [k, v] of Object.entries(d.outputs)) parts.push(block(k, v));
    if (d.error) parts.push(h("div", { class: "al-block al-bad" }, h("div", { class: "al-block-title", text: "error" }),
      h("pre", { class: "al-pre", text: `${d.error.type}: ${d.error.message}` })));
    if (d.denial) parts.push(h("div", { class: "al-block al-bad" }, h("div", { class: "al-block-title", text: "denied" }),
      kv([["code", d.denial.code], ["reason", d.denial.reason], ["rule", d.denial.rule], ["grant", d.denial.grant]])));
    if (d.stale) parts.push(h("div", { class: "al-block al-bad" }, h("div", { class: "al-block-title", text: "stale result" }),
      kv([["age", d.stale.age_s !== undefined && d.stale.age_s !== null ? duration(d.stale.age_s * 1000) : null],
          ["freshness bound", d.stale.bound_s !== undefined && d.stale.bound_s !== null ? duration(d.stale.bound_s * 1000) : null]])));
    if (d.redacted && d.redacted.length) parts.push(h("div", { class: "al-muted", text: `secrets redacted at ${d.redacted.join(", ")}` }));
    if (d.state) {
      const st = d.state;
      parts.push(h("div", { class: "al-block al-state" },
        h("div", { class: "al-block-title", text: `state diff: checkpoint #${st.from_seq} → #${st.to_seq} (${st.total} change${st.total === 1 ? "" : "s"})` }),
        h("table", { class: "al-diff" }, h("tr", {}, ...["op", "path", "before", "after"].map((t) => h("th", { text: t }))),
          ...st.changes.map((c) => h("tr", { class: `al-op-${c.op}` }, h("td", { text: c.op }), h("td", {}, h("code", { text: c.path })),
                                     h("td", {}, h("pre", { class: "al-pre", text: c.old })), h("td", {}, h("pre", { class: "al-pre", text: c.new })))))));
    } else {
      parts.push(h("div", { class: "al-muted", text: "no state change recorded for this step" }));
    }
    detail.replaceChildren(...parts);
    detail.setAttribute("data-seq", String(d.seq));
  }

  // -- the timeline ----------------------------------------------------------------------
  const COLORS = { ok: "var(--jp-success-color1, #2e7d32)", bad: "var(--jp-error-color1, #c62828)",
                   other: "var(--jp-warn-color1, #ef6c00)" };
  const colorOf = (st) => (BAD.has(st) ? COLORS.bad : st === "ok" || st === "approved" ? COLORS.ok : COLORS.other);
  async function loadTimeline(runId, after) {
    const data = await call("timeline", { run_id: runId, after });
    if (!data || state.runId !== runId) return;
    const parts = [];
    if (data.histogram) parts.push(histogram(data.histogram));
    parts.push(bars(runId, data.rows));
    const nav = h("div", { class: "al-pager" });
    if (after > 0) nav.append(h("button", { class: "al-btn", onclick: () => loadTimeline(runId, 0) }, "◀ first window"));
    if (data.next) nav.append(h("button", { class: "al-btn", onclick: () => loadTimeline(runId, data.next) }, `next window after #${data.next} ▶`));
    parts.push(nav);
    panels.Timeline.replaceChildren(...parts);
  }
  function histogram(hg) {
    const per = new Array(hg.buckets).fill(0);
    const bad = new Array(hg.buckets).fill(0);
    for (const [b, , n, p] of hg.counts) { per[b] += n; bad[b] += p; }
    const max = Math.max(1, ...per);
    const W = 600, H = 60, w = W / hg.buckets;
    const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "al-hist", role: "img",
                           "aria-label": `events over time, ${hg.buckets} buckets of ${hg.bucket_ms.toFixed(1)} ms` });
    per.forEach((n, i) => {
      if (!n) return;
      const y = H - (n / max) * H;
      const r = s("rect", { x: i * w, y, width: Math.max(w - 0.5, 0.5), height: H - y, fill: bad[i] ? COLORS.bad : COLORS.ok });
      const t = s("title"); t.textContent = `${n} events, ${bad[i]} problems`; r.append(t);
      svg.append(r);
    });
    return h("div", {}, h("div", { class: "al-muted", text: "all events, counted over the run's time (red: a failure or refusal inside)" }), svg);
  }
  function bars(runId, rows) {
    if (!rows.length) return h("div", { class: "al-muted", text: "no steps in this window" });
    const t0 = Math.min(...rows.map((r) => r[4]));
    const t1 = Math.max(...rows.map((r) => r[4] + r[5]));
    const span = Math.max(t1 - t0, 1e-3);
    const ROW = 16, W = 420, LABEL = 190;
    const height = rows.length * ROW + 4;
    const svg = s("svg", { viewBox: `0 0 ${W + LABEL} ${height}`, width: W + LABEL, height,
                           class: "al-bars", role: "img", "aria-label": `timeline of ${rows.length} steps` });
    rows.forEach(([seq, lane, name, st, start, dur, depth, summary], i) => {
      const y = i * ROW + 2;
      const label = s("text", { x: 2 + Math.min(depth, 6) * 8, y: y + 11, class: "al-bar-label" });
      label.textContent = `#${seq} ${name}`.slice(0, 26);
      const x = LABEL + ((start - t0) / span) * W;
      const rect = s("rect", { x, y, width: Math.max((dur / span) * W, 2), height: ROW - 3,
                               fill: colorOf(st), class: "al-bar", "data-seq": seq });
      const t = s("title"); t.textContent = `#${seq} ${lane} ${summary} (${st}, ${duration(dur)})`;
      rect.append(t);
      rect.addEventListener("click", () => openStep(runId, seq));
      svg.append(label, rect);
    });
    return svg;
  }

  // -- two runs side by side ---------------------------------------------------------------
  async function compare(a, b, from, parts) {
    if (!a || !b) return;
    runPane.hidden = false;
    showTab("Compare");
    if (!from) panels.Compare.replaceChildren(h("div", { class: "al-muted", text: "comparing…" }));
    const d = await call("compare", from ? { a, b, from } : { a, b });
    if (!d) return;
    if (!parts) {
      parts = [h("div", { class: "al-compare-head" },
        h("div", {}, h("b", { text: `A ${short(d.a.run_id)}` }), " ", h("span", { class: statusClass(d.a.status), text: d.a.status }),
          h("span", { class: "al-muted", text: ` task ${d.a.task_id || "-"}` })),
        h("div", {}, h("b", { text: `B ${short(d.b.run_id)}` }), " ", h("span", { class: statusClass(d.b.status), text: d.b.status }),
          h("span", { class: "al-muted", text: ` task ${d.b.task_id || "-"}` })))];
    }
    const dv = d.divergence;
    const differ = d.differing_results.length
      ? ` Earlier, the same calls returned different results at A #${d.differing_results.map((x) => x.a_seq).join(", #")}.` : "";
    if (d.resume) {
      const more = h("button", { class: "al-btn al-more" }, "look further");
      more.addEventListener("click", () => { more.disabled = true; compare(a, b, d.resume, parts); });
      panels.Compare.replaceChildren(...parts, h("div", { class: "al-muted",
        text: `No divergence in the first ${d.compared} tool calls.${differ}` }), more);
      return;
    }
    if (!dv) {
      parts.push(h("div", { class: "al-same", text: `The two runs make the same ${d.compared} tool calls: no divergence.${differ}` }));
    } else {
      const args = dv.arguments || [];
      const what = dv.a && dv.a === dv.b && args.length
        ? `both call ${dv.a} (A #${dv.a_seq}, B #${dv.b_seq}) with other arguments: ` +
          args.map((c) => `${c.name} ${c.a} in A, ${c.b} in B`).join("; ")
        : `A ${dv.a ? `calls ${dv.a} (#${dv.a_seq})` : "has ended"}, ` +
          `B ${dv.b ? `calls ${dv.b} (#${dv.b_seq})` : "has ended"}`;
      parts.push(h("div", { class: "al-diverge-note", role: "note" },
        `First divergence at tool call ${dv.index + 1}: ${what}.${differ}`));
      const side = (runId, c) => c ? h("button", { class: "al-link", onclick: () => openStep(runId, c.seq), title: c.summary },
        h("span", { class: "al-seq", text: `#${c.seq} ` }), h("b", { text: c.name }), " ",
        h("span", { class: statusClass(c.status), text: c.status }), " ", h("span", { class: "al-muted al-clip", text: c.summary }))
        : h("span", { class: "al-muted", text: "(run ended)" });
      parts.push(h("table", { class: "al-compare" },
        h("tr", {}, h("th", { text: "call" }), h("th", { text: "A" }), h("th", { text: "B" })),
        ...d.rows.map((r) => h("tr", { class: (r.diverges ? "al-diverges" : "") + (r.result_differs ? " al-result-differs" : "") },
          h("td", { text: `${r.index + 1}${r.diverges ? " ⟵ first divergence" : r.result_differs ? " results differ" : ""}` }),
          h("td", {}, side(d.a.run_id, r.a)), h("td", {}, side(d.b.run_id, r.b))))));
    }
    panels.Compare.replaceChildren(...parts);
  }

  // -- start ---------------------------------------------------------------------------------
  (async () => {
    await loadFacets();
    await loadRuns(0);
    const first = model.get("run_id");
    if (first) {
      await openRun(first);
      const other = model.get("compare_id");
      if (other) await compare(first, other);
    }
  })();
  return () => waiting.clear();
}

export default { render };
