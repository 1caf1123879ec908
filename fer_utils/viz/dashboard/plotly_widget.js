// One ES module for both widgets of plotly_widget.py:
// - the library widget (a `source` trait) loads plotly.js once per page as a classic script;
// - each figure widget (a `figure` trait) waits for it, draws with Plotly.react, redraws in place when the
//   figure changes and sends clicks back to the kernel.

function plotlyReady() {
  if (!globalThis.__ferPlotly) {
    let resolve;
    globalThis.__ferPlotly = new Promise((done) => (resolve = done));
    globalThis.__ferPlotly.resolve = resolve;
  }
  return globalThis.__ferPlotly;
}

function loadLibrary(source) {
  const ready = plotlyReady();
  if (globalThis.Plotly) {
    ready.resolve(globalThis.Plotly);
    return;
  }
  if (globalThis.__ferPlotlyLoading) return;
  globalThis.__ferPlotlyLoading = true;
  // plotly.min.js is a UMD bundle: with an AMD loader on the page it would register itself there
  // instead of defining the global Plotly.
  const amdDefine = globalThis.define;
  globalThis.define = undefined;
  const script = document.createElement("script");
  script.src = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
  script.onload = () => {
    globalThis.define = amdDefine;
    ready.resolve(globalThis.Plotly);
  };
  document.head.appendChild(script);
}

async function draw(model, plot) {
  const figure = model.get("figure");
  if (!figure || !figure.data) return;
  const Plotly = await plotlyReady();
  await Plotly.react(plot, figure.data, figure.layout || {}, { displaylogo: false });
  if (!plot.__ferClicks) {
    plot.__ferClicks = true;
    plot.on("plotly_click", (event) => {
      const point = event.points && event.points[0];
      if (point) model.send({ event: "click", x: point.x, y: point.y });
    });
  }
}

export default {
  initialize({ model }) {
    const source = model.get("source");
    if (source) loadLibrary(source);
  },
  render({ model, el }) {
    if (model.get("source") !== undefined) return;
    const plot = document.createElement("div");
    el.appendChild(plot);
    const redraw = () => draw(model, plot);
    model.on("change:figure", redraw);
    redraw();
    return () => {
      model.off("change:figure", redraw);
      if (globalThis.Plotly) globalThis.Plotly.purge(plot);
    };
  },
};
