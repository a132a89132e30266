// The review form, for the keyboard. Everything here enhances a plain HTML form that works
// without it: questions that do not apply are hidden and disabled (so not sent), y/n/c answer
// the focused question and move to the next, "/" jumps to the class search, Ctrl+Enter stores.
(function () {
  "use strict";
  var KEYS = { y: "yes", n: "no", c: "cannot_tell" };

  function answer(form, name) {
    var c = form.querySelector('input[name="' + name + '"]:checked');
    return c ? c.value : "";
  }

  // Which questions apply, as the review vocabulary's rules say (crimeaudit.audit.review).
  function applyRules(form) {
    var sr = answer(form, "should_record"), rec = answer(form, "recorded");
    var cc = answer(form, "correctly_classified");
    var show = {
      recorded: sr === "yes",
      correctly_classified: sr === "yes" && rec === "yes",
      within_time_limit: sr === "yes" && rec === "yes",
      correct_class: cc === "no" || (sr === "yes" && rec === "no")
    };
    form.querySelectorAll("[data-question]").forEach(function (fs) {
      var on = show[fs.dataset.question] !== false;
      fs.hidden = !on;
      fs.disabled = !on;
    });
  }

  function visibleQuestions(form) {
    return Array.prototype.filter.call(form.querySelectorAll("[data-question]"),
      function (fs) { return !fs.hidden; });
  }

  function focusNext(form, fieldset) {
    var all = visibleQuestions(form);
    var next = all[all.indexOf(fieldset) + 1];
    if (next) {
      (next.querySelector("input:checked") || next.querySelector("input, textarea")).focus();
    } else {
      form.querySelector("[type=submit]").focus();
    }
  }

  function init() {
    var form = document.getElementById("decision");
    if (form) { applyRules(form); }
  }

  document.addEventListener("change", function (e) {
    var form = e.target.form;
    if (form && form.id === "decision") { applyRules(form); }
  });

  document.addEventListener("click", function (e) {
    var pick = e.target.closest ? e.target.closest(".pick-class") : null;
    if (!pick) { return; }
    var input = document.getElementById("correct_class");
    input.value = pick.dataset.code;
    focusNext(input.form, input.closest("[data-question]"));
  });

  document.addEventListener("keydown", function (e) {
    var form = document.getElementById("decision");
    if (!form) { return; }
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
      e.preventDefault();
      form.requestSubmit();
      return;
    }
    var t = e.target;
    var typing = t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && t.type !== "radio");
    if (e.key === "/" && !typing) {
      var cls = document.getElementById("correct_class");
      if (cls && !cls.closest("[data-question]").hidden) { e.preventDefault(); cls.focus(); }
      return;
    }
    if (t.type !== "radio" || !form.contains(t) || e.ctrlKey || e.altKey || e.metaKey) { return; }
    var fieldset = t.closest("[data-question]");
    if (e.key === "Enter") {
      e.preventDefault();
      form.requestSubmit();
      return;
    }
    var value = KEYS[e.key.toLowerCase()];
    var option = value && fieldset.querySelector('input[value="' + value + '"]');
    if (option) {
      e.preventDefault();
      option.checked = true;
      applyRules(form);
      focusNext(form, fieldset);
    }
  });

  document.addEventListener("DOMContentLoaded", function () { init(); });
  document.addEventListener("htmx:load", function () { init(); });
})();
