// The playground: sends one chat request per chosen model, side by side, through the
// console's own endpoint (/ui/api/chat, which calls the gateway as the logged-in key), and
// shows each answer as it streams, with its latency, tokens and cost.
"use strict";

(function () {
  const form = document.getElementById("playground");
  const models = document.getElementById("models");
  const answers = document.getElementById("answers");
  const template = document.getElementById("answer-template");

  document.getElementById("add-model").addEventListener("click", () => {
    const choices = models.querySelectorAll(".model-choice");
    if (choices.length >= 4) return;
    const copy = choices[0].cloneNode(true);
    const id = "model-" + choices.length;
    copy.querySelector("label").htmlFor = id;
    copy.querySelector("label").textContent = "Model " + (choices.length + 1);
    const select = copy.querySelector("select");
    select.id = id;
    select.selectedIndex = Math.min(choices.length, select.options.length - 1);
    models.appendChild(copy);
    select.focus();
  });

  function body(model) {
    const messages = [];
    const system = form.system.value.trim();
    if (system) messages.push({ role: "system", content: system });
    messages.push({ role: "user", content: form.message.value });
    const request = {
      model: model,
      messages: messages,
      temperature: Number(form.temperature.value),
      max_tokens: Number(form.max_tokens.value),
      top_p: Number(form.top_p.value),
      stream: form.stream.checked,
    };
    if (request.stream) request.stream_options = { include_usage: true };
    if (form.json_mode.checked) request.response_format = { type: "json_object" };
    const tools = form.tools.value.trim();
    if (tools) request.tools = JSON.parse(tools);
    return request;
  }

  function describe(meta, started, firstToken, usage, cost, price) {
    const parts = [Math.round(performance.now() - started) + " ms"];
    if (firstToken) parts.push("first token " + Math.round(firstToken - started) + " ms");
    if (usage) parts.push(usage.prompt_tokens + " + " + usage.completion_tokens + " tokens");
    if (cost !== null && cost !== undefined) {
      parts.push("$" + Number(cost).toFixed(6));
    } else if (usage && price) {
      // A stream's cost is settled after its headers: estimate it from the list price.
      const perMillion = usage.prompt_tokens * price.input + usage.completion_tokens * price.output;
      const estimate = perMillion / 1e6;
      parts.push("≈ $" + estimate.toFixed(6));
    }
    meta.textContent = parts.join(" · ");
  }

  async function ask(model, card, price) {
    const text = card.querySelector(".answer-text");
    const meta = card.querySelector(".answer-meta");
    const started = performance.now();
    let firstToken = null;
    let usage = null;
    let request;
    try {
      request = body(model);
    } catch (error) {
      text.textContent = "Tools: " + error.message;
      card.classList.add("failed");
      return;
    }
    const response = await fetch("/ui/api/chat", {
      method: "POST",
      headers: { "content-type": "application/json", "x-stackyard-ui": "1" },
      body: JSON.stringify(request),
    });
    const cost = response.headers.get("x-stackyard-cost-usd");
    if (!response.ok || !request.stream) {
      const answer = await response.json();
      if (answer.error) {
        text.textContent = answer.error.message;
        card.classList.add("failed");
      } else {
        const message = answer.choices[0].message;
        text.textContent = message.content || JSON.stringify(message.tool_calls, null, 2);
        usage = answer.usage;
      }
      describe(meta, started, null, usage, cost, price);
      card.dataset.done = "true";
      return;
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.error) {
            text.textContent += "\n[" + chunk.error.message + "]";
            card.classList.add("failed");
            continue;
          }
          if (chunk.usage) usage = chunk.usage;
          for (const choice of chunk.choices || []) {
            const delta = choice.delta || {};
            if (delta.content) {
              if (firstToken === null) firstToken = performance.now();
              text.textContent += delta.content;
            }
          }
          describe(meta, started, firstToken, usage, cost, price);
        }
      }
    }
    describe(meta, started, firstToken, usage, cost, price);
    card.dataset.done = "true";
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    answers.replaceChildren();
    for (const select of models.querySelectorAll("select")) {
      const card = template.content.firstElementChild.cloneNode(true);
      card.querySelector(".answer-model").textContent = select.value;
      answers.appendChild(card);
      const option = select.selectedOptions[0];
      const price = option
        ? { input: Number(option.dataset.input), output: Number(option.dataset.output) }
        : null;
      ask(select.value, card, price).catch((error) => {
        card.querySelector(".answer-text").textContent = String(error);
        card.classList.add("failed");
        card.dataset.done = "true";
      });
    }
  });
})();
