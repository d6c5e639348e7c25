// The data page: tabs, then the gallery and the readings.
import { Gallery } from "./gallery.js";
import { Readings } from "./readings.js";

const gallery = new Gallery(document.getElementById("gallery"));
const readings = new Readings(document.getElementById("readings"));
window.capsyncPage = { gallery, readings }; // for tests and the console

function show(tab) {
  for (const button of document.querySelectorAll(".tab")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === tab));
  }
  document.getElementById("gallery").hidden = tab !== "gallery";
  document.getElementById("readings").hidden = tab !== "readings";
  if (tab === "readings") readings.activate();
  else readings.deactivate();
  history.replaceState(null, "", `#${tab}`);
}

for (const button of document.querySelectorAll(".tab")) {
  button.addEventListener("click", () => show(button.dataset.tab));
}
gallery.start();
show(location.hash === "#readings" ? "readings" : "gallery");
