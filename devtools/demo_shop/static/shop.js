/**
 * The demo shop's own script: a cart in localStorage, a checkout through the shop's
 * backend, and Journey Engine through its SDK only (window.journey; calls made before
 * the SDK has loaded go through its stub queue, `window.journey = []`).
 */
(() => {
  "use strict";
  const CART = "halcyon-cart";
  const catalog = JSON.parse(document.getElementById("shop-catalog").textContent);
  const page = document.body.dataset.page;
  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
  const money = (amount, currency = "EUR") =>
    new Intl.NumberFormat("en-IE", { style: "currency", currency }).format(Number(amount));
  const el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    node.append(...children);
    return node;
  };

  // --- Journey Engine, through the SDK only -------------------------------------------

  window.journey = window.journey || [];
  /** fn(journey) once the session has started; never when the engine is unreachable. */
  const withJourney = (fn) => window.journey.push(["ready", fn]);
  const sdkLoaded = () => Boolean(window.journey && window.journey.version);
  const STAGES = ["awareness", "consideration", "decision", "conversion", "retention"];

  /** Moves the session forward to `stage` once (a reload does not record the move again). */
  function advance(stage, engagement) {
    withJourney((journey) => {
      const key = "halcyon-stage:" + journey.sessionId;
      const reached = localStorage.getItem(key) || "awareness";
      if (STAGES.indexOf(stage) <= STAGES.indexOf(reached)) return;
      localStorage.setItem(key, stage);
      journey.stage(stage, engagement).catch((error) => console.warn("stage not recorded", error));
    });
  }

  // --- the cart -----------------------------------------------------------------------

  const cart = {
    lines() {
      try {
        const lines = JSON.parse(localStorage.getItem(CART)) || [];
        return lines.filter((line) => catalog[line.sku] && line.quantity > 0);
      } catch {
        return [];
      }
    },
    save(lines) {
      localStorage.setItem(CART, JSON.stringify(lines));
      showCount();
    },
    add(sku) {
      const lines = cart.lines();
      const line = lines.find((item) => item.sku === sku);
      if (line) line.quantity = Math.min(10, line.quantity + 1);
      else lines.push({ sku, quantity: 1 });
      cart.save(lines);
    },
    set(sku, quantity) {
      cart.save(cart.lines().map((line) => (line.sku === sku ? { ...line, quantity } : line)).filter((line) => line.quantity > 0));
    },
    total: () => cart.lines().reduce((sum, line) => sum + Number(catalog[line.sku].price) * line.quantity, 0),
    clear: () => cart.save([]),
  };

  function showCount() {
    const count = cart.lines().reduce((sum, line) => sum + line.quantity, 0);
    for (const badge of $$("[data-cart-count]")) {
      badge.textContent = String(count);
      badge.classList.toggle("has-items", count > 0);
    }
  }

  function renderCart(editable) {
    const lines = cart.lines();
    for (const box of $$("[data-cart-lines]")) {
      box.replaceChildren();
      if (!lines.length) box.append(el("p", { class: "empty" }, "Your cart is empty. ", el("a", { href: "/" }, "Browse the collection")));
      for (const line of lines) {
        const item = catalog[line.sku];
        const row = el(
          "div",
          { class: "line", "data-line": line.sku },
          el("img", { src: item.image, alt: "" }),
          el("div", { class: "line-name" }, el("a", { href: "/products/" + item.slug }, item.name), el("span", { class: "muted" }, money(item.price) + " each")),
        );
        if (editable) {
          const minus = el("button", { type: "button", class: "step", "aria-label": "One less" }, "−");
          const plus = el("button", { type: "button", class: "step", "aria-label": "One more" }, "+");
          minus.onclick = () => { cart.set(line.sku, line.quantity - 1); renderCart(true); };
          plus.onclick = () => { cart.set(line.sku, Math.min(10, line.quantity + 1)); renderCart(true); };
          row.append(el("div", { class: "stepper" }, minus, el("span", { "data-quantity": "" }, String(line.quantity)), plus));
        } else {
          row.append(el("span", { class: "muted" }, "× " + line.quantity));
        }
        row.append(el("strong", { class: "line-total" }, money(Number(item.price) * line.quantity)));
        box.append(row);
      }
    }
    for (const total of $$("[data-cart-total]")) total.textContent = money(cart.total());
    const link = $("[data-checkout-link]");
    if (link) link.classList.toggle("disabled", !lines.length);
  }

  // --- pages --------------------------------------------------------------------------

  function productPage() {
    const sku = $("[data-sku]").dataset.sku;
    withJourney((journey) => journey.track("interaction", { interaction_type: "product_view", sku }));
    advance("consideration", { scroll_depth: 0.2, interaction_count: 1 });
    const toast = $("[data-toast]");
    for (const button of $$("[data-add-to-cart]")) {
      button.addEventListener("click", () => {
        cart.add(button.dataset.addToCart);
        withJourney((journey) => journey.track("interaction", { interaction_type: "add_to_cart", sku, quantity: 1 }));
        toast.replaceChildren("Added to your cart. ", el("a", { href: "/cart" }, "View cart →"));
        toast.hidden = false;
      });
    }
  }

  function cartPage() {
    renderCart(true);
    if (cart.lines().length) advance("decision", { interaction_count: 2 });
  }

  function attributionList(attribution) {
    const items = [];
    for (const variant of attribution.variants || []) {
      items.push(el("li", {}, el("span", { class: "tag" }, "content"), variant.variant + (variant.experiment ? " (experiment " + variant.experiment + ")" : "")));
    }
    for (const offer of attribution.offers || []) {
      items.push(el("li", {}, el("span", { class: "tag" }, "offer"), offer.name + " (" + offer.sku + ")"));
    }
    for (const cue of attribution.scarcity || []) {
      items.push(el("li", {}, el("span", { class: "tag cue-tag" }, "cue"), "“" + cue.text + "” shown " + cue.times + "×"));
    }
    if (!items.length) items.push(el("li", { class: "muted" }, "Nothing personalized was shown in this session."));
    const facts = el(
      "p",
      { class: "muted" },
      "Path " + attribution.journey_path + " · source " + attribution.source + " · device " + attribution.device_type + " · stages " + (attribution.stages || []).join(" → "),
    );
    return [el("ul", { class: "attribution-list" }, ...items), facts];
  }

  function checkoutPage() {
    renderCart(false);
    if (cart.lines().length) advance("decision", { interaction_count: 3 });
    const form = $("[data-checkout-form]");
    const error = $("[data-checkout-error]");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.hidden = true;
      const items = cart.lines().map((line) => ({ sku: line.sku, quantity: line.quantity }));
      if (!items.length) {
        error.textContent = "Your cart is empty.";
        error.hidden = false;
        return;
      }
      const button = $("[data-place-order]");
      button.disabled = true;
      const response = await fetch("/api/checkout", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ items }),
      });
      const order = await response.json();
      if (!response.ok) {
        button.disabled = false;
        error.textContent = order.error === "out_of_stock"
          ? "Sorry, only " + order.available + " of " + catalog[order.sku].name + " left."
          : "The order could not be placed: " + order.error;
        error.hidden = false;
        return;
      }
      cart.clear();
      $("[data-checkout]").hidden = true;
      const done = $("[data-confirmation]");
      $("[data-order-id]").textContent = order.order_id;
      $("[data-order-total]").textContent = money(order.total, order.currency);
      $("[data-order-lines]").replaceChildren(
        ...order.lines.map((line) => el("li", {}, el("span", {}, line.quantity + " × " + line.name), el("strong", {}, money(line.total, order.currency)))),
      );
      done.hidden = false;
      done.dataset.orderId = order.order_id;
      const box = $("[data-attribution]");
      const purchase = { type: "purchase", value: order.total, currency: order.currency, product: order.product, funnel_step: "checkout" };
      if (!sdkLoaded()) {
        // The SDK's stub queue sends it if the SDK loads later on this page.
        window.journey.push(["convert", purchase]);
        box.replaceChildren(el("p", { class: "muted" }, "Journey Engine is unreachable: the order is placed, the purchase is not recorded."));
        return;
      }
      try {
        const answer = await window.journey.convert(purchase);
        box.replaceChildren(...attributionList(answer.attribution || {}));
        box.dataset.conversionId = String(answer.conversion_id);
      } catch (failure) {
        box.replaceChildren(el("p", { class: "muted" }, "The purchase is stored in this browser and will be sent when Journey Engine answers."));
      }
    });
  }

  showCount();
  if (page === "product") productPage();
  if (page === "cart") cartPage();
  if (page === "checkout") checkoutPage();
})();
