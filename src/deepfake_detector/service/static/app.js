// The deepfake-detector page: upload images to /v1/predict (videos to /v1/predict/video) and show each verdict.
// Plain browser JavaScript, no libraries; user-supplied text only ever goes into textContent.
"use strict";

const MAX_PARALLEL_UPLOADS = 2;
const MAX_BUSY_RETRIES = 5;
const VIDEO_EXTENSIONS = [".mp4", ".m4v", ".mov", ".avi", ".webm", ".mkv"];

const state = { model: null, queue: [], active: 0, done: 0, total: 0 };

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function percent(value) {
  return (100 * value).toFixed(1) + "%";
}

function megabytes(bytes) {
  return (bytes / (1024 * 1024)).toFixed(1) + " MB";
}

function isVideo(file) {
  const name = file.name.toLowerCase();
  return (file.type || "").startsWith("video/") || VIDEO_EXTENSIONS.some((ext) => name.endsWith(ext));
}

async function loadModelInfo() {
  try {
    const response = await fetch("/v1/model");
    if (!response.ok) throw new Error(await errorText(response));
    const model = await response.json();
    state.model = model;
    const name = model.name || model.architecture;
    $("model-info").textContent =
      `Model ${name} v${model.version} (${model.architecture}, ${model.engine}) · ${ruleText(model)} · ` +
      `up to ${model.limits.max_upload_mb} MB per image` +
      (model.limits.max_video_mb ?
        `, videos up to ${model.limits.max_video_mb} MB and ${model.limits.max_video_s} s` : "");
    if (model.detects) $("model-detects").textContent = model.detects;
  } catch (error) {
    $("model-info").textContent = `The model is not available: ${error.message}`;
    $("model-info").classList.add("error-text");
  }
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  } catch (ignored) {
    // not JSON: fall through to the status line
  }
  return `HTTP ${response.status} ${response.statusText}`;
}

function addFiles(fileList) {
  const files = Array.from(fileList || []);
  for (const file of files) {
    const card = createCard(file);
    $("results").prepend(card.root);
    const video = isVideo(file);
    const limitMb = state.model ? (video ? state.model.limits.max_video_mb : state.model.limits.max_upload_mb) : null;
    const limit = limitMb ? limitMb * 1024 * 1024 : Infinity;
    state.total += 1;
    if (file.size > limit) {
      showRejected(card, `${file.name}: file too large (${megabytes(file.size)}; the limit is ` +
        `${limitMb} MB per ${video ? "video" : "image"})`);
      finishOne();
      continue;
    }
    state.queue.push({ file, card });
  }
  updateSummary();
  pump();
}

function pump() {
  while (state.active < MAX_PARALLEL_UPLOADS && state.queue.length > 0) {
    const job = state.queue.shift();
    state.active += 1;
    check(job.file, job.card).finally(() => {
      state.active -= 1;
      finishOne();
      pump();
    });
  }
}

function finishOne() {
  state.done += 1;
  updateSummary();
}

function updateSummary() {
  const waiting = state.total - state.done;
  $("summary").textContent = state.total === 0 ? "" :
    waiting > 0 ? `Checking ${waiting} of ${state.total} images…` : `${state.total} images checked.`;
}

async function postFile(path, file, heatmap) {
  const mode = $("faces-mode").value;
  const url = `${path}?faces=${encodeURIComponent(mode)}${heatmap ? "&heatmap=true" : ""}`;
  for (let attempt = 0; ; attempt += 1) {
    const form = new FormData();
    form.append("file", file, file.name);
    const response = await fetch(url, { method: "POST", body: form });
    if (response.status === 503 && attempt < MAX_BUSY_RETRIES) {
      const wait = Math.min(30, Number(response.headers.get("Retry-After")) || 1);
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      continue;
    }
    if (!response.ok) throw new Error(await errorText(response));
    return response.json();
  }
}

const postImage = (file, heatmap) => postFile("/v1/predict", file, heatmap);
const postVideo = (file, heatmap) => postFile("/v1/predict/video", file, heatmap);

async function check(file, card) {
  try {
    if (isVideo(file)) {
      showVideoResult(card, file, await postVideo(file, false));
      return;
    }
    const result = await postImage(file, false);
    showResult(card, file, result);
  } catch (error) {
    const message = error.message.startsWith(file.name) ? error.message : `${file.name}: ${error.message}`;
    showRejected(card, message);
  }
}

