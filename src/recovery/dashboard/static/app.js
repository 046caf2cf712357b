// The recovery dashboard: polls /api/snapshot and redraws the page.
//
// Everything the page shows comes from the snapshot, except the sparklines:
// the failure rate between two polls, kept here for the last minute. Text
// from the stores (breaker and service names, tags) only ever goes into
// textContent, never into HTML.
"use strict";

const SPARK_SECONDS = 60;
const history = new Map(); // breaker name -> [{t, ok, failed, rate}]
let refresh = 1.0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function stateLabel(state) {
  return state.replace("_", " ").toUpperCase();
}

function percent(rate) {
  return rate === null || rate === undefined ? "–" : `${(rate * 100).toFixed(1)} %`;
}

function seconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 60) return `${value.toFixed(1)} s`;
  if (value < 3600) return `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
  return `${(value / 3600).toFixed(1)} h`;
}

function when(epoch) {
  return new Date(epoch * 1000).toLocaleString();
}

function bytes(size) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${size.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function showSection(id, section) {
  const node = document.getElementById(id);
  node.hidden = section === null || section === undefined;
  if (node.hidden) return null;
  const source = node.querySelector("h2 .source");
  if (source && section.source) source.textContent = section.source;
  const error = node.querySelector(":scope > .error");
  if (error) {
    error.hidden = !section.error;
    error.textContent = section.error ? `cannot read ${section.source}: ${section.error}` : "";
  }
  return node;
}

// -- breakers -----------------------------------------------------------------

function track(breaker, now) {
  // The failure rate among the calls judged since the previous poll.
  const points = history.get(breaker.name) || [];
  const last = points[points.length - 1];
  let rate = null;
  if (last && breaker.successful_calls >= last.ok && breaker.failed_calls >= last.failed) {
    const ok = breaker.successful_calls - last.ok;
    const failed = breaker.failed_calls - last.failed;
    rate = ok + failed === 0 ? null : failed / (ok + failed);
  }
  points.push({ t: now, ok: breaker.successful_calls, failed: breaker.failed_calls, rate });
  while (points.length && now - points[0].t > SPARK_SECONDS) points.shift();
  history.set(breaker.name, points);
  return points;
}

function sparkline(points, now) {
  const width = 200;
  const height = 32;
  const chart = svg("svg", {
    class: "spark",
    viewBox: `0 0 ${width} ${height}`,
    preserveAspectRatio: "none",
    role: "img",
  });
  chart.append(svg("line", { x1: 0, y1: height / 2, x2: width, y2: height / 2 }));
  let run = [];
  const flush = () => {
    if (run.length === 1) {
      const [cx, cy] = run[0].split(",");
      chart.append(svg("circle", { cx, cy, r: 1.5, fill: "#c62828" }));
    } else if (run.length > 1) {
      chart.append(svg("polyline", { points: run.join(" ") }));
    }
    run = [];
  };
  for (const point of points) {
    if (point.rate === null) {
      flush();
      continue;
    }
    const x = width - ((now - point.t) / SPARK_SECONDS) * width;
    const y = height - 2 - point.rate * (height - 4);
    run.push(`${x.toFixed(1)},${y.toFixed(1)}`);
  }
  flush();
  const title = svg("title", {});
  title.textContent = "failure rate between polls, last minute";
  chart.append(title);
  return chart;
}

function counter(label, value) {
  return el("div", {}, el("dt", {}, label), el("dd", {}, value));
}

function breakerCard(breaker, now) {
  const points = track(breaker, now);
  const recent = breaker.recent_failure_rate;
  let trial = null;
  if (breaker.state === "half_open") trial = el("div", { class: "trial" }, "trial calls allowed now");
  else if (breaker.next_trial !== null) {
    trial = el("div", { class: "trial" }, "next trial in ", el("strong", { class: "next-trial" }, seconds(breaker.next_trial)));
  }
  return el(
    "article",
    { class: `card ${breaker.state}`, "data-breaker": breaker.name },
    el(
      "div",
      { class: "top" },
      el("span", { class: "name" }, breaker.name),
      el("span", { class: `state ${breaker.state}` }, stateLabel(breaker.state)),
    ),
    el(
      "div",
      { class: "rate", title: `failure rate over the last minute, ${breaker.recent_calls} calls` },
      el("span", { class: `big${recent > 0.2 ? " bad" : ""}` }, percent(recent)),
      sparkline(points, now),
    ),
    el(
      "div",
      { class: "rate-label" },
      `failed in the last minute, of ${breaker.recent_calls} call${breaker.recent_calls === 1 ? "" : "s"}`,
    ),
    el(
      "dl",
      { class: "counters" },
      counter("calls", breaker.total_calls),
      counter("ok", breaker.successful_calls),
      counter("failed", breaker.failed_calls),
      counter("rejected", breaker.rejected_calls),
      counter("slow", breaker.slow_calls),
      counter("opened", breaker.times_opened),
    ),
    el(
      "div",
      { class: "trial" },
      breaker.state === "closed" ? `${breaker.consecutive_failures} failed in a row · ` : "",
      `${stateLabel(breaker.state).toLowerCase()} since ${when(breaker.since)}`,
    ),
    trial,
  );
}

function drawBreakers(section, now) {
  const node = showSection("breakers", section);
  if (!node) return;
  const cards = node.querySelector(".cards");
  cards.replaceChildren(...section.breakers.map((b) => breakerCard(b, now)));
  node.querySelector(".empty").hidden = Boolean(section.error) || section.breakers.length > 0;
  const names = new Set(section.breakers.map((b) => b.name));
  for (const name of history.keys()) if (!names.has(name)) history.delete(name);
}

// -- services, limiters, sagas, backups -------------------------------------

function drawServices(registries) {
  const node = document.getElementById("services");
  node.hidden = registries.length === 0;
  const holder = node.querySelector(".registries");
  holder.replaceChildren();
  for (const registry of registries) {
    holder.append(el("h3", {}, "registry ", el("span", { class: "source" }, registry.source)));
    if (registry.error) {
      holder.append(el("p", { class: "error" }, `cannot read ${registry.source}: ${registry.error}`));
      continue;
    }
    if (registry.services.length === 0) holder.append(el("p", { class: "muted" }, "No service registered."));
    for (const service of registry.services) {
      const rows = service.endpoints.map((e) =>
        el(
          "tr",
          { "data-endpoint": e.address },
          el("td", { class: "nowrap" }, el("code", {}, e.address)),
          el("td", {}, el("span", { class: `health ${e.health}` }, e.health)),
          el("td", { class: "num" }, e.weight),
          el("td", { class: "num" }, e.expires_in === null ? "never" : seconds(e.expires_in)),
          el("td", { class: "num" }, e.ejected_for > 0 ? seconds(e.ejected_for) : "–"),
          el("td", { class: "num" }, e.ejections),
        ),
      );
      holder.append(
        el(
          "table",
          { class: "rows", "data-service": service.name },
          el("caption", {}, el("b", {}, service.name),
            `: ${service.healthy} of ${service.endpoints.length} healthy`),
          el("thead", {}, el("tr", {}, ...["endpoint", "health", "weight", "heartbeat expires in",
            "ejected for", "ejections"].map((h, i) => el("th", i > 1 ? { class: "num" } : {}, h)))),
          el("tbody", {}, ...rows),
        ),
      );
    }
  }
}

function drawLimiters(section) {
  const node = showSection("limiters", section);
  if (!node) return;
  const rows = section.limiters.map((l) =>
    el("tr", { "data-limiter": l.name }, el("td", {}, l.name), el("td", { class: "num" }, seconds(l.idle_in))),
  );
  node.querySelector("tbody").replaceChildren(...rows);
  node.querySelector("table").hidden = rows.length === 0;
  node.querySelector(".empty").hidden = Boolean(section.error) || rows.length > 0;
}

function drawSagas(section) {
  const node = showSection("sagas", section);
  if (!node) return;
  const counts = Object.entries(section.counts || {}).map(([status, count]) =>
    el("span", { class: `pill ${status}`, "data-status": status }, status,
      el("b", {}, section.more.includes(status) ? `${count}+` : count)),
  );
  node.querySelector(".counts").replaceChildren(...counts);
  const rows = section.recent.map((s) =>
    el(
      "tr",
      { "data-saga": s.saga_id },
      el("td", { class: "nowrap" }, el("code", {}, s.saga_id)),
      el("td", {}, s.saga_type),
      el("td", {}, el("span", { class: `pill ${s.status}` }, s.status)),
      el("td", {}, s.owner || "–"),
      el("td", { class: "num" }, s.records),
      el("td", { class: "nowrap" }, when(s.updated_at)),
    ),
  );
  node.querySelector("tbody").replaceChildren(...rows);
}

function drawBackups(section) {
  const node = showSection("backups", section);
  if (!node) return;
  const locks = section.locks.map((l) => `${l.kind} lock by ${l.host} pid ${l.pid} (${l.purpose})`);
  node.querySelector(".locks").textContent =
    `${section.count} snapshot${section.count === 1 ? "" : "s"}` +
    (locks.length ? ` · ${locks.join(" · ")}` : " · no lock held");
  const rows = section.snapshots.map((s) =>
    el(
      "tr",
      { "data-snapshot": s.snapshot_id },
      el("td", { class: "nowrap" }, el("code", {}, s.snapshot_id.slice(0, 12))),
      el("td", {}, s.series),
      el("td", { class: "nowrap" }, when(s.created_at)),
      el("td", {}, s.host),
      el("td", {}, s.source),
      el("td", { class: "nowrap" }, s.tags.join(", ")),
      el("td", { class: "num" }, s.files),
      el("td", { class: "num" }, bytes(s.size)),
    ),
  );
  node.querySelector("tbody").replaceChildren(...rows);
}

// -- polling ------------------------------------------------------------------

function draw(snapshot) {
  const now = snapshot.taken_at;
  drawBreakers(snapshot.breakers, now);
  drawServices(snapshot.registries || []);
  drawLimiters(snapshot.limiters);
  drawSagas(snapshot.sagas);
  drawBackups(snapshot.backups);
  const any = snapshot.breakers || snapshot.limiters || snapshot.sagas || snapshot.backups ||
    (snapshot.registries || []).length;
  document.getElementById("nothing").hidden = Boolean(any);
  document.getElementById("taken").textContent = `as of ${new Date(now * 1000).toLocaleTimeString()}`;
}

function setLink(live, text) {
  const link = document.getElementById("link");
  link.className = `link ${live ? "live" : "down"}`;
  link.textContent = text;
}

async function poll() {
  try {
    const response = await fetch("/api/snapshot", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const snapshot = await response.json();
    refresh = snapshot.refresh || refresh;
    draw(snapshot);
    setLink(true, "live");
  } catch (error) {
    setLink(false, `disconnected (${error.message})`);
  }
  setTimeout(poll, refresh * 1000);
}

poll();
