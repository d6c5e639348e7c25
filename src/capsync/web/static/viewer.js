// One binary in full: the image with its boxes drawn, its metadata, tags, boxes and datasets.
// Drag on the image to draw a box, then name it.
import { element, getJSON, send, showTime } from "./api.js";

const SVG = "http://www.w3.org/2000/svg";
const MIN_BOX = 0.005; // a drag smaller than this (normalized) is a click, not a box

function svg(tag, attributes) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

const pct = (v) => `${(v * 100).toFixed(3)}%`;

export class Viewer {
  constructor(dialog, onChange) {
    this.dialog = dialog;
    this.onChange = onChange;
    this.changed = false;
    this.item = null;
    this.draft = null;
    this.overlay = dialog.querySelector("#overlay");
    this.img = dialog.querySelector("#viewer-img");
    this.boxForm = dialog.querySelector("#box-form");
    dialog.querySelector("#viewer-close").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      this.cancelDraft();
      if (this.changed) this.onChange();
      this.changed = false;
    });
    dialog.querySelector("#viewer-tag-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = event.target.elements.tag;
      const tag = input.value.trim();
      if (tag) this.change(() => send("POST", "/api/tags", { binary_ids: [this.item.id], add: [tag] }));
      input.value = "";
    });
    this.boxForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveDraft();
    });
    dialog.querySelector("#box-cancel").addEventListener("click", () => this.cancelDraft());
    // Fit the image to the room there is, scaling small ones up (the boxes scale with it).
    this.img.addEventListener("load", () => this.fit());
    window.addEventListener("resize", () => this.dialog.open && this.fit());
    this.overlay.addEventListener("pointerdown", (event) => this.startDraw(event));
    this.overlay.addEventListener("pointermove", (event) => this.moveDraw(event));
    this.overlay.addEventListener("pointerup", (event) => this.endDraw(event));
  }

  async open(id) {
    this.cancelDraft();
    const [item, datasets] = await Promise.all([getJSON(`/api/binaries/${id}`), getJSON("/api/datasets")]);
    this.item = item;
    this.datasetNames = new Map(datasets.map((d) => [d.id, d.name]));
    this.img.src = item.is_image ? `/api/binaries/${id}/content` : "";
    this.render();
    if (!this.dialog.open) this.dialog.showModal();
  }

  fit() {
    const { naturalWidth: w, naturalHeight: h } = this.img;
    if (!w || !h) return;
    const scale = Math.min((window.innerWidth * 0.96 - 360) / w, (window.innerHeight * 0.9) / h);
    this.img.style.width = `${Math.max(1, Math.round(w * scale))}px`;
    this.img.style.height = `${Math.max(1, Math.round(h * scale))}px`;
  }

  async reload() {
    this.item = await getJSON(`/api/binaries/${this.item.id}`);
    this.render();
  }

  async change(call) {
    try {
      await call();
      this.changed = true;
      await this.reload();
    } catch (error) {
      alert(error.message);
    }
  }

  render() {
    const item = this.item;
    const d = this.dialog;
    d.querySelector("#viewer-title").textContent = `${item.component_name} · ${item.method_name}`;
    const rows = [
      ["requested", showTime(item.time_requested)],
      ["received", showTime(item.time_received)],
      ["part", item.part_id],
      ["component", `${item.component_name} (${item.component_type})`],
      ["method", item.method_name],
      ["type", item.mime_type],
      ["size", `${item.size_bytes.toLocaleString()} bytes`],
      ["file", item.file_name],
      ["id", item.id],
    ];
    d.querySelector("#viewer-meta").replaceChildren(
      ...rows.filter(([, v]) => v).flatMap(([k, v]) => [element("dt", {}, k), element("dd", {}, v)]),
      element("dt", {}, "payload"),
      element("dd", {}, element("a", { href: `/api/binaries/${item.id}/content`, download: "" }, "download")),
    );
    for (const c of item.classifications) {
      d.querySelector("#viewer-meta").append(element("dt", {}, "class"), element("dd", {}, c.label));
    }
    const id = item.id;
    d.querySelector("#viewer-tags").replaceChildren(
      ...item.tags.map((tag) =>
        element("li", { class: "chip" }, tag,
          element("button", {
            type: "button",
            title: `remove tag ${tag}`,
            "aria-label": `remove tag ${tag}`,
            onclick: () => this.change(() => send("POST", "/api/tags", { binary_ids: [id], remove: [tag] })),
          }, "×"),
        ),
      ),
    );
    d.querySelector("#viewer-boxes").replaceChildren(
      ...item.bboxes.map((box) =>
        element("li", { dataset: { box: box.id } },
          element("span", {}, box.label + (box.confidence !== undefined ? ` (${box.confidence.toFixed(2)})` : "")),
          element("button", {
            type: "button",
            class: "link",
            "aria-label": `delete box ${box.label}`,
            onclick: () =>
              this.change(() => send("DELETE", `/api/binaries/${id}/boxes/${encodeURIComponent(box.id)}`)),
          }, "delete"),
        ),
      ),
    );
    if (!item.bboxes.length) d.querySelector("#viewer-boxes").append(element("li", { class: "muted" }, "none"));
    d.querySelector("#viewer-datasets").replaceChildren(
      ...item.dataset_ids.map((ds) =>
        element("li", { class: "chip" }, this.datasetNames.get(ds) || ds,
          element("button", {
            type: "button",
            "aria-label": `remove from dataset ${ds}`,
            onclick: () => this.change(() => send("POST", `/api/datasets/${ds}/binaries`, { remove: [id] })),
          }, "×"),
        ),
      ),
    );
    this.drawBoxes();
  }

  drawBoxes() {
    const nodes = [];
    for (const box of this.item.bboxes) {
      const x = box.x_min_normalized;
      const y = box.y_min_normalized;
      const w = box.x_max_normalized - x;
      const h = box.y_max_normalized - y;
      nodes.push(svg("rect", { x: pct(x), y: pct(y), width: pct(w), height: pct(h), "data-box": box.id }));
      const label = svg("text", { x: pct(x), y: pct(y), dx: 4, dy: y > 0.06 ? -5 : 15 });
      label.textContent = box.label;
      nodes.push(label);
    }
    this.overlay.replaceChildren(...nodes);
    if (this.draft) this.overlay.append(this.draft.rect);
  }

  point(event) {
    const r = this.overlay.getBoundingClientRect();
    const clamp = (v) => Math.min(1, Math.max(0, v));
    return [clamp((event.clientX - r.left) / r.width), clamp((event.clientY - r.top) / r.height)];
  }

  startDraw(event) {
    if (!this.item?.is_image || event.button !== 0) return;
    event.preventDefault();
    this.cancelDraft();
    this.overlay.setPointerCapture(event.pointerId);
    const [x, y] = this.point(event);
    const rect = svg("rect", { class: "drawing", x: pct(x), y: pct(y), width: 0, height: 0 });
    this.draft = { x0: x, y0: y, x1: x, y1: y, rect, dragging: true };
    this.overlay.append(rect);
  }

  moveDraw(event) {
    const draft = this.draft;
    if (!draft?.dragging) return;
    [draft.x1, draft.y1] = this.point(event);
    const box = this.draftBox();
    draft.rect.setAttribute("x", pct(box.x_min_normalized));
    draft.rect.setAttribute("y", pct(box.y_min_normalized));
    draft.rect.setAttribute("width", pct(box.x_max_normalized - box.x_min_normalized));
    draft.rect.setAttribute("height", pct(box.y_max_normalized - box.y_min_normalized));
  }

  endDraw(event) {
    const draft = this.draft;
    if (!draft?.dragging) return;
    this.moveDraw(event);
    draft.dragging = false;
    const box = this.draftBox();
    if (box.x_max_normalized - box.x_min_normalized < MIN_BOX || box.y_max_normalized - box.y_min_normalized < MIN_BOX) {
      this.cancelDraft();
      return;
    }
    this.boxForm.hidden = false;
    this.boxForm.querySelector("#box-label").focus();
  }

  draftBox() {
    const d = this.draft;
    return {
      x_min_normalized: Math.min(d.x0, d.x1),
      y_min_normalized: Math.min(d.y0, d.y1),
      x_max_normalized: Math.max(d.x0, d.x1),
      y_max_normalized: Math.max(d.y0, d.y1),
    };
  }

  cancelDraft() {
    this.draft?.rect.remove();
    this.draft = null;
    this.boxForm.hidden = true;
    this.boxForm.reset();
  }

  async saveDraft() {
    const label = this.boxForm.querySelector("#box-label").value.trim();
    if (!label || !this.draft) return;
    const box = { label, ...this.draftBox() };
    this.cancelDraft();
    await this.change(() => send("POST", `/api/binaries/${this.item.id}/boxes`, box));
  }
}
