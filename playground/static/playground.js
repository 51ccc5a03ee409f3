// The playground's page: one pane per person's chat with the bot, kept up to date by a long
// poll of /playground/state. Plain JavaScript, no build step, nothing from a CDN.
"use strict";

const BASE = "/playground";
const ALLOWED = new Set(["B", "STRONG", "I", "EM", "U", "INS", "S", "STRIKE", "DEL", "CODE",
                         "PRE", "A", "BLOCKQUOTE", "SPAN", "TG-SPOILER", "BR"]);
const panes = new Map();  // person id -> {pane, chat}
let people = [];
let active = null;  // the person shown on a narrow screen

async function post(path, body) {
  const answer = await fetch(BASE + path, {
    method: "POST",
    headers: {"content-type": "application/json"},
    body: JSON.stringify(body),
  });
  if (!answer.ok) {
    const detail = (await answer.json().catch(() => ({}))).detail;
    alert(typeof detail === "string" ? detail : "That did not go through: " + answer.status);
  }
  return answer;
}

// The bot's Telegram HTML, keeping only the tags Telegram formats: nothing else runs. Links
// in the text become links, as in Telegram.
function telegramHtml(html) {
  const parsed = new DOMParser().parseFromString(`<body>${html}</body>`, "text/html").body;
  const out = document.createDocumentFragment();
  const copy = (from, to) => {
    for (const node of from.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) {
        if (to.closest?.("a")) to.append(node.textContent);
        else linkify(node.textContent, to);
      } else if (node.nodeType === Node.ELEMENT_NODE && ALLOWED.has(node.tagName)) {
        const element = document.createElement(node.tagName === "TG-SPOILER" ? "span" : node.tagName);
        if (node.tagName === "A") linkTo(element, node.getAttribute("href") || "");
        copy(node, element);
        to.append(element);
      } else if (node.nodeType === Node.ELEMENT_NODE) {
        copy(node, to);
      }
    }
  };
  copy(parsed, out);
  return out;
}

function linkify(text, to) {
  let last = 0;
  for (const match of text.matchAll(/https?:\/\/[^\s<>"]+/g)) {
    to.append(text.slice(last, match.index));
    const link = document.createElement("a");
    link.textContent = match[0];
    linkTo(link, match[0]);
    to.append(link);
    last = match.index + match[0].length;
  }
  to.append(text.slice(last));
}

// A link; one that starts the bot with a parameter (an invite) is opened as a person here.
function linkTo(element, href) {
  const start = /^https:\/\/t\.me\/[A-Za-z0-9_]+\?start=([A-Za-z0-9_-]{1,64})$/.exec(href);
  if (start) {
    element.href = "#";
    element.title = "Open the link as someone in the playground";
    element.addEventListener("click", (event) => {
      event.preventDefault();
      chooseWhoOpens(element, start[1]);
    });
  } else if (/^https?:\/\//.test(href)) {
    element.href = href;
    element.target = "_blank";
    element.rel = "noopener";
  }
}

function chooseWhoOpens(link, parameter) {
  const pane = link.closest(".pane");
  const menu = pane.querySelector(".menu");
  menu.replaceChildren(...people.map((person) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `Open as ${person.name}`;
    button.addEventListener("click", () => {
      menu.hidden = true;
      post(`/people/${person.id}/messages`, {text: `/start ${parameter}`});
      show(person.id);
    });
    return button;
  }));
  menu.hidden = false;
}

function bubble(personId, message) {
  const item = document.createElement("li");
  item.className = `msg ${message.sender}`;
  item.dataset.message = message.id;
  if (message.sender === "bot") {
    item.append(telegramHtml(message.text));
  } else if (message.location) {
    item.textContent = `📍 ${message.location[0]}, ${message.location[1]}`;
  } else {
    item.textContent = message.text;
  }
  if (message.edited) {
    const edited = document.createElement("span");
    edited.className = "edited";
    edited.textContent = "edited";
    item.append(edited);
  }
  if (message.buttons.length) item.append(inlineKeyboard(personId, message));
  return item;
}

function inlineKeyboard(personId, message) {
  const keyboard = document.createElement("div");
  keyboard.className = "inline";
  for (const row of message.buttons) {
    const line = document.createElement("div");
    for (const button of row) {
      let element;
      if (button.url) {
        element = document.createElement("a");
        element.textContent = button.text;
        linkTo(element, button.url);
      } else {
        element = document.createElement("button");
        element.type = "button";
        element.textContent = button.text;
        element.addEventListener("click", () =>
          post(`/people/${personId}/taps`, {message_id: message.id, data: button.data}));
      }
      line.append(element);
    }
    keyboard.append(line);
  }
  return keyboard;
}

function replyKeyboard(person, rows, pane) {
  const keyboard = pane.querySelector(".keyboard");
  keyboard.replaceChildren(...rows.map((row) => {
    const line = document.createElement("div");
    for (const key of row) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = key.text;
      button.addEventListener("click", () => key.request_location
        ? (pane.querySelector(".place").hidden = false)
        : post(`/people/${person.id}/messages`, {text: key.text}));
      line.append(button);
    }
    return line;
  }));
}

