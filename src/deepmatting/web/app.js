// deepmatting web app: pick an image and a guide (trimap, mask or strokes), POST /api/predict, show results.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  info: null,
  image: null,        // {blob, name, width, height} (width/height null when the browser cannot decode it)
  example: null,      // index of the built-in example the image came from, if any
  guide: "scribbles", // "scribbles" | "trimap" | "mask" | "none" (an image-only model)
  trimap: null,       // {blob, name, width, height}
  mask: null,
  drawn: false,       // any stroke on the scribble layer
  busy: false,
  urls: [],           // object URLs of the last result, revoked on the next one
};

// ---- small helpers -------------------------------------------------------------------------------
function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

function setStatus(text) { $("status").textContent = text || ""; }

function blobToDataURL(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

async function decode(blob) {
  // An ImageBitmap of the file, or null when this browser cannot display it (the server may still read it).
  try { return await createImageBitmap(blob); } catch (e) { return null; }
}

function stem(name) { return (name || "image").replace(/\.[^.]*$/, "") || "image"; }

function reads(input) { return input === "image" ? "reads the image alone" : `reads a ${input}`; }

function megapixels(w, h) { return (w * h / 1e6).toFixed(1); }

// What the quality select says of each shipped quality (the API sends the names).
const QUALITY_LABELS = {
  fast: "fast (network alone)",
  best: "best (closed-form + network, slower)",
  fusion: "fusion (closed-form + KNN + network, slower)",
};

// ---- model info and examples -----------------------------------------------------------------------
async function loadInfo() {
  try {
    const response = await fetch("api/info");
    state.info = await response.json();
    $("model").textContent = `model: ${state.info.model} · ${reads(state.info.input)}`;
    if (state.info.input === "mask") selectGuide("mask");
    if (state.info.input === "image") {  // nothing to draw or upload: the model finds the subject itself
      $("guide-section").hidden = true;
      $("image-only-note").hidden = false;
      selectGuide("none");
    }
    showQualities(state.info.qualities || [], state.info.quality);
    const box = $("examples");
    box.replaceChildren();  // the placeholder shown until the list arrived
    box.removeAttribute("aria-busy");
    for (const ex of state.info.examples) {
      // each thumbnail is a grey box (class "loading") until its image has arrived
      const img = document.createElement("img");
      img.className = "loading";
      img.addEventListener("load", () => img.classList.remove("loading"));
      img.alt = img.title = `example ${ex.id + 1}`;
      img.dataset.example = ex.id;
      img.addEventListener("click", () => loadExample(ex.id));
      img.src = `api/examples/${ex.id}/image.png`;
      box.appendChild(img);
    }
  } catch (e) {
    $("examples").replaceChildren();
    $("model").textContent = "model: unavailable";
    showError(`Cannot reach the server (${e.message}).`);
  }
}

function showQualities(qualities, current) {
  // A choice only when the server offers more than one shipped model; the server's own is selected.
  $("quality").replaceChildren(
    ...qualities.map((q) => new Option(QUALITY_LABELS[q] || q, q, q === current, q === current)));
  $("quality-box").hidden = qualities.length < 2;
}

async function loadExample(i) {
  showError("");
  const [image, trimap] = await Promise.all(
    ["image", "trimap"].map((k) => fetch(`api/examples/${i}/${k}.png`).then((r) => r.blob())));
  await setImage(image, `example_${i + 1}.png`, i);
  await setGuideFile("trimap", trimap, `example_${i + 1}_trimap.png`);
  selectGuide(state.info && state.info.input === "mask" ? "mask" : "trimap");
}

// ---- image ------------------------------------------------------------------------------------------
async function setImage(blob, name, example = null) {
  showError("");
  const bitmap = await decode(blob);
  state.image = {blob, name, width: bitmap ? bitmap.width : null, height: bitmap ? bitmap.height : null};
  state.example = example;
  state.trimap = state.mask = null;
  $("trimap-name").textContent = $("mask-name").textContent = "";
  document.querySelectorAll(".examples img").forEach(
    (img) => img.classList.toggle("selected", example !== null && Number(img.dataset.example) === example));
  const stage = $("stage");
  if (!bitmap) {
    stage.classList.add("empty");
    $("image-info").textContent = `${name}: no preview (this browser cannot display it; the server will try to read it)`;
  } else {
    stage.classList.remove("empty");
    for (const id of ["photo", "guide-preview", "scribbles"]) {
      $(id).width = bitmap.width;
      $(id).height = bitmap.height;
    }
    $("photo").getContext("2d").drawImage(bitmap, 0, 0);
    fitStage();
    $("image-info").textContent = `${name}: ${bitmap.width} × ${bitmap.height} px`;
    const limit = state.info ? state.info.max_pixels : Infinity;
    if (bitmap.width * bitmap.height > limit) {
      showError(`${name} is ${bitmap.width} × ${bitmap.height} px (${megapixels(bitmap.width, bitmap.height)} MP); ` +
                `this server accepts up to ${limit / 1e6} MP. Downscale it first.`);
    }
  }
  clearScribbles();
  drawGuidePreview();
  updateButton();
}

function fitStage() {
  // Show the image as large as fits the column and 62% of the window height (up to 3x its own size).
  const photo = $("photo");
  if (!photo.width) return;
  const box = $("stage-box");
  const room = box.clientWidth - 20;
  const scale = Math.min(room / photo.width, 0.62 * window.innerHeight / photo.height, 3);
  photo.style.width = `${Math.round(photo.width * scale)}px`;
  photo.style.height = `${Math.round(photo.height * scale)}px`;
}

// ---- guides: uploaded trimap / mask, or strokes ---------------------------------------------------------
function selectGuide(guide) {
  state.guide = guide;
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.guide === guide));
  document.querySelectorAll(".pane").forEach((p) => p.classList.toggle("active", p.dataset.guide === guide));
  $("stage").classList.toggle("drawing", guide === "scribbles");
  $("scribbles").style.visibility = guide === "scribbles" ? "visible" : "hidden";
  drawGuidePreview();
  updateButton();
}

