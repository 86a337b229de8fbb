// The translation page: plain JavaScript against the service's own API (/languages, /frontend/settings,
// /translate, /translate_file). Nothing is loaded from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { settings: null, languages: [], timer: null, sequence: 0 };

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

function setStatus(text) {
  $("status").textContent = text || "";
}

async function api(path, options) {
  const response = await fetch(path, options);
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = null;
  }
  if (!response.ok) {
    const message = body && body.error ? body.error : `HTTP ${response.status}`;
    throw new Error(message);
  }
  return body;
}

function option(code, name) {
  const o = document.createElement("option");
  o.value = code;
  o.textContent = name;
  return o;
}

function fillSelects(languages, settings) {
  const source = $("source-lang");
  const target = $("target-lang");
  source.replaceChildren(option("auto", "Detect language"));
  target.replaceChildren();
  for (const lang of languages) {
    source.appendChild(option(lang.code, lang.name));
    target.appendChild(option(lang.code, lang.name));
  }
  const saved = JSON.parse(localStorage.getItem("lslo.languages") || "{}");
  source.value = saved.source && [...source.options].some((o) => o.value === saved.source) ? saved.source : "auto";
  const wanted = saved.target || settings.language.target.code;
  target.value = [...target.options].some((o) => o.value === wanted) ? wanted : target.options[0].value;
}

function remember() {
  localStorage.setItem("lslo.languages", JSON.stringify({ source: $("source-lang").value, target: $("target-lang").value }));
}

function updateCount() {
  const limit = state.settings ? state.settings.charLimit : 0;
  const n = $("source-text").value.length;
  const count = $("count");
  count.textContent = `${n} / ${limit}`;
  count.classList.toggle("over", limit > 0 && n > limit);
}

function apiKey() {
  const key = $("api-key").value.trim();
  if (key) localStorage.setItem("lslo.apiKey", key);
  return key;
}

function showAlternatives(list) {
  const box = $("alternatives");
  box.replaceChildren();
  for (const text of list || []) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "alternative";
    b.textContent = text;
    b.title = "Use this translation";
    b.addEventListener("click", () => { $("target-text").value = text; });
    box.appendChild(b);
  }
}

// The glossary box: "source = target" lines (also "source → target" or a tab), a term alone: do not translate.
function glossaryFields() {
  const glossary = {};
  const dnt = [];
  for (const line of $("glossary-text").value.split("\n")) {
    const parts = line.split(/\s*(?:=|→|\t)\s*/);
    const source = (parts[0] || "").trim();
    if (!source) continue;
    const target = parts.slice(1).join(" ").trim();
    if (target) glossary[source] = target; else dnt.push(source);
  }
  const fields = {};
  if (Object.keys(glossary).length) fields.glossary = glossary;
  if (dnt.length) fields.dnt = dnt;
  return fields;
}

async function translate() {
  const text = $("source-text").value;
  const source = $("source-lang").value;
  const target = $("target-lang").value;
  showError("");
  if (!text.trim()) {
    $("target-text").value = "";
    $("detected").textContent = "";
    $("confidence").textContent = "";
    showAlternatives([]);
    return;
  }
  if (state.settings && text.length > state.settings.charLimit) {
    showError(`The text has ${text.length} characters; the limit is ${state.settings.charLimit}.`);
    return;
  }
  const sequence = ++state.sequence;
  setStatus("Translating…");
  const body = { q: text, source, target, alternatives: state.settings ? Math.min(2, state.settings.maxAlternatives) : 0,
                 confidence: true, ...glossaryFields() };
  const key = apiKey();
  if (key) body.api_key = key;
  try {
    const result = await api("/translate", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    if (sequence !== state.sequence) return; // a newer request is on its way
    $("target-text").value = result.translatedText;
    showAlternatives(result.alternatives);
    $("confidence").textContent = typeof result.confidence === "number"
      ? `Confidence ${Math.round(100 * result.confidence)} %` : "";
    const detected = result.detectedLanguage;
    $("detected").textContent = detected
      ? `Detected: ${nameOf(detected.language)} (${Math.round(detected.confidence)} %)` : "";
    setStatus("");
  } catch (err) {
    if (sequence !== state.sequence) return;
    setStatus("");
    showError(err.message);
  }
}

function nameOf(code) {
  const lang = state.languages.find((l) => l.code === code);
  return lang ? lang.name : code;
}

function scheduleTranslate() {
  updateCount();
  if (!$("live").checked) return;
  clearTimeout(state.timer);
  const wait = state.settings ? state.settings.frontendTimeout : 500;
  state.timer = setTimeout(translate, wait);
}

function swap() {
  const source = $("source-lang");
  const target = $("target-lang");
  const from = source.value === "auto" ? null : source.value;
  const translated = $("target-text").value;
  if (from) {
    source.value = target.value;
    target.value = from;
  } else {
    source.value = target.value;
  }
  if (translated) $("source-text").value = translated;
  remember();
  scheduleTranslate();
}

async function translateFile() {
  const input = $("file");
  const link = $("download");
  showError("");
  link.hidden = true;
  if (!input.files.length) {
    showError("Choose a file first.");
    return;
  }
  const form = new FormData();
  form.append("file", input.files[0]);
  form.append("source", $("source-lang").value);
  form.append("target", $("target-lang").value);
  const key = apiKey();
  if (key) form.append("api_key", key);
  setStatus("Translating the file…");
  try {
    const result = await api("/translate_file", { method: "POST", body: form });
    link.href = result.translatedFileUrl;
    link.hidden = false;
    setStatus("");
  } catch (err) {
    setStatus("");
    showError(err.message);
  }
}

async function start() {
  try {
    const [settings, languages] = await Promise.all([api("/frontend/settings"), api("/languages")]);
    state.settings = settings;
    state.languages = languages;
    fillSelects(languages, settings);
    $("formats").textContent = `Formats: ${settings.supportedFilesFormat.join(", ")}`;
    if (settings.keyRequired) {
      document.querySelector(".key").hidden = false;
      $("api-key").value = localStorage.getItem("lslo.apiKey") || "";
    }
    updateCount();
  } catch (err) {
    showError(`The service did not answer: ${err.message}`);
  }
  $("source-text").addEventListener("input", scheduleTranslate);
  $("glossary-text").addEventListener("input", scheduleTranslate);
  $("source-lang").addEventListener("change", () => { remember(); scheduleTranslate(); });
  $("target-lang").addEventListener("change", () => { remember(); scheduleTranslate(); });
  $("translate").addEventListener("click", () => { clearTimeout(state.timer); translate(); });
  $("swap").addEventListener("click", swap);
  $("copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText($("target-text").value);
      setStatus("Copied.");
    } catch (e) {
      $("target-text").select();
      document.execCommand("copy");
      setStatus("Copied.");
    }
  });
  $("translate-file").addEventListener("click", translateFile);
}

start();