function commandMenu(person, commands, pane) {
  const menu = pane.querySelector(".menu");
  menu.replaceChildren(...commands.map(({command, description}) => {
    const button = document.createElement("button");
    button.type = "button";
    button.innerHTML = "<b></b> <small></small>";
    button.querySelector("b").textContent = `/${command}`;
    button.querySelector("small").textContent = description;
    button.addEventListener("click", () => {
      const input = pane.querySelector(".compose input");
      input.value = `/${command} `;
      menu.hidden = true;
      input.focus();
    });
    return button;
  }));
}

function newPane(person) {
  const pane = document.getElementById("pane").content.firstElementChild.cloneNode(true);
  pane.dataset.person = person.id;
  pane.querySelector(".name").textContent = person.name;
  pane.querySelector(".role").textContent = `${person.role} · id ${person.id}`;
  const compose = pane.querySelector(".compose");
  compose.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = compose.elements.text.value.trim();
    if (!text) return;
    compose.elements.text.value = "";
    post(`/people/${person.id}/messages`, {text});
  });
  pane.querySelector(".menu-button").addEventListener("click", () => {
    const menu = pane.querySelector(".menu");
    if (menu.hidden) commandMenu(person, panes.get(person.id).chat.menu, pane);
    menu.hidden = !menu.hidden;
  });
  const place = pane.querySelector(".place");
  pane.querySelector(".place-button").addEventListener("click", () => (place.hidden = !place.hidden));
  place.addEventListener("submit", (event) => {
    event.preventDefault();
    place.hidden = true;
    post(`/people/${person.id}/locations`, {
      latitude: Number(place.elements.latitude.value),
      longitude: Number(place.elements.longitude.value),
    });
  });
  document.getElementById("panes").append(pane);
  return pane;
}

function show(personId) {
  active = personId;
  for (const [id, {pane}] of panes) pane.classList.toggle("active", id === personId);
  for (const tab of document.querySelectorAll("#tabs button")) {
    tab.classList.toggle("active", Number(tab.dataset.person) === personId);
  }
}

function render(state) {
  document.getElementById("token").textContent = state.api.token;
  people = state.chats.map((chat) => chat.person);
  for (const chat of state.chats) {
    const person = chat.person;
    const pane = panes.get(person.id)?.pane || newPane(person);
    panes.set(person.id, {pane, chat});
    const list = pane.querySelector(".messages");
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.replaceChildren(...chat.messages.map((message) => bubble(person.id, message)));
    if (atBottom) list.scrollTop = list.scrollHeight;
    replyKeyboard(person, chat.keyboard, pane);
  }
  document.getElementById("tabs").replaceChildren(...people.map((person) => {
    const tab = document.createElement("button");
    tab.type = "button";
    tab.dataset.person = person.id;
    tab.textContent = person.name;
    tab.addEventListener("click", () => show(person.id));
    return tab;
  }));
  show(active ?? people[0]?.id);
}

async function follow() {
  let version = -1;
  for (;;) {
    try {
      const answer = await fetch(`${BASE}/state?after=${version}`);
      if (!answer.ok) throw new Error(String(answer.status));
      const state = await answer.json();
      if (state.version !== version) render(state);
      version = state.version;
    } catch (error) {
      await new Promise((resolve) => setTimeout(resolve, 1000));  // the bot restarting
    }
  }
}

document.getElementById("add-person").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const answer = await post("/people", {name: form.elements.name.value,
                                        language: form.elements.language.value});
  if (answer.ok) {
    form.reset();
    show((await answer.json()).id);
  }
});
follow();
