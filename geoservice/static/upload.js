// Upload with a progress bar; the service's message is shown next to the field it concerns.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) { return; }
  var bar = document.getElementById("up-progress");
  var status = document.getElementById("up-status");
  var en = document.documentElement.lang === "en";
  function fieldOf(code) {
    if (/crs|outside_norway|outside_kommune|coordinates/.test(code)) { return "crs"; }
    if (/name/.test(code)) { return "name"; }
    return "file";
  }
  function clear() {
    ["file", "name", "crs"].forEach(function (f) {
      var p = document.getElementById("err-" + f);
      var input = document.getElementById("up-" + f);
      if (!p || !input) { return; }
      p.hidden = true; p.textContent = "";
      input.removeAttribute("aria-invalid");
    });
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clear();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    bar.hidden = false; bar.value = 0;
    status.textContent = en ? "Uploading…" : "Laster opp…";
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) { bar.value = Math.round(100 * e.loaded / e.total); bar.textContent = bar.value + " %"; }
    });
    xhr.addEventListener("load", function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
      if (xhr.status >= 200 && xhr.status < 300) {
        bar.value = 100;
        var link = document.createElement("a");
        if (body.imported !== undefined) {  // restoration projects
          status.textContent = (en ? "Imported: " : "Importert: ") + body.imported +
            (en ? " projects." : " prosjekter.");
          link.href = "/restaurering"; link.textContent = en ? "Show the dashboard" : "Vis oversikten";
        } else {
          status.textContent = (en ? "Published: " : "Publisert: ") + body.name + " v" +
            body.version + " (" + body.feature_count + (en ? " features)" : " objekter)");
          link.href = "/lag/" + body.layer_id; link.textContent = en ? "Open the layer" : "Åpne laget";
        }
        status.appendChild(document.createTextNode(" ")); status.appendChild(link);
      } else {
        bar.hidden = true;
        var f = fieldOf(body.code || body.error || "");
        if (!document.getElementById("err-" + f)) { f = "file"; }
        var p = document.getElementById("err-" + f);
        p.textContent = body.detail || (en ? "The upload failed." : "Opplastingen mislyktes.");
        p.hidden = false;
        document.getElementById("up-" + f).setAttribute("aria-invalid", "true");
        status.textContent = en ? "Nothing was changed." : "Ingenting ble endret.";
      }
    });
    xhr.send(new FormData(form));
  });
})();
