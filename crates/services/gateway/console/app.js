// The web console of Pedidos Veloz: one ES module, no build step, no library. It
// talks to the public API of the gateway that serves it, with the caller's credential
// (an API key or a bearer token) kept in this module's memory only: never in the
// browser's storage or a cookie, so a reload signs out. Every text from the
// API is put in the page with textContent, never as HTML.

const state = {
  credential: null, // the API key or token, in memory only
  me: { mode: "open", role: null, customer: null },
  items: [],
  cart: new Map(), // item id -> quantity
  ordersAfter: 0, // the admin order list's cursor
  ordersNext: null,
  paymentsNext: null,
};

const $ = (selector) => document.querySelector(selector);

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value !== null && value !== undefined) node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

const money = (n) => Number(n ?? 0).toFixed(2);

/** A random Idempotency-Key (crypto.randomUUID exists only on https and localhost). */
function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The message an API error body carries, or a plain description. */
function messageOf(status, body) {
  if (body && typeof body.error === "string") return body.error;
  return `the platform answered ${status}`;
}

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = !message;
}

/** Calls the API; returns {status, body, headers}. Network failures become errors shown. */
async function api(method, path, body, extraHeaders = {}) {
  const headers = { Accept: "application/json", ...extraHeaders };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.credential) {
    if (/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(state.credential)) headers.Authorization = `Bearer ${state.credential}`;
    else headers["X-API-Key"] = state.credential;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store", credentials: "omit" });
  } catch (err) {
    showError(`The gateway cannot be reached: ${err.message}`);
    throw err;
  }
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  return { status: response.status, body: json, headers: response.headers };
}

/** Like api(), but an answer outside 2xx is shown and thrown. */
async function must(method, path, body) {
  const answer = await api(method, path, body);
  if (answer.status < 200 || answer.status > 299) {
    showError(messageOf(answer.status, answer.body));
    throw new Error(messageOf(answer.status, answer.body));
  }
  showError("");
  return answer;
}

const nextLink = (headers) => {
  const link = headers.get("Link");
  const match = link && link.match(/<([^>]+)>;\s*rel="next"/);
  return match ? match[1] : null;
};

// ---- who am I ----

async function identify() {
  const answer = await api("GET", "/me");
  if (answer.status !== 200) {
    showError(messageOf(answer.status, answer.body));
    if (!state.credential) return;
    state.credential = null;
    return identify();
  }
  state.me = answer.body;
  const { mode, role, customer } = state.me;
  $("#mode").hidden = mode !== "open";
  $("#mode").textContent = "Open mode: no API keys or identity provider are configured, so anyone may do anything. Type a customer name to order.";
  $("#who").textContent = role ? `Signed in as ${role}${customer ? ` (${customer})` : ""}` : (mode === "open" ? "" : "Not signed in: the catalogue is public; sign in to order.");
  $("#sign-out").hidden = !state.credential;
  const name = $("#customer-name");
  name.readOnly = Boolean(customer);
  if (customer) name.value = customer;
  $("#operator-tab").hidden = !(mode === "open" || role === "admin");
  $("#orders-hint").textContent = mode === "open" ? "In the open mode your orders are those placed under the customer name you type in the cart." : "";
}

// ---- shop ----

async function loadCatalogue() {
  const { body } = await must("GET", "/items?limit=1000");
  state.items = body;
  const rows = body.map((item) => el("tr", { "data-item-id": item.id },
    el("th", { scope: "row" }, item.name, item.description ? el("small", {}, ` — ${item.description}`) : ""),
    el("td", {}, money(item.price)),
    el("td", { class: "stock" }, item.quantity),
    el("td", {}, el("label", { class: "sr-only", for: `qty-${item.id}` }, `Quantity of ${item.name}`),
      el("input", { id: `qty-${item.id}`, class: "qty", type: "number", min: "1", max: "10000", value: "1" })),
    el("td", {}, el("button", { type: "button", class: "add", onclick: () => addToCart(item.id) }, `Add ${item.name}`)),
  ));
  $("#catalogue tbody").replaceChildren(...rows);
  if (!body.length) $("#catalogue tbody").append(el("tr", {}, el("td", { colspan: "5" }, "No items yet: an operator creates them.")));
  renderCart();
}

