// Readings of one source: the latest as a table, one numeric field as a plot (uPlot) over a
// range. The server sends at most a min and a max per pixel column; live mode polls.
import uPlot from "./vendor/uPlot.esm.js";
import { element, fillSelect, getJSON, inputToIso, showTime } from "./api.js";

const LIVE_EVERY_MS = 2000;
const PLOT_HEIGHT = 320;
const MAX_COLUMNS = 40;

function flatten(data, prefix = "", out = {}) {
  for (const [key, value] of Object.entries(data)) {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) {
      flatten(value, `${prefix}${key}.`, out);
    } else {
      out[`${prefix}${key}`] = value;
    }
  }
  return out;
}

function unique(values) {
  return [...new Set(values)].sort();
}

export class Readings {
  constructor(root) {
    this.root = root;
    this.form = root.querySelector("#reading-source");
    this.plotBox = root.querySelector("#plot");
    this.status = root.querySelector("#plot-status");
    this.table = root.querySelector("#latest");
    this.started = false;
    this.timer = null;
    this.plot = null;
    this.plotField = null;
    this.busy = false;
    this.sources = [];
  }

  field(name) {
    return this.form.elements.namedItem(name);
  }

  async activate() {
    if (!this.started) {
      this.started = true;
      this.form.addEventListener("change", (event) => this.changed(event.target.name));
      window.addEventListener("resize", () => this.plot?.setSize(this.plotSize()));
      await this.loadSources();
    }
    clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), LIVE_EVERY_MS);
    await this.refresh();
  }

  deactivate() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async tick() {
    if (!this.field("live").checked || document.visibilityState !== "visible" || this.busy) return;
    await this.refresh();
  }

  async loadSources() {
    const sources = await getJSON("/api/sources");
    this.sources = sources.filter((s) => s.kind === "tabular");
    this.cascade();
  }

  cascade() {
    const part = this.field("part");
    const component = this.field("component");
    const method = this.field("method");
    fillSelect(part, unique(this.sources.map((s) => s.part_id)).map((p) => [p, p]));
    const inPart = this.sources.filter((s) => s.part_id === part.value);
    fillSelect(component, unique(inPart.map((s) => s.component_name)).map((c) => [c, c]));
    const inComponent = inPart.filter((s) => s.component_name === component.value);
    fillSelect(method, inComponent.map((s) => [s.method_name, `${s.method_name} (${s.count})`]));
  }

  async changed(name) {
    if (["part", "component", "method"].includes(name)) {
      this.cascade();
      this.field("field").replaceChildren();
    }
    this.form.classList.toggle("show-custom", this.field("range").value === "custom");
    await this.refresh();
  }

  source() {
    return {
      part: this.field("part").value,
      component: this.field("component").value,
      method: this.field("method").value,
    };
  }

  async refresh() {
    if (!this.field("component").value) {
      this.status.textContent = "No readings yet.";
      return;
    }
    // The newest refresh wins: an older one still waiting for the server drops its answers.
    const generation = (this.generation = (this.generation || 0) + 1);
    this.busy = true;
    try {
      await this.loadLatest(generation);
      if (generation === this.generation) await this.loadSeries(generation);
    } catch (error) {
      this.status.textContent = error.message;
    } finally {
      if (generation === this.generation) this.busy = false;
    }
  }

  async loadLatest(generation) {
    const latest = await getJSON("/api/readings/latest", { ...this.source(), limit: 20 });
    if (generation !== this.generation) return;
    fillSelect(this.field("field"), latest.fields.map((f) => [f, f]));
    const rows = latest.rows.map((r) => ({ time: r.time_requested, values: flatten(r.data) }));
    const columns = unique(rows.flatMap((r) => Object.keys(r.values))).slice(0, MAX_COLUMNS);
    this.table.tHead.replaceChildren(
      element("tr", {}, element("th", {}, "time requested"), columns.map((c) => element("th", {}, c))),
    );
    this.table.tBodies[0].replaceChildren(
      ...rows.map((r) =>
        element("tr", {},
          element("td", {}, showTime(r.time)),
          columns.map((c) => {
            const v = r.values[c];
            const text =
              v === undefined ? "" :
              typeof v === "object" ? JSON.stringify(v) :
              typeof v === "number" && !Number.isInteger(v) ? String(Number(v.toPrecision(7))) :
              String(v);
            return element("td", { class: typeof v === "number" ? "num" : "" }, text);
          }),
        ),
      ),
    );
  }

  range() {
    const range = this.field("range").value;
    if (range === "all") return {};
    if (range === "custom") {
      return { since: inputToIso(this.field("since").value), until: inputToIso(this.field("until").value) };
    }
    const now = Date.now();
    return { since: new Date(now - Number(range) * 1000).toISOString(), until: new Date(now).toISOString() };
  }

  plotSize() {
    return { width: Math.max(300, this.plotBox.clientWidth - 16), height: PLOT_HEIGHT };
  }

  async loadSeries(generation) {
    const field = this.field("field").value;
    if (!field) {
      this.plot?.destroy();
      this.plot = null;
      this.plotBox.dataset.points = "0";
      this.status.textContent = "This source has no numeric field.";
      return;
    }
    const size = this.plotSize();
    const series = await getJSON("/api/readings/series", {
      ...this.source(),
      ...this.range(),
      field,
      buckets: Math.round(size.width),
    });
    if (generation !== this.generation) return;
    const data = [series.t, series.y];
    if (this.plot && this.plotField === field) {
      this.plot.setData(data);
    } else {
      this.plot?.destroy();
      this.plotField = field;
      this.plot = new uPlot(
        {
          ...size,
          series: [{}, { label: field, stroke: "#2d5bd7", width: 1.5, points: { show: series.t.length < 200 } }],
          scales: { x: { time: true } },
          axes: [{}, { size: 60 }],
        },
        data,
        this.plotBox,
      );
    }
    this.plotBox.dataset.field = field;
    this.plotBox.dataset.points = String(series.t.length);
    this.plotBox.dataset.total = String(series.total);
    const how = series.downsampled ? " (the lowest and highest value of each pixel column)" : "";
    this.status.textContent = `${series.total.toLocaleString()} readings in range; ${series.t.length.toLocaleString()} points drawn${how}.`;
  }
}