async function setGuideFile(kind, blob, name) {
  showError("");
  const bitmap = await decode(blob);
  state[kind] = {blob, name, bitmap, width: bitmap ? bitmap.width : null, height: bitmap ? bitmap.height : null};
  $(`${kind}-name`).textContent = name;
  const img = state.image;
  if (bitmap && img && img.width && (bitmap.width !== img.width || bitmap.height !== img.height)) {
    showError(`The ${kind} ${name} is ${bitmap.width} × ${bitmap.height} px but the image is ` +
              `${img.width} × ${img.height} px: they must have the same size.`);
  }
  drawGuidePreview();
  updateButton();
}

function drawGuidePreview() {
  const canvas = $("guide-preview");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const g = state.guide === "scribbles" || state.guide === "none" ? null : state[state.guide];
  if (g && g.bitmap) ctx.drawImage(g.bitmap, 0, 0, canvas.width, canvas.height);
}

function clearScribbles() {
  const canvas = $("scribbles");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  state.drawn = false;
  updateButton();
}

function setupDrawing() {
  const canvas = $("scribbles");
  const ctx = canvas.getContext("2d");
  let last = null;
  const point = (e) => {
    const r = canvas.getBoundingClientRect();
    return {x: (e.clientX - r.left) * canvas.width / r.width, y: (e.clientY - r.top) * canvas.height / r.height,
            scale: canvas.width / r.width};
  };
  const stroke = (a, b) => {
    const brush = document.querySelector("input[name=brush]:checked").value;
    ctx.globalCompositeOperation = brush === "erase" ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = brush === "bg" ? "#000" : "#fff";
    ctx.lineWidth = Number($("brush-size").value) * b.scale;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x + 0.01, b.y);
    ctx.stroke();
    if (brush !== "erase") state.drawn = true;
  };
  canvas.addEventListener("pointerdown", (e) => {
    if (!state.image || state.guide !== "scribbles") return;
    canvas.setPointerCapture(e.pointerId);
    last = point(e);
    stroke(last, last);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!last) return;
    const p = point(e);
    stroke(last, p);
    last = p;
  });
  const end = () => { if (last) { last = null; updateButton(); } };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
}

