// The page's calls to its JSON API. A 401 means the session ended: reload to the login form.

async function check(response) {
  if (response.status === 401) {
    window.location.reload();
    throw new Error("logged out");
  }
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error(body?.error || `${response.status} ${response.statusText}`);
  return body;
}

export async function getJSON(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== undefined && one !== null && one !== "") query.append(name, one);
    }
  }
  const text = query.toString();
  return check(await fetch(text ? `${path}?${text}` : path, { credentials: "same-origin" }));
}

export async function send(method, path, body) {
  return check(
    await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
}

// ISO-8601 with up to 9 fractional digits -> Date.
export function parseTime(iso) {
  return iso ? new Date(iso.replace(/(\.\d{3})\d*/, "$1")) : null;
}

const TIME_FORMAT = {
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3,
};

// Local time to the millisecond: readings are often closer together than a second.
export function showTime(iso) {
  const when = parseTime(iso);
  return when ? when.toLocaleString(undefined, TIME_FORMAT) : "";
}

// A datetime-local input's value (local time) -> ISO-8601 UTC, or "" when empty.
export function inputToIso(value) {
  return value ? new Date(value).toISOString() : "";
}

export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== false && value !== undefined) node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

export function fillSelect(select, options, { all = null, keep = true } = {}) {
  const previous = select.value;
  select.replaceChildren();
  if (all !== null) select.append(element("option", { value: "" }, all));
  for (const [value, label] of options) select.append(element("option", { value }, label));
  if (keep && [...select.options].some((o) => o.value === previous)) select.value = previous;
}