function createCard(file) {
  const root = el("article", "card pending");
  root.dataset.status = "pending";
  const title = el("h2", "filename", file.name);
  title.title = file.name;
  const body = el("div", "card-body");
  body.append(el("p", "muted", "Checking…"));
  root.append(title, body);
  return { root, body };
}

function showRejected(card, message) {
  card.root.className = "card rejected";
  card.root.dataset.status = "error";
  card.body.replaceChildren(el("p", "error-text", message));
}

function showResult(card, file, result) {
  card.root.className = "card done";
  card.root.dataset.status = "done";
  card.root.dataset.label = result.label || "none";
  if (result.prob_fake !== null) card.root.dataset.probFake = String(result.prob_fake);

  const frame = el("div", "frame");
  frame.title = "Click to show or hide the heatmap";
  const image = el("img", "photo");
  image.alt = file.name;
  image.src = URL.createObjectURL(file);
  frame.append(image);
  for (const face of result.faces) frame.append(faceBox(face, result.image));

  const verdict = verdictLine(result);

  const details = verdictDetails(result);
  const note = result.faces.length > 1 ? `${result.note}; verdict from the most suspicious face` : result.note;
  details.push(el("p", "muted", note));
  const timing = result.timing_ms;
  const parts = ["decode", "faces", "inference"].filter((k) => k in timing)
    .map((k) => `${k} ${timing[k].toFixed(0)} ms`);
  details.push(el("p", "muted small", parts.join(" · ")));

  const heatmaps = el("div", "heatmaps");
  heatmaps.hidden = true;
  const toggle = el("button", "link-button heatmap-toggle", "Show heatmap");
  toggle.type = "button";
  toggle.disabled = result.faces.length === 0;
  const showHeatmap = () => toggleHeatmap(file, heatmaps, toggle);
  toggle.addEventListener("click", showHeatmap);
  if (result.faces.length > 0) frame.addEventListener("click", showHeatmap);

  card.body.replaceChildren(frame, verdict, ...details, toggle, heatmaps);
}

function showVideoResult(card, file, result) {
  card.root.className = "card done video";
  card.root.dataset.status = "done";
  card.root.dataset.label = result.label || "none";
  if (result.prob_fake !== null) card.root.dataset.probFake = String(result.prob_fake);

  const sheet = el("img", "photo contact-sheet");
  sheet.alt = `${file.name}: the frames that drove the verdict`;
  sheet.src = `data:image/png;base64,${result.contact_sheet_png}`;
  const details = [verdictLine(result), ...verdictDetails(result)];
  details.push(el("p", "muted", result.note));
  const tracks = el("ul", "tracks small");
  for (const track of result.tracks) {
    tracks.append(el("li", `face-${track.label}`,
      `track ${track.id}: ${faceText(track)} · ${track.face_count} frames · ` +
      `${track.first_s.toFixed(1)}–${track.last_s.toFixed(1)} s${track.decides ? "" : " (too short to decide)"}`));
  }
  const timeline = el("img", "timeline");
  timeline.alt = `${file.name}: probability of fake over time`;
  timeline.src = `data:image/png;base64,${result.timeline_png}`;
  const info = result.video;
  details.push(el("p", "muted small",
    `${info.width}×${info.height}, ${info.duration_s.toFixed(1)} s, ${result.sampled_frames} frames sampled · ` +
    `${(result.timing_ms.total || 0).toFixed(0)} ms`));

  const toggle = el("button", "link-button heatmap-toggle", "Show heatmaps");
  toggle.type = "button";
  toggle.disabled = result.tracks.length === 0;
  toggle.addEventListener("click", async () => {
    toggle.disabled = true;
    toggle.textContent = "Computing heatmaps…";
    try {
      const explained = await postVideo(file, true);
      sheet.src = `data:image/png;base64,${explained.contact_sheet_png}`;
      toggle.textContent = explained.heatmap_error || "Heatmaps shown";
    } catch (error) {
      toggle.textContent = `heatmap: ${error.message}`;
    }
  });
  card.body.replaceChildren(sheet, ...details, tracks, timeline, toggle);
}

