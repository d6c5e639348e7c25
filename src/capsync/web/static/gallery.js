// The image gallery: filters, counts, an infinitely scrolled grid of thumbnails, selection
// and the actions on a selection (tags, datasets).
import { element, fillSelect, getJSON, inputToIso, send, showTime } from "./api.js";
import { Viewer } from "./viewer.js";

const PAGE_SIZE = 40;
const PRELOAD_PX = 600; // fetch the next page this far before the end of the grid shows

function counted(entries) {
  // [[value, count]] -> [[value, "value (count)"]]
  return entries.map(([value, n]) => [value, `${value || "(none)"} (${n})`]);
}

function sum(sources, key, keep) {
  const totals = new Map();
  for (const s of sources) if (keep(s)) totals.set(s[key], (totals.get(s[key]) || 0) + s.count);
  return [...totals.entries()].sort((a, b) => a[0].localeCompare(b[0]));
}

export class Gallery {
  constructor(root) {
    this.root = root;
    this.form = root.querySelector("#filters");
    this.grid = root.querySelector("#grid");
    this.sentinel = root.querySelector("#sentinel");
    this.selected = new Set();
    this.items = [];
    this.total = 0;
    this.generation = 0;
    this.pending = -1;
    this.done = false;
    this.datasets = [];
    this.viewer = new Viewer(document.getElementById("viewer"), () => this.refresh());
  }

  $(selector) {
    return this.root.querySelector(selector);
  }

  async start() {
    this.form.addEventListener("change", (event) => {
      if (!event.target.name) return; // the tag checkboxes: handled in loadOptions
      if (event.target.name === "part") this.form.elements.component.value = "";
      if (["part", "component"].includes(event.target.name)) this.form.elements.method.value = "";
      this.fillSources();
      this.reload();
    });
    this.form.addEventListener("reset", () =>
      setTimeout(() => {
        for (const box of this.$("#tag-options").querySelectorAll("input")) box.checked = false;
        this.fillSources();
        this.reload();
      }),
    );
    this.$("#select-all").addEventListener("click", () => {
      for (const item of this.items) this.selected.add(item.id);
      this.syncSelection();
    });
    this.$("#select-none").addEventListener("click", () => {
      this.selected.clear();
      this.syncSelection();
    });
    this.$("#add-tag").addEventListener("click", () => this.changeTags("add"));
    this.$("#remove-tag").addEventListener("click", () => this.changeTags("remove"));
    this.$("#add-to-dataset").addEventListener("click", () => this.changeDataset("add"));
    this.$("#remove-from-dataset").addEventListener("click", () => this.changeDataset("remove"));
    this.$("#create-dataset").addEventListener("click", () => this.createDataset());
    await this.loadOptions();
    await this.reload();
    // Only now: an observer set up earlier would load a first page that reload() then drops.
    new IntersectionObserver((entries) => entries.some((e) => e.isIntersecting) && this.more(), {
      rootMargin: `${PRELOAD_PX}px`,
    }).observe(this.sentinel);
  }

  say(text, error = false) {
    const message = this.$("#message");
    message.textContent = text;
    message.classList.toggle("error", error);
  }

  async act(what) {
    try {
      const text = await what();
      this.say(text);
      await this.refresh();
    } catch (error) {
      this.say(error.message, true);
    }
  }

  filterParams() {
    const form = this.form;
    const tags = [...this.$("#tag-options").querySelectorAll("input:checked")].map((b) => b.value);
    return {
      part: form.elements.part.value,
      component: form.elements.component.value,
      method: form.elements.method.value,
      dataset: form.elements.dataset.value,
      since: inputToIso(form.elements.since.value),
      until: inputToIso(form.elements.until.value),
      tag: tags,
    };
  }

  async loadOptions() {
    const [sources, tags, datasets] = await Promise.all([
      getJSON("/api/sources"),
      getJSON("/api/tags"),
      getJSON("/api/datasets"),
    ]);
    this.sources = sources.filter((s) => s.kind === "binary");
    this.fillSources();
    const checked = new Set(this.filterParams().tag);
    const options = this.$("#tag-options");
    options.replaceChildren(
      ...Object.entries(tags).map(([tag, n]) =>
        element(
          "label",
          {},
          element("input", { type: "checkbox", value: tag, checked: checked.has(tag) }),
          `${tag} (${n})`,
        ),
      ),
    );
    if (!options.children.length) options.append(element("span", { class: "muted" }, "no tags yet"));
    options.onchange = () => {
      const picked = this.filterParams().tag;
      this.$("#tag-summary").textContent = picked.length ? picked.join(" or ") : "any";
      this.reload();
    };
    this.$("#tag-list").replaceChildren(...Object.keys(tags).map((t) => element("option", { value: t })));
    this.datasets = datasets;
    const named = datasets.map((d) => [d.id, `${d.name} (${d.count})`]);
    fillSelect(this.form.elements.dataset, named, { all: "all" });
    fillSelect(this.$("#dataset-target"), named);
  }

