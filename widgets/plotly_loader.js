// The one copy of plotly.js on a page.
//
// The kernel holds a single PlotlyLoader widget whose state carries plotly.min.js (read from
// the installed Python plotly package, sent once as a binary buffer). Its initialize() runs
// once per page, evaluates the library and exports it; every LiveChart awaits that export
// through anywidget's host.getWidget(). Evaluated copies are kept on globalThis by version,
// so two kernels on one page (two notebooks in JupyterLab) still evaluate it only once.

const CACHE = Symbol.for("hypergpu_lab.plotly");

function evaluate(source, version) {
  const text = typeof source === "string" ? source : new TextDecoder().decode(source);
  // plotly's UMD header takes the CommonJS branch when handed a `module`; that works the same
  // with or without an AMD loader (requirejs) on the page.
  const module = { exports: {} };
  new Function("module", "exports", `${text}\n//# sourceURL=plotly-${version}.min.js`)(module, module.exports);
  const Plotly = module.exports;
  if (typeof Plotly?.newPlot !== "function") throw new Error("plotly.js did not evaluate to the Plotly API");
  globalThis.Plotly ??= Plotly;
  return Plotly;
}

export function installPlotly(source, version) {
  const cache = (globalThis[CACHE] ??= new Map());
  if (!cache.has(version)) {
    try {
      cache.set(version, evaluate(source, version));
    } catch (error) {
      console.error("[hypergpu_lab] could not load plotly.js", error);
      throw error;
    }
  }
  return cache.get(version);
}

export default {
  initialize({ model }) {
    return { Plotly: installPlotly(model.get("source"), model.get("version")) };
  },
};
