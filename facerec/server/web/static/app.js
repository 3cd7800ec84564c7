// facerec review pages: a little plain JavaScript (no framework, no CDN).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Search on the people page: filter as you type (the server filters too, on submit).
  const search = document.getElementById("search");
  if (search) {
    search.addEventListener("input", () => {
      const q = search.value.trim().toLowerCase();
      for (const li of document.querySelectorAll(".person-card")) {
        li.hidden = q !== "" && !li.dataset.name.toLowerCase().includes(q);
      }
    });
  }

  // Dangerous forms ask first.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (e) => {
      if (!window.confirm(form.dataset.confirm)) e.preventDefault();
    });
  }

  reviewKeys();
  drawBox();
});

// Review queue: j/k (or arrows) move, x selects, a accepts, r rejects: the selection, else the
// current row. Accept and reject submit the form with those faces' ids.
function reviewKeys() {
  const form = document.getElementById("review-form");
  if (!form) return;
  const rows = Array.from(form.querySelectorAll(".rv"));
  let at = 0;
  const show = () => rows.forEach((r, i) => r.classList.toggle("current", i === at));
  const submit = (action) => {
    const boxes = rows.map((r) => r.querySelector("input[type=checkbox]"));
    if (!boxes.some((b) => b.checked) && rows[at]) boxes[at].checked = true;
    form.action = "/action/" + action;
    form.submit();
  };
  document.addEventListener("keydown", (e) => {
    if (e.target instanceof HTMLInputElement && e.target.type === "text") return;
    if (!rows.length) return;
    if (e.key === "j" || e.key === "ArrowDown") at = Math.min(rows.length - 1, at + 1);
    else if (e.key === "k" || e.key === "ArrowUp") at = Math.max(0, at - 1);
    else if (e.key === "x") {
      const box = rows[at].querySelector("input[type=checkbox]");
      box.checked = !box.checked;
      rows[at].classList.toggle("selected", box.checked);
      at = Math.min(rows.length - 1, at + 1);
    } else if (e.key === "a") return submit("confirm");
    else if (e.key === "r") return submit("not");
    else return;
    e.preventDefault();
    show();
  });
}

// Photo page: drag to draw a box (in the photo's own pixels) around a face the scan missed.
function drawBox() {
  const photo = document.getElementById("photo");
  if (!photo) return;
  const drawn = document.getElementById("drawn");
  const button = document.getElementById("add-face");
  const W = Number(photo.dataset.width), H = Number(photo.dataset.height);
  let start = null;
  const at = (e) => {
    const r = photo.getBoundingClientRect();
    return [Math.min(Math.max(e.clientX - r.left, 0), r.width) / r.width,
            Math.min(Math.max(e.clientY - r.top, 0), r.height) / r.height];
  };
  const place = (a, b) => {
    const [x1, x2] = [Math.min(a[0], b[0]), Math.max(a[0], b[0])];
    const [y1, y2] = [Math.min(a[1], b[1]), Math.max(a[1], b[1])];
    Object.assign(drawn.style, { left: 100 * x1 + "%", top: 100 * y1 + "%",
      width: 100 * (x2 - x1) + "%", height: 100 * (y2 - y1) + "%" });
    drawn.hidden = false;
    const set = (id, v) => { document.getElementById(id).value = Math.round(v); };
    set("x1", x1 * W); set("y1", y1 * H); set("x2", x2 * W); set("y2", y2 * H);
    button.disabled = (x2 - x1) * W < 8 || (y2 - y1) * H < 8;
  };
  photo.addEventListener("mousedown", (e) => {
    if (e.target.closest(".box")) return;
    e.preventDefault();
    start = at(e);
  });
  window.addEventListener("mousemove", (e) => { if (start) place(start, at(e)); });
  window.addEventListener("mouseup", (e) => { if (start) { place(start, at(e)); start = null; } });
}
