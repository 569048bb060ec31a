// ClusterMap: the coordinator in the centre, nodes around it grouped by region, each
// coordinator->node link coloured by its quality class. Clicking a node sets `selected`;
// a "pulse" message flashes the given nodes' links (an update arrived).
// Events are drawn, each with a hover text: a crashed node is dimmed with a cross, a Byzantine
// (fault-injected) node has a purple ring and a "B", a quarantined one a "Q", and a link under a
// latency spike is a thick zigzag dash with "+N ms" at its middle.

// The HTML parser puts <svg> in the SVG namespace, so the namespace name need not be spelled here.
const SVG_NS = (() => {
  const holder = document.createElement("div");
  holder.innerHTML = "<svg></svg>";
  return holder.firstChild.namespaceURI;
})();
const QUALITY_COLORS = {
  Excellent: "#1a9641",
  Good: "#7cc242",
  Fair: "#e6c229",
  Poor: "#f08c2a",
  Critical: "#d7301f",
  Offline: "#9e9e9e",
};
const WIDTH = 820; // room for labels left and right of the ring (never clipped)
const HEIGHT = 560;
const CENTER = { x: WIDTH / 2, y: HEIGHT / 2 - 14 };
const RING = 150; // node ring radius
const MARKS = { crashed: "\u2715", byzantine: "B", quarantined: "Q" };
const REGION_GAP = 0.22; // radians left empty between two regions

function svg(tag, attrs = {}, parent = null) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  if (parent) parent.appendChild(el);
  return el;
}

// Regions in order of first appearance, each given an arc proportional to its node count.
function placeNodes(nodes) {
  const regions = [];
  const byRegion = new Map();
  for (const node of nodes) {
    if (!byRegion.has(node.region)) {
      byRegion.set(node.region, []);
      regions.push(node.region);
    }
    byRegion.get(node.region).push(node);
  }
  const gaps = regions.length > 1 ? regions.length * REGION_GAP : 0;
  const step = nodes.length ? (2 * Math.PI - gaps) / nodes.length : 0;
  const places = new Map();
  const arcs = [];
  let angle = -Math.PI / 2 - (regions.length > 1 ? 0 : step * (nodes.length - 1) / 2);
  if (regions.length > 1) angle += REGION_GAP / 2;
  for (const region of regions) {
    const members = byRegion.get(region);
    const start = angle;
    for (const node of members) {
      places.set(node.id, { angle, x: CENTER.x + RING * Math.cos(angle), y: CENTER.y + RING * Math.sin(angle) });
      angle += step;
    }
    arcs.push({ region, start, end: angle - step });
    angle += regions.length > 1 ? REGION_GAP : 0;
  }
  return { places, arcs };
}

function arcPath(radius, start, end) {
  const a = { x: CENTER.x + radius * Math.cos(start), y: CENTER.y + radius * Math.sin(start) };
  const b = { x: CENTER.x + radius * Math.cos(end), y: CENTER.y + radius * Math.sin(end) };
  return `M ${a.x} ${a.y} A ${radius} ${radius} 0 ${end - start > Math.PI ? 1 : 0} 1 ${b.x} ${b.y}`;
}

