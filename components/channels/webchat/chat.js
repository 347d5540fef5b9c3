// Kefu's chat page. Every bot text is set with textContent, never parsed as HTML.
"use strict";

const WEBHOOK = "webhook";
const HISTORY = "history";
const LABELS = "labels";
const SENDER_KEY = "kefu-sender";
const RETRY_FOR_MS = 5 * 60 * 1000;  // then an unsent message waits for the customer to send it again

const messages = document.getElementById("messages");
const typing = document.getElementById("typing");
const statusLine = document.getElementById("status");
const composer = document.getElementById("composer");
const input = document.getElementById("text");

// randomUUID needs https (or localhost); getRandomValues works on plain http too.
function randomId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function senderId() {
  let id = localStorage.getItem(SENDER_KEY);
  if (!id) {
    id = randomId();
    localStorage.setItem(SENDER_KEY, id);
  }
  return id;
}
const sender = senderId();

// The page's labels, from the domain, in the conversation's language (the browser's at first).
let labels = {};

function applyLabels() {
  document.documentElement.lang = labels.lang || "en";
  if (labels.title) document.title = labels.title;
  document.querySelectorAll("[data-label]").forEach((n) => { n.textContent = labels[n.dataset.label] || ""; });
  document.querySelectorAll("[data-label-placeholder]").forEach((n) => {
    n.placeholder = labels[n.dataset.labelPlaceholder] || "";
  });
  document.querySelectorAll("[data-label-aria]").forEach((n) => {
    n.setAttribute("aria-label", labels[n.dataset.labelAria] || "");
  });
}

async function loadLabels() {
  const query = "?sender=" + encodeURIComponent(sender) + "&lang=" + encodeURIComponent(navigator.language || "");
  const reply = await fetchWithRetry(LABELS + query, {});
  if (!reply) return;
  const loaded = await reply.json().catch(() => null);
  if (loaded && typeof loaded === "object") {
    labels = loaded;
    applyLabels();
  }
}

function showStatus(text) {
  statusLine.textContent = text || "";
  statusLine.hidden = !text;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function addBubble(from, text) {
  const item = element("li", "message " + from);
  item.appendChild(element("div", "bubble", text));
  messages.appendChild(item);
  messages.scrollTop = messages.scrollHeight;
  return item;
}

function addButtons(item, buttons) {
  const row = element("div", "quick-replies");
  for (const button of buttons) {
    const choice = element("button", "", button.title || button.payload);
    choice.type = "button";
    choice.addEventListener("click", () => {
      row.querySelectorAll("button").forEach((b) => { b.disabled = true; });
      send(button.payload, button.title || button.payload);
    });
    row.appendChild(choice);
  }
  item.appendChild(row);
}

function addRating(item, replyId) {
  const row = element("div", "rating");
  row.setAttribute("aria-label", labels.rate_question || "");
  for (const [label, rating, title] of [["👍", "up", labels.helpful], ["👎", "down", labels.not_helpful]]) {
    const vote = element("button", "", label);
    vote.type = "button";
    vote.title = title || "";
    vote.dataset.rating = rating;
    vote.addEventListener("click", () => {
      row.querySelectorAll("button").forEach((b) => { b.disabled = true; });
      vote.setAttribute("aria-pressed", "true");
      send("/feedback" + JSON.stringify({ rating: rating, reply_id: replyId }), null);
    });
    row.appendChild(vote);
  }
  item.appendChild(row);
}

function renderBotMessage(message) {
  const text = message.text || (message.image ? message.image : "");
  if (!text && !(message.buttons && message.buttons.length)) return;
  const item = addBubble("bot", text);
  if (message.buttons && message.buttons.length) addButtons(item, message.buttons);
  if (message.reply_id) addRating(item, message.reply_id);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Retries a network error or a 5xx, backing off, for up to RETRY_FOR_MS: a restarted server
// picks the conversation up again. Null when it gave up.
async function fetchWithRetry(url, options) {
  const deadline = Date.now() + RETRY_FOR_MS;
  let wait = 500;
  for (;;) {
    try {
      const reply = await fetch(url, options);
      if (reply.status < 500) {
        showStatus("");
        return reply;
      }
    } catch (error) {
      // the server is down or restarting
    }
    if (Date.now() + wait > deadline) {
      showStatus("");
      return null;
    }
    showStatus(labels.reconnecting || "…");
    await sleep(wait);
    wait = Math.min(wait * 2, 4000);
  }
}

// A message the server never answered: the customer sends it again, with the same id.
function markUnsent(text, messageId, item) {
  const holder = item || messages.appendChild(element("li", "message user"));
  holder.classList.add("unsent");
  const again = element("button", "resend", "↻ " + (labels.resend || labels.send || ""));
  again.type = "button";
  again.addEventListener("click", () => {
    again.remove();
    holder.classList.remove("unsent");
    deliver(text, messageId, holder);
  });
  holder.appendChild(again);
}

let queue = Promise.resolve();

// Each new message gets its own id; every retry of it sends the same id, so the server
// processes it once however often it arrives.
function send(text, shown) {
  return deliver(text, randomId(), shown ? addBubble("user", shown) : null);
}

function deliver(text, messageId, item) {
  queue = queue.then(async () => {
    typing.hidden = false;
    try {
      const reply = await fetchWithRetry(WEBHOOK, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sender: sender, message: text, message_id: messageId }),
      });
      if (!reply) {
        markUnsent(text, messageId, item);
        return;
      }
      const body = await reply.json().catch(() => []);
      if (Array.isArray(body)) body.forEach(renderBotMessage);
      else if (body && body.error) addBubble("bot", body.error);
      await loadLabels();  // the customer may have switched language
    } finally {
      typing.hidden = true;
    }
  });
  return queue;
}

async function loadHistory() {
  const reply = await fetchWithRetry(HISTORY + "?sender=" + encodeURIComponent(sender), {});
  if (!reply) return;
  const past = await reply.json().catch(() => []);
  for (const message of past) addBubble(message.from === "user" ? "user" : "bot", message.text);
}

composer.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  input.value = "";
  send(text, text);
});

loadLabels().then(loadHistory);