function scribblesBlob() {
  return new Promise((resolve) => $("scribbles").toBlob(resolve, "image/png"));
}

function updateButton() {
  let ready = state.image !== null && !state.busy;
  if (state.guide === "scribbles") ready = ready && state.drawn;
  else if (state.guide !== "none") ready = ready && state[state.guide] !== null;
  $("predict").disabled = !ready;
}

// ---- predict ------------------------------------------------------------------------------------------
async function runPredict() {
  showError("");
  state.busy = true;
  updateButton();
  setStatus("Predicting…");
  const started = performance.now();
  try {
    const payload = {image: await blobToDataURL(state.image.blob), image_name: state.image.name};
    if (state.example !== null) payload.example = state.example;
    if (!$("quality-box").hidden) payload.quality = $("quality").value;
    if (state.guide === "scribbles") {
      payload.scribbles = await blobToDataURL(await scribblesBlob());
      payload.scribbles_name = "strokes";
    } else if (state.guide !== "none") {
      const g = state[state.guide];
      payload[state.guide] = await blobToDataURL(g.blob);
      payload[`${state.guide}_name`] = g.name;
    }
    const response = await fetch("api/predict", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(payload),
    });
    let data;
    try { data = await response.json(); } catch (e) { data = {error: `the server answered ${response.status}`}; }
    if (!response.ok) throw new Error(data.error || `the server answered ${response.status}`);
    await showResult(data, (performance.now() - started) / 1000);
    setStatus("");
  } catch (e) {
    setStatus("");
    showError(e.message);
  } finally {
    state.busy = false;
    updateButton();
  }
}

async function showResult(data, seconds) {
  state.urls.forEach((u) => URL.revokeObjectURL(u));
  state.urls = [];
  const name = stem(state.image.name);
  const blobUrl = async (dataUrl) => {
    const url = URL.createObjectURL(await (await fetch(dataUrl)).blob());
    state.urls.push(url);
    return url;
  };
  const [alpha, cutout] = await Promise.all([blobUrl(data.alpha), blobUrl(data.cutout)]);
  $("alpha-img").src = alpha;
  $("cutout-img").src = cutout;
  $("figure-img").src = data.figure;
  const a = $("download-alpha");
  a.href = alpha;
  a.download = `${name}_alpha.png`;
  const c = $("download-cutout");
  c.href = cutout;
  c.download = `${name}_cutout.png`;
  $("result-info").textContent = `${data.model} · ${data.width} × ${data.height} px · ` +
    `matting ${data.seconds.toFixed(2)} s · in all ${seconds.toFixed(1)} s`;
  // the header names the model that ran last (another quality's may have run)
  $("model").textContent = `model: ${data.model} · ${reads(state.info.input)}`;
  a.classList.remove("disabled");
  c.classList.remove("disabled");
  $("figure-card").hidden = false;
  $("results").dataset.ready = "true";
}

// ---- wiring -------------------------------------------------------------------------------------------
function init() {
  $("image-file").addEventListener("change", async (e) => {
    const f = e.target.files[0];
    if (f) await setImage(f, f.name);
    e.target.value = "";
  });
  for (const kind of ["trimap", "mask"]) {
    $(`${kind}-file`).addEventListener("change", async (e) => {
      const f = e.target.files[0];
      if (f) {
        selectGuide(kind);
        await setGuideFile(kind, f, f.name);
      }
      e.target.value = "";
    });
  }
  document.querySelectorAll(".tab").forEach((t) => t.addEventListener("click", () => selectGuide(t.dataset.guide)));
  $("clear").addEventListener("click", clearScribbles);
  $("predict").addEventListener("click", runPredict);
  setupDrawing();
  window.addEventListener("resize", fitStage);
  selectGuide("scribbles");
  loadInfo();
}

init();