function render({ model, el }) {
  el.classList.add("hgl-cluster-map-host");
  const root = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "hgl-cluster-map", role: "img" });
  el.appendChild(root);
  let parts = new Map(); // node id -> its elements
  let structure = "";

  const select = (id) => {
    model.set("selected", id);
    model.save_changes();
  };

  function build(nodes) {
    root.replaceChildren();
    parts = new Map();
    const { places, arcs } = placeNodes(nodes);
    const nodeRadius = Math.max(6, Math.min(14, (Math.PI * RING) / Math.max(nodes.length, 1) / 1.6));

    const background = svg("rect", { x: 0, y: 0, width: WIDTH, height: HEIGHT, class: "hgl-background" }, root);
    background.addEventListener("click", () => select(-1));

    const regionLayer = svg("g", { class: "hgl-regions" }, root);
    for (const { region, start, end } of arcs) {
      const pad = nodeRadius / RING + 0.04;
      svg("path", { d: arcPath(RING, start - pad, end + pad), class: "hgl-region-arc" }, regionLayer);
      const mid = (start + end) / 2;
      const r = RING + nodeRadius + 80; // outside the node labels
      const label = svg("text", {
        x: CENTER.x + r * Math.cos(mid), y: CENTER.y + r * Math.sin(mid) + 4,
        class: "hgl-region-label", "text-anchor": "middle",
      }, regionLayer);
      label.textContent = region;
    }

    const linkLayer = svg("g", { class: "hgl-links" }, root);
    const nodeLayer = svg("g", { class: "hgl-nodes" }, root);
    for (const node of nodes) {
      const place = places.get(node.id);
      const link = svg("line", {
        x1: CENTER.x, y1: CENTER.y, x2: place.x, y2: place.y, class: "hgl-link", "data-link": node.id,
      }, linkLayer);
      const g = svg("g", { class: "hgl-node", "data-node": node.id, tabindex: 0, role: "button" }, nodeLayer);
      svg("circle", { cx: place.x, cy: place.y, r: nodeRadius, class: "hgl-halo" }, g);
      const dot = svg("circle", { cx: place.x, cy: place.y, r: nodeRadius, class: "hgl-dot" }, g);
      const mark = svg("text", {
        x: place.x, y: place.y + 4, class: "hgl-mark", "text-anchor": "middle",
      }, g);
      const tip = svg("title", {}, g);
      const mid = { x: (CENTER.x + place.x) / 2, y: (CENTER.y + place.y) / 2 };
      const spike = svg("g", { class: "hgl-spike-label", "data-spike-label": node.id }, linkLayer);
      svg("rect", { x: mid.x - 30, y: mid.y - 9, width: 60, height: 16, rx: 3 }, spike);
      const spikeText = svg("text", { x: mid.x, y: mid.y + 3, "text-anchor": "middle" }, spike);
      const spikeTip = svg("title", {}, spike);
      const lr = RING + nodeRadius + 12;
      const label = svg("text", {
        x: CENTER.x + lr * Math.cos(place.angle), y: CENTER.y + lr * Math.sin(place.angle) + 4,
        class: "hgl-node-label", "text-anchor": Math.abs(Math.cos(place.angle)) < 0.3 ? "middle"
          : Math.cos(place.angle) > 0 ? "start" : "end",
      }, g);
      g.addEventListener("click", (event) => {
        event.stopPropagation();
        select(model.get("selected") === node.id ? -1 : node.id);
      });
      g.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          select(model.get("selected") === node.id ? -1 : node.id);
        }
      });
      parts.set(node.id, { g, link, dot, tip, label, mark, spike, spikeText, spikeTip });
    }

    const hub = svg("g", { class: "hgl-coordinator" }, root);
    svg("circle", { cx: CENTER.x, cy: CENTER.y, r: 24 }, hub);
    const hubLabel = svg("text", { x: CENTER.x, y: CENTER.y + 42, "text-anchor": "middle" }, hub);
    hubLabel.textContent = model.get("coordinator_label");
    const hubIcon = svg("text", { x: CENTER.x, y: CENTER.y + 5, "text-anchor": "middle", class: "hgl-hub-icon" }, hub);
    hubIcon.textContent = "C";

    const legend = svg("g", { class: "hgl-legend" }, root);
    Object.entries(QUALITY_COLORS).forEach(([quality, color], i) => {
      const x = 14 + i * 96;
      svg("rect", { x, y: HEIGHT - 24, width: 12, height: 12, rx: 2, fill: color }, legend);
      const text = svg("text", { x: x + 17, y: HEIGHT - 14 }, legend);
      text.textContent = quality;
    });
  }

  // Attribute-only changes (quality, state, label) update in place, so pulses keep running.
  function update() {
    const nodes = model.get("nodes");
    const shape = JSON.stringify(nodes.map((n) => [n.id, n.region]));
    if (shape !== structure) {
      build(nodes);
      structure = shape;
    }
    const selected = model.get("selected");
    for (const node of nodes) {
      const { g, link, dot, tip, label, mark, spike, spikeText, spikeTip } = parts.get(node.id);
      const color = QUALITY_COLORS[node.quality] ?? QUALITY_COLORS.Offline;
      for (const item of [g, link]) {
        item.setAttribute("data-quality", node.quality);
        item.setAttribute("data-state", node.state);
      }
      link.setAttribute("stroke", color);
      dot.setAttribute("fill", color);
      g.classList.toggle("hgl-selected", node.id === selected);
      g.setAttribute("aria-pressed", String(node.id === selected));
      label.textContent = node.label;
      mark.textContent = MARKS[node.state] ?? "";
      const spiking = (node.spike_ms ?? 0) > 0;
      link.setAttribute("data-spike", String(spiking));
      g.setAttribute("data-spike", String(spiking));
      spike.style.display = spiking ? "" : "none";
      spikeText.textContent = spiking ? `+${Math.round(node.spike_ms)} ms` : "";
      spikeTip.textContent = spiking ? `node ${node.id}: latency spike, +${Math.round(node.spike_ms)} ms one-way now` : "";
      tip.textContent = `${node.label} | region ${node.region} | ${node.detail ?? `${node.quality} | ${node.state}`}`;
    }
  }

  function pulse(ids) {
    for (const id of ids) {
      const part = parts.get(id);
      if (!part) continue;
      for (const item of [part.g, part.link]) {
        item.classList.remove("hgl-pulse");
        void item.getBoundingClientRect(); // restart the CSS animation
        item.classList.add("hgl-pulse");
      }
    }
  }

  const onMessage = (msg) => {
    if (msg.type === "pulse") pulse(msg.nodes);
  };
  const onAnimationEnd = (event) => event.target.closest?.(".hgl-pulse")?.classList.remove("hgl-pulse");
  root.addEventListener("animationend", onAnimationEnd);
  model.on("change:nodes", update);
  model.on("change:selected", update);
  model.on("change:coordinator_label", () => { structure = ""; update(); });
  model.on("msg:custom", onMessage);
  update();

  return () => {
    model.off("change:nodes", update);
    model.off("change:selected", update);
    model.off("msg:custom", onMessage);
    root.removeEventListener("animationend", onAnimationEnd);
  };
}

export default { render };