  fillSources() {
    const form = this.form;
    const part = form.elements.part.value;
    const component = form.elements.component.value;
    fillSelect(form.elements.part, counted(sum(this.sources, "part_id", () => true)), { all: "all" });
    fillSelect(
      form.elements.component,
      counted(sum(this.sources, "component_name", (s) => !part || s.part_id === part)),
      { all: "all" },
    );
    fillSelect(
      form.elements.method,
      counted(
        sum(
          this.sources,
          "method_name",
          (s) => (!part || s.part_id === part) && (!component || s.component_name === component),
        ),
      ),
      { all: "all" },
    );
  }

  async refresh() {
    await this.loadOptions();
    await this.reload();
  }

  async reload() {
    this.generation += 1;
    this.items = [];
    this.last = "";
    this.done = false;
    this.grid.replaceChildren();
    this.$("#count").textContent = "…";
    await this.more();
  }

  sentinelNear() {
    return this.sentinel.getBoundingClientRect().top < window.innerHeight + PRELOAD_PX;
  }

  async more() {
    const generation = this.generation;
    if (this.done || this.pending === generation) return;
    this.pending = generation;
    let page;
    try {
      page = await getJSON("/api/binaries", {
        ...this.filterParams(),
        last: this.last,
        limit: PAGE_SIZE,
      });
    } catch (error) {
      this.say(error.message, true);
      return;
    } finally {
      if (this.pending === generation) this.pending = -1;
    }
    if (generation !== this.generation) return;
    this.total = page.total;
    this.items.push(...page.items);
    this.grid.append(...page.items.map((item) => this.tile(item)));
    this.last = page.last;
    this.done = !page.last;
    this.$("#count").textContent = String(page.total);
    this.$("#loaded").textContent = this.done ? "" : `${this.items.length} shown, scroll for more`;
    this.grid.dataset.loaded = String(this.items.length);
    this.syncSelection();
    if (!this.done && this.sentinelNear()) await this.more();
  }

  tile(item) {
    const open = () => this.viewer.open(item.id);
    const placeholder = () =>
      element("button", { class: "thumb placeholder", type: "button", onclick: open },
        item.file_extension || item.mime_type || "file");
    const thumb = item.is_image
      ? element("img", {
          class: "thumb",
          src: `/api/binaries/${item.id}/thumbnail`,
          loading: "lazy",
          alt: `${item.component_name} ${item.time_requested}`,
          onclick: open,
        })
      : placeholder();
    // An image Pillow cannot read has no thumbnail: show what it is instead.
    if (item.is_image) thumb.addEventListener("error", () => thumb.replaceWith(placeholder()));
    const pick = element("input", { type: "checkbox", "aria-label": "select" });
    pick.addEventListener("change", () => {
      if (pick.checked) this.selected.add(item.id);
      else this.selected.delete(item.id);
      this.syncSelection();
    });
    const boxes = item.bboxes.length ? ` · ${item.bboxes.length} box${item.bboxes.length > 1 ? "es" : ""}` : "";
    return element(
      "figure",
      { class: "tile", dataset: { id: item.id, time: item.time_requested } },
      element("label", { class: "pick" }, pick),
      thumb,
      element(
        "figcaption",
        {},
        element("span", {}, showTime(item.time_requested)),
        element("span", { class: "muted" }, `${item.component_name} · ${item.method_name}${boxes}`),
        element("span", { class: "tags" }, item.tags.map((t) => element("span", { class: "chip" }, t))),
      ),
    );
  }

  syncSelection() {
    for (const tile of this.grid.children) {
      const on = this.selected.has(tile.dataset.id);
      tile.classList.toggle("selected", on);
      tile.querySelector(".pick input").checked = on;
    }
    this.$("#selected-count").textContent = String(this.selected.size);
    this.$("#selection").hidden = this.selected.size === 0;
  }

  changeTags(how) {
    const tag = this.$("#tag-input").value.trim();
    if (!tag) return this.say("Type a tag first.", true);
    const ids = [...this.selected];
    return this.act(async () => {
      const done = await send("POST", "/api/tags", { binary_ids: ids, [how]: [tag] });
      return how === "add"
        ? `Tagged ${done.added} image(s) "${tag}".`
        : `Removed "${tag}" from ${done.removed} image(s).`;
    });
  }

  changeDataset(how) {
    const target = this.$("#dataset-target").value;
    if (!target) return this.say("Create a dataset first.", true);
    const ids = [...this.selected];
    return this.act(async () => {
      const done = await send("POST", `/api/datasets/${encodeURIComponent(target)}/binaries`, {
        [how]: ids,
      });
      return how === "add" ? `Added ${done.added} image(s).` : `Removed ${done.removed} image(s).`;
    });
  }

  createDataset() {
    const name = this.$("#dataset-name").value.trim();
    if (!name) return this.say("Name the dataset first.", true);
    const ids = [...this.selected];
    return this.act(async () => {
      const done = await send("POST", "/api/datasets", { name, binary_ids: ids });
      this.$("#dataset-name").value = "";
      return `Created dataset "${name}" with ${done.added} image(s).`;
    });
  }
}
