/* Services: Add (POST /v1/services), Edit (PATCH /v1/services/{slug}) and Set state
   (POST /v1/services/{slug}/state, with the reason for the audit log). Pages reload after a create or edit. */
(function () {
  "use strict";
  function result(form, text) { form.querySelector(".form-result").textContent = text; }

  function slugify(text) {
    return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64);
  }

  var create = document.getElementById("create-service");
  if (create) {
    var name = create.querySelector("[name=name]");
    var slug = create.querySelector("[name=slug]");
    var typed = false;
    slug.addEventListener("input", function () { typed = slug.value !== ""; });
    name.addEventListener("input", function () { if (!typed) { slug.value = slugify(name.value); } });
    create.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = create.querySelector("button[type=submit]");
      button.disabled = true;
      result(create, "Saving…");
      Array.prototype.forEach.call(create.querySelectorAll("[aria-invalid]"), function (x) { x.removeAttribute("aria-invalid"); });
      BC.api("POST", "/v1/services", {
        name: name.value.trim(),
        slug: slug.value.trim(),
        group: create.querySelector("[name=group]").value.trim(),
        description: create.querySelector("[name=description]").value.trim(),
        state: create.querySelector("[name=state]").value,
        public: create.querySelector("[name=public]").checked
      }).then(function (r) {
        button.disabled = false;
        if (!r.ok) {
          result(create, "Not added: " + BC.errorText(r));
          var field = r.data && r.data.field ? create.querySelector("[name=" + String(r.data.field).split(".").pop() + "]") : null;
          if (field) { field.setAttribute("aria-invalid", "true"); field.focus(); }
          return;
        }
        window.location.assign("/console/services#service-" + encodeURIComponent(r.data.slug));
        window.location.reload();
      });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll(".service"), function (row) {
    var slug = row.getAttribute("data-slug");
    var stateForm = row.querySelector(".state-form");
    if (stateForm) {
      stateForm.addEventListener("submit", function (event) {
        event.preventDefault();
        var select = stateForm.querySelector("select");
        var reason = stateForm.querySelector("[name=reason]");
        if (!reason.value.trim()) {
          reason.setAttribute("aria-invalid", "true");
          result(stateForm, "Say why the state changes (it is kept in the audit log).");
          reason.focus();
          return;
        }
        reason.removeAttribute("aria-invalid");
        var button = stateForm.querySelector("button");
        button.disabled = true;
        result(stateForm, "Saving…");
        BC.api("POST", "/v1/services/" + encodeURIComponent(slug) + "/state", {
          state: select.value, reason: reason.value
        }).then(function (r) {
          button.disabled = false;
          if (!r.ok) { result(stateForm, "Not changed: " + BC.errorText(r)); return; }
          var badge = row.querySelector(".svc-state");
          badge.textContent = select.options[select.selectedIndex].text;
          badge.className = "badge svc-state st-badge-" + r.data.state;
          /* today's cell shows the worst state of the day: it changes only when the new state is worse */
          var order = ["none", "operational", "maintenance", "degraded", "partial_outage", "major_outage"];
          var today = row.querySelector(".uptime li:last-child");
          if (today && order.indexOf(r.data.state) > order.indexOf(today.className.replace("st-", ""))) {
            today.className = "st-" + r.data.state;
          }
          reason.value = "";
          result(stateForm, "Saved: now " + badge.textContent + ". The status page shows it.");
        });
      });
    }
    var editForm = row.querySelector(".edit-form");
    if (editForm) {
      editForm.addEventListener("submit", function (event) {
        event.preventDefault();
        var button = editForm.querySelector("button");
        button.disabled = true;
        result(editForm, "Saving…");
        BC.api("PATCH", "/v1/services/" + encodeURIComponent(slug), {
          name: editForm.querySelector("[name=name]").value.trim(),
          group: editForm.querySelector("[name=group]").value.trim(),
          position: Number(editForm.querySelector("[name=position]").value || 0),
          description: editForm.querySelector("[name=description]").value.trim(),
          public: editForm.querySelector("[name=public]").checked
        }).then(function (r) {
          button.disabled = false;
          if (!r.ok) { result(editForm, "Not saved: " + BC.errorText(r)); return; }
          window.location.reload();
        });
      });
    }
  });
})();