function addToCart(id) {
  const quantity = Number($(`#qty-${id}`).value);
  if (!Number.isInteger(quantity) || quantity < 1) return showError("The quantity must be a whole number of at least 1.");
  state.cart.set(id, (state.cart.get(id) ?? 0) + quantity);
  showError("");
  renderCart();
}

function renderCart() {
  let total = 0;
  const lines = [...state.cart].map(([id, quantity]) => {
    const item = state.items.find((i) => i.id === id);
    total += (item?.price ?? 0) * quantity;
    return el("li", {}, `${quantity} × ${item?.name ?? `item ${id}`} `,
      el("button", { type: "button", onclick: () => { state.cart.delete(id); renderCart(); } }, `Remove ${item?.name ?? id}`));
  });
  $("#cart").replaceChildren(...(lines.length ? lines : [el("li", {}, "The cart is empty.")]));
  $("#cart-total").textContent = money(total);
  $("#place-order").disabled = !lines.length;
}

function describe(order) {
  const words = { paid: "Paid", payment_declined: "Payment declined: the units went back on sale", rejected: "Rejected", pending: "Pending: the outcome is not known yet", cancelled: "Cancelled" };
  return `Order ${order.id}: ${words[order.status] ?? order.status} — total ${money(order.total)}`;
}

async function placeOrder(event) {
  event.preventDefault();
  const items = [...state.cart].map(([item_id, quantity]) => ({ item_id, quantity }));
  const body = { customer: $("#customer-name").value, items, payment_method: $("#payment-method").value };
  const outcome = $("#outcome");
  outcome.textContent = "Placing the order…";
  const answer = await api("POST", "/orders", body, { "Idempotency-Key": randomKey() });
  const placed = answer.status === 201 || answer.status === 202;
  if (placed) state.cart.clear();
  // The stock as it is now, before the outcome is shown (a reload clears old errors).
  await loadCatalogue().catch(() => {});
  if (placed) {
    outcome.replaceChildren(el("p", { class: `status-${answer.body.order.status}` }, describe(answer.body.order)));
    if (answer.body.order.status === "pending") watch(answer.body.order.id);
  } else {
    outcome.replaceChildren(el("p", { class: "status-rejected" }, messageOf(answer.status, answer.body)));
    showError(messageOf(answer.status, answer.body));
  }
}

/** Polls a pending order until it settles. */
async function watch(id) {
  for (let i = 0; i < 60; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const answer = await api("GET", `/orders/${id}`);
    if (answer.status === 200 && answer.body.status !== "pending") {
      $("#outcome").replaceChildren(el("p", { class: `status-${answer.body.status}` }, describe(answer.body)));
      return loadCatalogue();
    }
  }
}

// ---- my orders ----

async function loadMyOrders() {
  const open = state.me.mode === "open";
  const name = $("#customer-name").value.trim();
  const tbody = $("#my-orders tbody");
  if (open && !name) return tbody.replaceChildren(el("tr", {}, el("td", { colspan: "5" }, "Type your customer name in the cart first.")));
  if (!open && !state.me.role) return tbody.replaceChildren(el("tr", {}, el("td", { colspan: "5" }, "Sign in to see your orders.")));
  const query = open ? `?customer=${encodeURIComponent(name)}&limit=1000` : "?limit=1000";
  const { body } = await must("GET", `/orders${query}`);
  const rows = body.reverse().map((order) => el("tr", { "data-order-id": order.id },
    el("th", { scope: "row" }, `#${order.id}`),
    el("td", { class: "status" }, order.status),
    el("td", {}, order.items.map((l) => `${l.quantity} × ${l.item_name ?? `item ${l.item_id}`}`).join(", ")),
    el("td", {}, money(order.total)),
    el("td", {}, ["paid", "pending"].includes(order.status)
      ? el("button", { type: "button", onclick: () => cancel(order.id, loadMyOrders) }, `Cancel order ${order.id}`) : ""),
  ));
  tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "5" }, "No orders yet."))]));
}

async function cancel(id, then) {
  await must("POST", `/orders/${id}/cancel`);
  await then();
}

// ---- operator ----

async function loadOperator() {
  await Promise.all([loadLive(), loadFaults(), loadItemsAdmin(), loadOrdersAdmin(), loadPayments()]);
}

