// Kefu's chat page. Every bot text is set with textContent, never parsed as HTML.
"use strict";

const WEBHOOK = "webhook";
const HISTORY = "history";
const LABELS = "labels";
const SENDER_KEY = "kefu-sender";

const messages = document.getElementById("messages");
const typing = document.getElementById("typing");
const statusLine = document.getElementById("status");
const composer = document.getElementById("composer");
const input = document.getElementById("text");

function senderId() {
  let id = localStorage.getItem(SENDER_KEY);
  if (!id) {
    id = window.crypto && crypto.randomUUID ? crypto.randomUUID()
      : "web-" + Date.now().toString(36) + Math.random().toString(36).slice(2);
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

// Retries until the server answers: a restarted server picks the conversation up again.
async function fetchWithRetry(url, options) {
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
    showStatus(labels.reconnecting || "…");
    await sleep(wait);
    wait = Math.min(wait * 2, 4000);
  }
}

let queue = Promise.resolve();

function send(text, shown) {
  if (shown) addBubble("user", shown);
  queue = queue.then(async () => {
    typing.hidden = false;
    try {
      const reply = await fetchWithRetry(WEBHOOK, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ sender: sender, message: text }),
      });
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
