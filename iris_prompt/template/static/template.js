// The recording page's only script: show the questions that apply, and count DASH "yes" answers.
// The page works without it (the server drops answers to questions that do not apply).
(function () {
  "use strict";
  var form = document.getElementById("enquiry");
  if (!form) {
    return;
  }

  function chosen(name) {
    var values = [];
    for (var i = 0; i < form.elements.length; i += 1) {
      var input = form.elements[i];
      if (input.name === name && input.checked && !input.disabled) {
        values.push(input.value);
      }
    }
    return values;
  }

  // Blocks come in document order, so a question's conditions are settled before it is reached.
  function applyConditions() {
    var blocks = form.querySelectorAll("[data-enable-when]");
    for (var i = 0; i < blocks.length; i += 1) {
      var block = blocks[i];
      var conditions = JSON.parse(block.getAttribute("data-enable-when"));
      var on = block.parentElement.closest("[hidden]") === null && conditions.every(function (c) {
        return chosen(c.question).indexOf(c.value) !== -1;
      });
      block.hidden = !on;
      var inputs = block.querySelectorAll("input");
      for (var j = 0; j < inputs.length; j += 1) {
        inputs[j].disabled = !on;
      }
    }
  }

  function countDash() {
    var output = document.getElementById("dash-count");
    if (!output) {
      return;
    }
    var count = form.querySelectorAll("input[name^='dash.q'][value='yes']:checked:enabled").length;
    var threshold = Number(output.getAttribute("data-threshold"));
    output.value = String(count);
    output.textContent = String(count);
    var high = count >= threshold;
    output.parentElement.classList.toggle("high", high);
    document.getElementById("dash-status").textContent = high
      ? "Visible high risk: refer to MARAC."
      : (threshold - count) + " more 'yes' would be visible high risk; professional judgement still applies.";
  }

  function refresh() {
    applyConditions();
    countDash();
  }

  form.addEventListener("change", refresh);
  refresh();
  var problems = document.getElementById("problems");
  if (problems) {
    problems.setAttribute("tabindex", "-1");
    problems.focus();
  }
}());