/** The fault switches, when the platform runs with FAULTS_ENABLED (else the panel stays hidden). */
async function loadFaults() {
  const answer = await api("GET", "/admin/faults");
  $("#faults").hidden = answer.status !== 200;
  if (answer.status !== 200) return;
  const byFault = new Map();
  for (const f of answer.body.faults ?? []) {
    const entry = byFault.get(f.fault) ?? { ...f, components: [] };
    entry.components.push(f.component);
    entry.active = entry.active || f.active;
    byFault.set(f.fault, entry);
  }
  const rows = [...byFault.values()].map((f) => {
    const unit = f.unit === "probability" ? "probability 0-1" : "milliseconds";
    const value = el("input", { id: `fault-${f.fault}`, type: "number", min: "0", max: String(f.max), step: "any", value: f.value ?? "" , size: "6" });
    const state = f.active ? `on: ${f.value} (${f.remaining_seconds ?? "?"} s left)` : "off";
    return el("tr", { "data-fault": f.fault },
      el("th", { scope: "row" }, f.fault),
      el("td", {}, f.components.join(", ")),
      el("td", { class: "state" }, state),
      el("td", { class: "actions" },
        el("label", { class: "sr-only", for: value.id }, `Value of ${f.fault} (${unit})`), value,
        el("button", { type: "button", class: "switch-on", onclick: () => switchFault(f.fault, value.value) }, `Switch on ${f.fault}`),
        f.active ? el("button", { type: "button", class: "switch-off", onclick: () => switchFault(f.fault, null) }, `Switch off ${f.fault}`) : ""),
    );
  });
  $("#faults-admin tbody").replaceChildren(...rows);
}

async function switchFault(fault, value) {
  if (value === null) await must("DELETE", `/admin/faults/${fault}`);
  else await must("PUT", `/admin/faults/${fault}`, { value: Number(value) });
  await loadFaults();
}

async function loadLive() {
  const health = await api("GET", "/health");
  const pending = await api("GET", "/orders?status=pending&limit=1000");
  const rejected = await api("GET", "/orders?status=rejected&limit=1000");
  const count = (a) => (a.status === 200 ? String(a.body.length) + (nextLink(a.headers) ? "+" : "") : "unknown");
  const entries = [["Platform", health.body?.status ?? "unknown"]];
  for (const [name, value] of Object.entries(health.body?.backends ?? {})) entries.push([name, value]);
  entries.push(["Pending orders", count(pending)], ["Rejected for stock or unknown items", count(rejected)]);
  $("#live-state").replaceChildren(...entries.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: `health-${v}` }, v)]));
}

async function loadItemsAdmin() {
  const { body } = await must("GET", "/items?limit=1000");
  const rows = body.map((item) => {
    const name = el("input", { id: `edit-name-${item.id}`, value: item.name, maxlength: "200" });
    const price = el("input", { id: `edit-price-${item.id}`, value: money(item.price), inputmode: "decimal", size: "8" });
    const add = el("input", { id: `restock-${item.id}`, type: "number", min: "1", value: "10", size: "5" });
    return el("tr", { "data-item-id": item.id },
      el("th", { scope: "row" }, item.id),
      el("td", {}, el("label", { class: "sr-only", for: name.id }, `Name of item ${item.id}`), name),
      el("td", {}, el("label", { class: "sr-only", for: price.id }, `Price of item ${item.id}`), price),
      el("td", { class: "stock" }, item.quantity),
      el("td", {}, item.reserved),
      el("td", { class: "actions" },
        el("button", { type: "button", onclick: () => saveItem(item.id, name.value, price.value) }, `Save ${item.name}`),
        el("label", { class: "sr-only", for: add.id }, `Units to add to ${item.name}`), add,
        el("button", { type: "button", class: "restock", onclick: () => restock(item, Number(add.value)) }, `Restock ${item.name}`),
        el("button", { type: "button", class: "danger", onclick: () => deleteItem(item) }, `Delete ${item.name}`)),
    );
  });
  $("#items-admin tbody").replaceChildren(...rows);
}

async function saveItem(id, name, price) {
  await must("PATCH", `/items/${id}`, { name, price: Number(price) });
  await Promise.all([loadItemsAdmin(), loadCatalogue()]);
}

async function restock(item, units) {
  if (!Number.isInteger(units) || units < 1) return showError("Restock by a whole number of at least 1.");
  // The current stock is read again, so a sale since the page loaded is not undone.
  const { body } = await must("GET", `/items/${item.id}`);
  await must("PATCH", `/items/${item.id}`, { quantity: body.quantity + units });
  await Promise.all([loadItemsAdmin(), loadCatalogue()]);
}

