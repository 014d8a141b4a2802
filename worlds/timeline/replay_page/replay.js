// The replay page: draws a run from the JSON in #replay-data. Every string from the log goes into the
// page as a text node or an attribute value, never as markup, and no CSS selector is built from one.
(() => {
  "use strict";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const COLOURS = 12;
  const data = JSON.parse(document.getElementById("replay-data").textContent);
  const dialogues = new Map(data.dialogues.map((d) => [d.id, d]));
  const reflections = new Map(data.reflections.map((r) => [r.id, r]));
  const probes = new Map(data.probes.map((p) => [String(p.number), p]));
  const byId = (id) => document.getElementById(id);

  // Sim time: minutes from the clock's start, counted on the wall clock the scenario gives (no time zone maths).
  const origin = Date.UTC(data.start[0], data.start[1] - 1, data.start[2], data.start[3], data.start[4]);
  const pad = (n) => String(n).padStart(2, "0");
  const moment = (minute) => new Date(origin + Math.round(minute * 60000));
  const hhmm = (minute) => {
    const d = moment(minute);
    return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  };
  const longTime = (minute) => {
    const d = moment(minute);
    return `${DAYS[d.getUTCDay()]} ${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${hhmm(minute)}`;
  };

  function build(node, attrs, children) {
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children) {
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }
  const h = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
  const s = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);
  const tip = (text) => s("title", {}, text);
  const colour = (lane) => `c${lane % COLOURS}`;
  const short = (text, n) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);
  const clear = (node) => { while (node.firstChild) node.removeChild(node.firstChild); };

  // ---- header
  byId("run-title").textContent = data.run;
  byId("run-meta").textContent = `${data.scenario} · model ${data.model || "?"} · ${data.status} · ` +
    `${data.agents.length} agents · ${longTime(0)} to ${longTime(data.end)}${data.zone ? ` (${data.zone})` : ""}`;
  if (data.skipped.length) {
    const note = byId("skipped");
    note.hidden = false;
    note.textContent = `${data.skipped.length} line(s) of the log were skipped: ${data.skipped.slice(0, 3).join("; ")}`;
  }

  // ---- lanes: one per agent over sim time
  const LABEL = 170, LANE = 26, AXIS = 22;
  const lanes = byId("lanes");
  const span = Math.max(data.end, 60);
  const perMinute = Math.max(0.4, (Math.max(640, byId("lanes-scroll").clientWidth - 8) - LABEL - 30) / span);
  const xOf = (minute) => LABEL + minute * perMinute;
  const laneTop = (lane) => AXIS + lane * LANE;
  const laneMid = (lane) => laneTop(lane) + LANE / 2;
  const lanesHeight = AXIS + data.agents.length * LANE + 4;
  const lanesWidth = xOf(span) + 30;  // room for the last hour's label
  build(lanes, { width: lanesWidth, height: lanesHeight, viewBox: `0 0 ${lanesWidth} ${lanesHeight}` }, []);

  function drawLanes() {
    data.agents.forEach((name, lane) => {
      lanes.appendChild(s("rect", { class: `lane ${lane % 2 ? "odd" : "even"}`, x: 0, y: laneTop(lane),
        width: lanesWidth, height: LANE }));
      lanes.appendChild(s("text", { class: "lane-label", x: 6, y: laneMid(lane) + 4, "data-lane": lane },
        tip(name), short(name, 24)));
    });
    const every = [1, 2, 3, 6, 12, 24].find((hours) => hours * 60 * perMinute >= 52) || 24;
    for (let minute = 0; minute <= span; minute += every * 60) {
      lanes.appendChild(s("line", { class: "hour", x1: xOf(minute), x2: xOf(minute), y1: AXIS - 4, y2: lanesHeight }));
      lanes.appendChild(s("text", { class: "hour-label", x: xOf(minute) + 2, y: AXIS - 8 }, hhmm(minute)));
    }
    for (const block of data.blocks) {
      const attrs = { class: `block k-${block.kind}`, x: xOf(block.start),
        y: laneTop(block.lane) + 4, width: Math.max(2, (block.end - block.start) * perMinute), height: LANE - 8, rx: 2 };
      if (block.ref && dialogues.has(block.ref)) {
        attrs[block.kind === "conversation" ? "data-conversation-id" : "data-session-id"] = block.ref;
      }
      lanes.appendChild(s("rect", attrs,
        tip(`${hhmm(block.start)}–${hhmm(block.end)} ${block.kind}: ${block.text}`)));
    }
    for (const d of data.dialogues) {
      if (d.lanes.length < 2) continue;
      const key = d.kind === "conversation" ? "data-conversation-id" : "data-session-id";
      const x = xOf(d.start) + 1;
      const mids = d.lanes.map(laneMid);
      const link = s("g", { class: `link k-${d.kind}`, [key]: d.id },
        tip(`${hhmm(d.start)} ${d.kind} of ${d.lanes.map((l) => data.agents[l]).join(", ")}: click for the transcript`),
        s("line", { class: "link-hit", x1: x, x2: x, y1: Math.min(...mids), y2: Math.max(...mids) }),
        s("line", { class: "link-line", x1: x, x2: x, y1: Math.min(...mids), y2: Math.max(...mids) }),
        ...mids.map((y) => s("circle", { class: "link-end", cx: x, cy: y, r: 3.5 })));
      lanes.appendChild(link);
    }
    for (const r of data.reflections) {
      const x = xOf(r.minute), y = laneMid(r.lane);
      lanes.appendChild(s("path", { class: "reflection", "data-reflection-id": r.id,
        d: `M${x} ${y - 7} L${x + 6} ${y} L${x} ${y + 7} L${x - 6} ${y} Z` },
        tip(`${hhmm(r.minute)} ${data.agents[r.lane]} reflects: click for the memories it cites`)));
    }
    lanes.appendChild(s("line", { id: "cursor", x1: LABEL, x2: LABEL, y1: AXIS - 4, y2: lanesHeight }));
  }

  // ---- place graph and markers
  const places = byId("places");
  build(places, { viewBox: "0 0 640 440", preserveAspectRatio: "xMidYMid meet" }, []);
  const placeNodes = [];
  const markers = [];

  function drawPlaces() {
    for (const route of data.routes) {
      const a = data.places[route.a], b = data.places[route.b];
      places.appendChild(s("line", { class: "route", x1: a.x, y1: a.y, x2: b.x, y2: b.y },
        tip(`${a.name} – ${b.name}: ${route.minutes} min`)));
    }
    data.places.forEach((node, index) => {
      if (node.hub) {
        places.appendChild(s("rect", { class: "hub", x: node.x - 5, y: node.y - 5, width: 10, height: 10 },
          tip(`${node.name} (the area's centre)`)));
        places.appendChild(s("text", { class: "area-label", x: node.x, y: node.y + 20, "text-anchor": "middle" },
          node.name));
        return;
      }
      const circle = s("circle", { class: "place", cx: node.x, cy: node.y, r: 8, "data-place-node": node.name },
        tip(`${node.name} (${node.area})`));
      placeNodes[index] = circle;
      places.appendChild(circle);
      const dx = node.anchor === "start" ? 12 : node.anchor === "end" ? -12 : 0;
      const dy = node.anchor === "middle" ? 24 : 4;
      places.appendChild(s("text", { class: "place-label", x: node.x + dx, y: node.y + dy,
        "text-anchor": node.anchor }, short(node.name, 30)));
    });
    data.agents.forEach((name, lane) => {
      const marker = s("circle", { class: `marker ${colour(lane)}`, r: 6, "data-agent-marker": name, display: "none" },
        tip(name));
      markers.push(marker);
      places.appendChild(marker);
    });
  }

  // ---- status list
  const statusRows = [];
  function drawStatus() {
    const list = byId("status");
    data.agents.forEach((name, lane) => {
      const where = h("span", { class: "where" });
      const line = h("div", { class: "line" });
      const row = h("li", { "data-agent-status": name }, h("span", { class: `swatch ${colour(lane)}` }),
        h("b", { class: "name" }, name), " ", where, line);
      statusRows.push({ where, line });
      list.appendChild(row);
    });
  }

  // ---- the scrubber: everything above follows the tick it points at
  const scrubber = byId("scrubber");
  const clock = byId("clock");
  let current = 0;

  function show(index) {
    current = index;
    const frame = data.frames[index];
    if (!frame) {
      clock.textContent = "no tick was closed in this log";
      scrubber.disabled = true;
      return;
    }
    scrubber.value = String(index);
    clock.textContent = longTime(frame.minute);
    const cursor = byId("cursor");
    cursor.setAttribute("x1", xOf(frame.minute));
    cursor.setAttribute("x2", xOf(frame.minute));
    const crowd = new Map();
    frame.places.forEach((place, lane) => {
      if (place >= 0) crowd.set(place, [...(crowd.get(place) || []), lane]);
    });
    placeNodes.forEach((circle, i) => circle && circle.classList.toggle("occupied", crowd.has(i)));
    markers.forEach((marker) => marker.setAttribute("display", "none"));
    for (const [place, agentsThere] of crowd) {
      const node = data.places[place];
      agentsThere.forEach((lane, j) => {
        const row = Math.floor(j / 6), inRow = Math.min(6, agentsThere.length - row * 6);
        const marker = markers[lane];
        marker.setAttribute("cx", node.x + ((j % 6) - (inRow - 1) / 2) * 13);
        marker.setAttribute("cy", node.y - 17 - row * 13);
        marker.setAttribute("data-place", node.name);
        marker.setAttribute("display", "inline");
      });
    }
    statusRows.forEach(({ where, line }, lane) => {
      const place = frame.places[lane], text = frame.status[lane];
      where.textContent = place >= 0 ? `@ ${data.places[place].name}` : "";
      line.textContent = text >= 0 ? data.texts[text] : "";
    });
  }

  function frameAt(minute) {
    let best = 0;
    data.frames.forEach((frame, index) => { if (frame.minute <= minute) best = index; });
    return best;
  }

  // ---- the detail pane
  const detail = byId("detail");
  const detailTitle = byId("detail-title");

  function select(attribute, value) {
    document.querySelectorAll(".selected").forEach((node) => node.classList.remove("selected"));
    document.querySelectorAll(`[${attribute}]`).forEach((node) => {
      if (node.getAttribute(attribute) === value) node.classList.add("selected");
    });
  }

  function openDialogue(id) {
    const d = dialogues.get(id);
    if (!d) return;
    const conversation = d.kind === "conversation";
    select(conversation ? "data-conversation-id" : "data-session-id", id);
    clear(detail);
    detailTitle.textContent = conversation ? `Conversation @ ${d.place}`
      : d.kind === "roleplay" ? "Role-play session" : "Self-* loop";
    detail.appendChild(h("p", { class: "meta" }, `${d.id} · ${hhmm(d.start)}–${hhmm(d.end)} · ` +
      `${d.lanes.map((l) => data.agents[l]).join(", ")} · ended: ${d.ended || "still going when the log stops"}`));
    if (d.title) detail.appendChild(h("p", { class: "task" }, d.title));
    const transcript = h("ol", { id: "transcript" });
    for (const line of d.lines) {
      transcript.appendChild(h("li", { title: hhmm(line.minute) },
        h("span", { class: "speaker" }, line.role ? `${line.speaker} (${line.role})` : line.speaker), ": ", line.text));
    }
    if (!d.lines.length) transcript.appendChild(h("li", { class: "hint" }, "no lines in the log"));
    detail.appendChild(transcript);
  }

  function openReflection(id) {
    const r = reflections.get(id);
    if (!r) return;
    select("data-reflection-id", id);
    clear(detail);
    detailTitle.textContent = `Reflection by ${data.agents[r.lane]} at ${hhmm(r.minute)}`;
    detail.appendChild(h("h3", {}, "Questions it asked itself"));
    detail.appendChild(h("ul", {}, ...r.questions.map((q) => h("li", {}, q))));
    detail.appendChild(h("h3", {}, "Insights, with the memories they cite"));
    const list = h("ol", { id: "insights" });
    for (const insight of r.insights) {
      const cites = h("ul", { class: "cites" }, ...insight.cites.map((c) =>
        h("li", { "data-memory-id": c.id }, c.text === null ? `${c.id}: (not in the log)` : c.text)));
      if (!insight.cites.length) cites.appendChild(h("li", { class: "hint" }, "cites nothing"));
      list.appendChild(h("li", {}, h("span", { class: "insight" }, insight.text), cites));
    }
    detail.appendChild(list);
  }

  function openProbe(number) {
    const p = probes.get(number);
    if (!p) return;
    select("data-probe", number);
    clear(detail);
    detailTitle.textContent = `Probe ${p.number}: ${p.question}`;
    detail.appendChild(h("p", { class: "meta" }, `asked at ${longTime(p.minute)}` +
      (p.expect.length ? ` · knew = the answer says any of: ${p.expect.join(", ")}` : " · no expected words")));
    const table = h("table", { id: "probe-answers" },
      h("tr", {}, h("th", {}, "agent"), h("th", {}, "verdict"), h("th", {}, "answer")));
    for (const a of p.answers) {
      const memories = h("details", {}, h("summary", {}, `memories it drew on (${a.memories.length})`),
        h("ul", {}, ...a.memories.map((m) => h("li", {}, m))));
      table.appendChild(h("tr", { "data-probe-agent": a.agent }, h("td", { class: "agent" }, a.agent),
        h("td", { class: `verdict v-${a.verdict.replace(/\W+/g, "-")}` }, a.verdict),
        h("td", {}, h("div", { class: "answer" }, a.answer), memories)));
    }
    detail.appendChild(table);
  }

  // ---- plots: inline SVG, one value per simulated hour
  function chart(title, points, options) {
    const W = 420, H = 150, left = 30, bottom = 20, top = 8;
    const top_ = Math.max(options.max || 0, ...points.map((p) => p.value), 1);
    const plotW = W - left - 8, plotH = H - bottom - top;
    const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img" });
    const yOf = (v) => top + plotH - (v / top_) * plotH;
    svg.appendChild(s("line", { class: "axis", x1: left, x2: W - 8, y1: yOf(0), y2: yOf(0) }));
    svg.appendChild(s("text", { class: "tick-label", x: left - 4, y: yOf(top_) + 4, "text-anchor": "end" }, String(top_)));
    svg.appendChild(s("text", { class: "tick-label", x: left - 4, y: yOf(0) + 4, "text-anchor": "end" }, "0"));
    const n = Math.max(points.length, 1);
    const slot = plotW / (options.line ? Math.max(n - 1, 1) : n);
    const labelEvery = Math.max(1, Math.ceil(40 / slot));
    points.forEach((p, i) => {
      const x = left + i * slot + (options.line ? 0 : slot / 2);
      if (i % labelEvery === 0) {
        svg.appendChild(s("text", { class: "tick-label", x, y: H - 6, "text-anchor": "middle" }, hhmm(p.minute)));
      }
      if (!options.line) {
        svg.appendChild(s("rect", { class: `bar ${options.cls}`, x: x - slot * 0.35, width: slot * 0.7,
          y: yOf(p.value), height: yOf(0) - yOf(p.value) }, tip(`${hhmm(p.minute)}: ${p.value} ${options.unit}`)));
      }
    });
    if (options.line) {
      const xy = points.map((p, i) => [left + i * slot, yOf(p.value)]);
      svg.appendChild(s("polyline", { class: `spread ${options.cls}`, points: xy.map((q) => q.join(",")).join(" ") }));
      xy.forEach(([x, y], i) => svg.appendChild(s("circle", { class: "spread-point", cx: x, cy: y, r: 3 },
        tip(`${hhmm(points[i].minute)}: ${points[i].value} ${options.unit}`))));
    }
    return h("figure", { class: "plot", "data-plot": options.name }, h("figcaption", {}, title), svg);
  }

  function drawPlots() {
    const plots = byId("plots");
    const hours = data.hours.map((hour, i) => ({ minute: i * 60, hour }));
    plots.appendChild(chart("Model calls per simulated hour",
      hours.map(({ minute, hour }) => ({ minute, value: hour.calls })), { cls: "calls", unit: "model calls", name: "calls" }));
    plots.appendChild(chart("Conversations started per simulated hour",
      hours.map(({ minute, hour }) => ({ minute, value: hour.conversations })),
      { cls: "talks", unit: "conversations", name: "conversations" }));
    for (const p of data.probes) {
      if (!p.spread.length) continue;
      plots.appendChild(chart(`Probe ${p.number}: agents who had met the fact (${p.expect.join(", ")}) — ${p.question}`,
        p.spread.map((point) => ({ minute: point.minute, value: point.heard })),
        { line: true, max: data.agents.length, cls: "diffusion", unit: `of ${data.agents.length} agents`,
          name: `diffusion-${p.number}` }));
    }
  }

  function drawProbes() {
    const list = byId("probes");
    for (const p of data.probes) {
      list.appendChild(h("li", {}, h("button", { type: "button", class: "probe", "data-probe": p.number },
        `#${p.number} at ${hhmm(p.minute)}: ${p.question} (${p.answers.length} answers)`)));
    }
    if (!data.probes.length) list.appendChild(h("li", { class: "hint" }, "no probe was asked in this run"));
  }

  // ---- wiring
  drawLanes();
  drawPlaces();
  drawStatus();
  drawProbes();
  drawPlots();
  scrubber.max = String(Math.max(0, data.frames.length - 1));
  scrubber.addEventListener("input", () => show(Number(scrubber.value)));
  lanes.addEventListener("click", (event) => {
    const target = event.target.closest("[data-conversation-id],[data-session-id],[data-reflection-id]");
    if (!target) {
      const box = lanes.getBoundingClientRect();
      const minute = (event.clientX - box.left - LABEL) / perMinute;
      if (minute >= 0) show(frameAt(minute));
      return;
    }
    if (target.hasAttribute("data-reflection-id")) openReflection(target.getAttribute("data-reflection-id"));
    else openDialogue(target.getAttribute("data-conversation-id") || target.getAttribute("data-session-id"));
  });
  byId("probes").addEventListener("click", (event) => {
    const button = event.target.closest("[data-probe]");
    if (button) openProbe(button.getAttribute("data-probe"));
  });
  const play = byId("play");
  let timer = null;
  const stop = () => { clearInterval(timer); timer = null; play.textContent = "▶"; play.setAttribute("aria-label", "play"); };
  play.addEventListener("click", () => {
    if (timer) { stop(); return; }
    if (current >= data.frames.length - 1) show(0);
    play.textContent = "❚❚";
    play.setAttribute("aria-label", "pause");
    timer = setInterval(() => (current >= data.frames.length - 1 ? stop() : show(current + 1)), 250);
  });
  show(0);
  document.body.setAttribute("data-ready", String(Math.round(performance.now())));  // ms from navigation start
})();
