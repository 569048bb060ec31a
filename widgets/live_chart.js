// LiveChart: one plotly chart that draws the full synced traces on render and then grows by
// small "extend" messages (Plotly.extendTraces), never by resending whole arrays.
//
// Ordering: every snapshot of `traces` carries `_seq`, the number of the last delta it already
// includes, and each delta carries its own number. A view skips deltas it has, and on a gap
// (a delta sent while the page was still connecting) asks the kernel for a fresh snapshot.
// On render a view also asks for the current number, which closes the gap when no further
// delta would reveal it.

const LOADER_WAIT_MS = 30000;
const CONFIG = { responsive: true, displaylogo: false };

const DEFAULT_HEIGHT = 320;

// Whether no trace holds a point (then the chart shows its empty_text instead of blank -1..6 axes).
function isEmpty(traces) {
  return !traces.some((t) => (t.z && t.z.length) || (t.y && t.y.length) || (t.x && t.x.length));
}

// The div takes the height (CSS) and plotly autosizes into it, so width follows the output area.
// Title top left, legend top right, above the plot area: neither hides the other or the data.
function plotLayout(model, empty = false) {
  const { height, ...layout } = {
    margin: { l: 60, r: 16, t: 52, b: 48 },
    legend: { orientation: "h", x: 1, xanchor: "right", y: 1.0, yanchor: "bottom", font: { size: 11 } },
    ...model.get("plot_layout"),
    autosize: true,
  };
  const title = model.get("title");
  if (title && layout.title === undefined) {
    layout.title = { text: title, font: { size: 14 }, x: 0, xref: "paper", xanchor: "left", y: 0.98, yref: "container" };
  }
  const hint = model.get("empty_text");
  if (empty && hint) {
    for (const key of new Set(["xaxis", "yaxis", ...Object.keys(layout)])) {
      if (/^[xy]axis\d*$/.test(key)) layout[key] = { ...layout[key], visible: false };
    }
    layout.showlegend = false;
    layout.annotations = [{
      text: hint, showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5,
      font: { size: 13, color: "#666" }, align: "center",
    }];
  }
  return { layout, height: height ?? DEFAULT_HEIGHT };
}

// The shared PlotlyLoader's export; retried because on page load the referenced model may not
// be registered yet when this view renders.
async function loadPlotly(model, host) {
  const ref = model.get("_plotly");
  if (!ref) throw new Error("LiveChart: no PlotlyLoader reference in the widget state");
  const deadline = Date.now() + LOADER_WAIT_MS;
  for (;;) {
    try {
      const { exports } = await host.getWidget(ref);
      if (exports?.Plotly) return exports.Plotly;
      throw new Error("PlotlyLoader exported no Plotly");
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

function render({ model, el, host }) {
  const div = document.createElement("div");
  div.className = "hgl-live-chart";
  div.dataset.chart = model.get("title");
  el.classList.add("hgl-live-chart-host");
  el.appendChild(div);

  let seq = model.get("_seq") ?? 0; // last delta this view holds
  let awaitingReset = false;
  let Plotly = null;
  let disposed = false;

  // Plotly calls run one after another, in message order, after the first draw.
  let queue = Promise.resolve();
  const run = (op) => {
    queue = queue.then(() => (disposed ? undefined : op())).catch((error) => {
      console.error("[LiveChart]", model.get("title"), error);
    });
  };
  let empty = true;
  const layoutFor = () => {
    const { layout, height } = plotLayout(model, empty);
    div.style.height = `${height}px`;
    div.dataset.empty = String(empty);
    return layout;
  };
  const redraw = (traces) => {
    empty = isEmpty(traces);
    run(() => Plotly.react(div, structuredClone(traces), layoutFor(), CONFIG));
  };

  const initial = structuredClone(model.get("traces")); // snapshot taken together with `seq`
  empty = isEmpty(initial);
  run(async () => {
    try {
      Plotly = await loadPlotly(model, host);
    } catch (error) {
      div.textContent = `chart unavailable: ${error.message}`;
      div.classList.add("hgl-live-chart-error");
      throw error;
    }
    await Plotly.newPlot(div, initial, layoutFor(), CONFIG);
  });

  const requestResync = () => {
    console.debug("[LiveChart] missed a delta; asking for a snapshot:", model.get("title"));
    awaitingReset = true;
    model.send({ type: "resync" });
  };

  const onMessage = (msg) => {
    if (msg.type === "extend") {
      if (awaitingReset || msg.seq <= seq) return;
      if (msg.seq !== seq + 1) return requestResync();
      seq = msg.seq;
      const update = { x: msg.x, y: msg.y };
      run(async () => {
        await (msg.max_points > 0
          ? Plotly.extendTraces(div, update, msg.indices, msg.max_points)
          : Plotly.extendTraces(div, update, msg.indices));
        if (empty && !isEmpty(div.data)) {
          empty = false; // the first points: the real axes replace the hint
          await Plotly.react(div, div.data, layoutFor(), CONFIG);
        }
      });
    } else if (msg.type === "seq") {
      if (!awaitingReset && msg.seq > seq) requestResync();
    } else if (msg.type === "reset") {
      if (msg.seq < seq || (!awaitingReset && msg.seq === seq)) return; // another view's reset
      awaitingReset = false;
      seq = msg.seq;
      redraw(msg.traces);
    }
  };
  const onTraces = () => {
    awaitingReset = false;
    seq = model.get("_seq") ?? seq;
    redraw(model.get("traces"));
  };
  const onLayout = () => {
    div.dataset.chart = model.get("title");
    run(() => Plotly.react(div, div.data, layoutFor(), CONFIG));
  };

  model.on("msg:custom", onMessage);
  model.on("change:traces", onTraces);
  model.on("change:plot_layout", onLayout);
  model.on("change:title", onLayout);
  model.on("change:empty_text", onLayout);
  model.send({ type: "sync" });

  // The output area may size the chart after the first draw (Voila, collapsed cells).
  let frame = 0;
  const resizer = new ResizeObserver(() => {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => Plotly && div.isConnected && Plotly.Plots.resize(div));
  });
  resizer.observe(div);

  return () => {
    disposed = true;
    resizer.disconnect();
    model.off("msg:custom", onMessage);
    model.off("change:traces", onTraces);
    model.off("change:plot_layout", onLayout);
    model.off("change:title", onLayout);
    model.off("change:empty_text", onLayout);
    if (Plotly) Plotly.purge(div);
  };
}

export default { render };