async function deleteItem(item) {
  if (!window.confirm(`Delete ${item.name}?`)) return;
  await must("DELETE", `/items/${item.id}`);
  await Promise.all([loadItemsAdmin(), loadCatalogue()]);
}

async function createItem(event) {
  event.preventDefault();
  await must("POST", "/items", { name: $("#new-name").value, price: Number($("#new-price").value), quantity: Number($("#new-quantity").value) });
  event.target.reset();
  await Promise.all([loadItemsAdmin(), loadCatalogue()]);
}

async function loadOrdersAdmin(path) {
  const status = $("#filter-status").value;
  const customer = $("#filter-customer").value.trim();
  const query = new URLSearchParams({ limit: "20" });
  if (status) query.set("status", status);
  if (customer) query.set("customer", customer);
  const answer = await must("GET", path ?? `/orders?${query}`);
  state.ordersNext = nextLink(answer.headers);
  $("#orders-next").disabled = !state.ordersNext;
  const rows = answer.body.map((order) => el("tr", { "data-order-id": order.id },
    el("th", { scope: "row" }, `#${order.id}`),
    el("td", {}, order.customer),
    el("td", { class: "status" }, order.status),
    el("td", {}, money(order.total)),
    el("td", {}, ["paid", "pending"].includes(order.status) ? el("button", { type: "button", onclick: () => cancel(order.id, () => loadOrdersAdmin()) }, `Cancel order ${order.id}`) : ""),
  ));
  $("#orders-admin tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "5" }, "No orders match."))]));
}

async function loadPayments(path) {
  const answer = await api("GET", path ?? "/payments?limit=20");
  if (answer.status !== 200) return;
  state.paymentsNext = nextLink(answer.headers);
  $("#payments-next").disabled = !state.paymentsNext;
  const rows = answer.body.map((p) => el("tr", {},
    el("th", { scope: "row" }, `#${p.id}`), el("td", {}, p.order_id), el("td", {}, money(p.amount)), el("td", {}, p.method), el("td", { class: "status" }, p.status),
    el("td", {}, p.status === "approved" ? el("button", { type: "button", onclick: () => refund(p.id) }, `Refund payment ${p.id}`) : ""),
  ));
  $("#payments-admin tbody").replaceChildren(...rows);
}

async function refund(id) {
  await must("POST", `/payments/${id}/refund`);
  await loadPayments();
}

// ---- navigation and start ----

function show(view) {
  for (const button of document.querySelectorAll("nav button")) button.setAttribute("aria-current", button.dataset.view === view ? "page" : "false");
  for (const name of ["shop", "orders", "operator"]) $(`#view-${name}`).hidden = name !== view;
  const load = { shop: loadCatalogue, orders: loadMyOrders, operator: loadOperator }[view];
  load().catch(() => {});
}

async function signIn(event) {
  event.preventDefault();
  const value = $("#credential").value.trim();
  $("#credential").value = "";
  state.credential = value || null;
  await identify();
  show("shop");
}

document.addEventListener("DOMContentLoaded", async () => {
  for (const button of document.querySelectorAll("nav button")) button.addEventListener("click", () => show(button.dataset.view));
  $("#sign-in").addEventListener("submit", signIn);
  $("#sign-out").addEventListener("click", async () => { state.credential = null; await identify(); show("shop"); });
  $("#checkout").addEventListener("submit", placeOrder);
  $("#orders-refresh").addEventListener("click", () => loadMyOrders().catch(() => {}));
  $("#new-item").addEventListener("submit", (e) => createItem(e).catch(() => {}));
  $("#order-filter").addEventListener("submit", (e) => { e.preventDefault(); loadOrdersAdmin().catch(() => {}); });
  $("#orders-first").addEventListener("click", () => loadOrdersAdmin().catch(() => {}));
  $("#orders-next").addEventListener("click", () => state.ordersNext && loadOrdersAdmin(state.ordersNext).catch(() => {}));
  $("#payments-next").addEventListener("click", () => state.paymentsNext && loadPayments(state.paymentsNext).catch(() => {}));
  // The live state of the platform refreshes itself while the operator view is open.
  setInterval(() => { if (!$("#view-operator").hidden) loadLive().catch(() => {}); }, 5000);
  await identify();
  show("shop");
});