function faceBox(face, size) {
  const [x1, y1, x2, y2] = face.box;
  const box = el("div", `face-box face-${face.label}`);
  box.style.left = `${(100 * x1) / size.width}%`;
  box.style.top = `${(100 * y1) / size.height}%`;
  box.style.width = `${(100 * (x2 - x1)) / size.width}%`;
  box.style.height = `${(100 * (y2 - y1)) / size.height}%`;
  box.append(el("span", "face-tag", faceText(face)));
  return box;
}

// Every label is shown with the probability it is about: "real · P(fake) 0.12", never "real 0.12".
function faceText(face) {
  return `${face.label} · P(fake) ${face.prob_fake.toFixed(2)}`;
}

function ruleText(rule) {
  const fakeAt = Math.max(rule.threshold + rule.uncertain_band, 0.5);
  const realBelow = Math.min(rule.threshold - rule.uncertain_band, 0.5);
  return `fake at P(fake) ≥ ${percent(fakeAt)}, real below ${percent(realBelow)}, uncertain between`;
}

function verdictLine(result) {
  const text = result.label ? result.label.toUpperCase() : "NO FACE";
  return el("p", `verdict verdict-${result.label || "none"}`, text);
}

function verdictDetails(result) {
  if (result.prob_fake === null) return [];
  let numbers;
  if (result.label === "uncertain") {
    numbers = `P(fake) ${percent(result.prob_fake)}: too close to the threshold to call either way ` +
      `(${ruleText(result)})`;
  } else {
    numbers = `P(fake) ${percent(result.prob_fake)} · ${percent(result.confidence)} sure it is ${result.label} · ` +
      ruleText(result);
  }
  return [probabilityBar(result), el("p", "numbers", numbers)];
}

function probabilityBar(result) {
  const probFake = result.prob_fake;
  const threshold = result.threshold;
  const bar = el("div", "prob-bar");
  bar.setAttribute("role", "meter");
  bar.setAttribute("aria-label", "probability of fake");
  bar.setAttribute("aria-valuemin", "0");
  bar.setAttribute("aria-valuemax", "1");
  bar.setAttribute("aria-valuenow", String(probFake));
  const fill = el("div", `prob-fill fill-${result.label || "none"}`);
  fill.style.width = percent(probFake);
  const marker = el("div", "threshold-marker");
  marker.style.left = percent(threshold);
  marker.title = `threshold ${threshold.toFixed(2)}`;
  bar.append(fill, marker);
  return bar;
}

async function toggleHeatmap(file, container, toggle) {
  if (container.dataset.loaded === "true") {
    container.hidden = !container.hidden;
    toggle.textContent = container.hidden ? "Show heatmap" : "Hide heatmap";
    return;
  }
  if (container.dataset.loading === "true") return;
  container.dataset.loading = "true";
  container.hidden = false;
  container.replaceChildren(el("p", "muted", "Computing the heatmap…"));
  try {
    const result = await postImage(file, true);
    const figures = result.faces.map((face, index) => {
      const figure = el("figure", "heatmap");
      if (face.heatmap_png) {
        const picture = el("img");
        picture.alt = `heatmap of face ${index + 1}`;
        picture.src = `data:image/png;base64,${face.heatmap_png}`;
        figure.append(picture);
      }
      figure.append(el("figcaption", "small", `face ${index + 1}: ${faceText(face)}`));
      return figure;
    });
    if (result.heatmap_error) figures.push(el("p", "error-text", result.heatmap_error));
    container.replaceChildren(...figures);
    container.dataset.loaded = "true";
    toggle.textContent = "Hide heatmap";
  } catch (error) {
    container.replaceChildren(el("p", "error-text", `heatmap: ${error.message}`));
  } finally {
    container.dataset.loading = "false";
  }
}

function setUpDropZone() {
  const zone = $("drop-zone");
  const input = $("file-input");
  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = "";
  });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    addFiles(event.dataTransfer ? event.dataTransfer.files : []);
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });
  // A file dropped next to the zone must not navigate away from the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  $("clear-results").addEventListener("click", () => {
    $("results").replaceChildren();
    state.queue.length = 0;
    Object.assign(state, { done: 0, total: state.active });
    updateSummary();
  });
}

setUpDropZone();
loadModelInfo();
