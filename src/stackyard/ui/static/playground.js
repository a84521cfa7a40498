// The playground: sends one chat request per column (a model, and a prompt version or label
// when a registry prompt is chosen), side by side, through the console's own endpoint
// (/ui/api/chat, which calls the gateway as the logged-in key), and shows each answer as it
// streams, with its latency, tokens and cost. It also fills a chosen prompt's variables in a
// form, and saves what was typed as a new prompt version.
"use strict";

(function () {
  const form = document.getElementById("playground");
  const models = document.getElementById("models");
  const answers = document.getElementById("answers");
  const template = document.getElementById("answer-template");
  const promptName = document.getElementById("prompt-name");
  const promptRef = document.getElementById("prompt-ref");
  const variables = document.getElementById("variables");
  const preview = document.getElementById("prompt-preview");
  const promptStatus = document.getElementById("prompt-status");
  const UI = { "x-stackyard-ui": "1" };
  let declared = {}; // the chosen version's variables: name -> {type, required, ...}

  document.getElementById("add-model").addEventListener("click", () => {
    const choices = models.querySelectorAll(".model-choice");
    if (choices.length >= 4) return;
    const copy = choices[0].cloneNode(true);
    const n = choices.length;
    const labels = copy.querySelectorAll("label");
    labels[0].htmlFor = "model-" + n;
    labels[0].textContent = "Model " + (n + 1);
    labels[1].htmlFor = "ref-" + n;
    const select = copy.querySelector("select");
    select.id = "model-" + n;
    select.selectedIndex = Math.min(n, select.options.length - 1);
    const ref = copy.querySelector(".prompt-ref");
    ref.id = "ref-" + n;
    ref.value = "";
    models.appendChild(copy);
    select.focus();
  });

  // -- a registry prompt: its variables as a form ------------------------------------------

  function defaultRef() {
    const option = promptName.selectedOptions[0];
    const labels = option && option.dataset.labels ? option.dataset.labels.split(",") : [];
    return labels.includes("production") ? "production" : "latest";
  }

  async function loadPrompt() {
    const name = promptName.value;
    document.getElementById("save-name").value = name || document.getElementById("save-name").value;
    if (!name) {
      declared = {};
      variables.replaceChildren();
      preview.hidden = true;
      promptStatus.textContent = "";
      return;
    }
    const ref = promptRef.value.trim() || defaultRef();
    const query = new URLSearchParams({ name: name, ref: ref });
    const answer = await fetch("/ui/api/prompt?" + query, { headers: UI });
    const version = await answer.json();
    if (!answer.ok) {
      promptStatus.textContent = version.error ? version.error.message : "not found";
      return;
    }
    const typed = {};
    for (const input of variables.querySelectorAll("[data-variable]")) {
      typed[input.dataset.variable] = input.value;
    }
    declared = version.variables || {};
    variables.replaceChildren();
    for (const [variable, spec] of Object.entries(declared)) {
      const wrap = document.createElement("div");
      const label = document.createElement("label");
      const id = "var-" + variable;
      label.htmlFor = id;
      label.textContent = variable + (spec.type && spec.type !== "string" ? " (" + spec.type + ", JSON)" : "");
      const structured = ["array", "object", "messages"].includes(spec.type);
      const input = document.createElement(structured ? "textarea" : "input");
      input.id = id;
      input.dataset.variable = variable;
      input.required = spec.required !== false && spec.default === undefined;
      input.value = typed[variable] !== undefined ? typed[variable] : spec.default !== undefined && spec.default !== null ? String(spec.default) : "";
      wrap.append(label, input);
      variables.appendChild(wrap);
    }
    const text = version.template !== null && version.template !== undefined
      ? version.template
      : JSON.stringify(version.messages, null, 2);
    preview.textContent = text;
    preview.hidden = false;
    const model = version.config && version.config.model ? ", model " + version.config.model : "";
    promptStatus.textContent = name + " v" + version.version + " (" + ref + ")" + model;
  }

  function variableValues() {
    const values = {};
    for (const input of variables.querySelectorAll("[data-variable]")) {
      const spec = declared[input.dataset.variable] || {};
      const raw = input.value;
      if (raw === "" && !input.required) continue;
      if (["array", "object", "messages", "boolean"].includes(spec.type)) {
        values[input.dataset.variable] = JSON.parse(raw);
      } else if (spec.type === "number" || spec.type === "integer") {
        values[input.dataset.variable] = Number(raw);
      } else {
        values[input.dataset.variable] = raw;
      }
    }
    return values;
  }

  promptName.addEventListener("change", () => {
    promptRef.value = "";
    loadPrompt();
  });
  promptRef.addEventListener("change", loadPrompt);
  if (promptName.value) loadPrompt();

  // -- a request per column ----------------------------------------------------------------

  function typedMessages() {
    const messages = [];
    const system = form.system.value.trim();
    if (system) messages.push({ role: "system", content: system });
    if (form.message.value.trim()) messages.push({ role: "user", content: form.message.value });
    return messages;
  }

  function body(model, ref) {
    const messages = typedMessages();
    const request = {
      model: model,
      messages: messages,
      temperature: Number(form.temperature.value),
      max_tokens: Number(form.max_tokens.value),
      top_p: Number(form.top_p.value),
      stream: form.stream.checked,
    };
    if (promptName.value) {
      const prompt = { name: promptName.value, variables: variableValues() };
      if (/^\d+$/.test(ref)) prompt.version = Number(ref);
      else if (ref !== "latest") prompt.label = ref;
      request.prompt = prompt;
    } else if (!messages.some((m) => m.role === "user")) {
      throw new Error("type a message, or choose a prompt");
    }
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

  async function ask(model, ref, card, price) {
    const text = card.querySelector(".answer-text");
    const meta = card.querySelector(".answer-meta");
    const started = performance.now();
    let firstToken = null;
    let usage = null;
    let request;
    try {
      request = body(model, ref);
    } catch (error) {
      text.textContent = error.message;
      card.classList.add("failed");
      return;
    }
    const response = await fetch("/ui/api/chat", {
      method: "POST",
      headers: { "content-type": "application/json", ...UI },
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
    for (const column of models.querySelectorAll(".model-choice")) {
      const select = column.querySelector("select");
      const ref = column.querySelector(".prompt-ref").value.trim() || promptRef.value.trim() || defaultRef();
      const card = template.content.firstElementChild.cloneNode(true);
      card.querySelector(".answer-model").textContent =
        select.value + (promptName.value ? " · " + promptName.value + " " + (/^\d+$/.test(ref) ? "v" + ref : ref) : "");
      answers.appendChild(card);
      const option = select.selectedOptions[0];
      const price = option
        ? { input: Number(option.dataset.input), output: Number(option.dataset.output) }
        : null;
      ask(select.value, ref, card, price).catch((error) => {
        card.querySelector(".answer-text").textContent = String(error);
        card.classList.add("failed");
        card.dataset.done = "true";
      });
    }
  });

  // -- save what was typed as a new prompt version -----------------------------------------

  document.getElementById("save-prompt").addEventListener("click", async () => {
    const status = document.getElementById("save-status");
    const name = document.getElementById("save-name").value.trim();
    const messages = typedMessages();
    if (!name || !messages.length) {
      status.textContent = "Give the prompt a name, and type a system or user message.";
      return;
    }
    const first = models.querySelector("select").value;
    const push = {
      name: name,
      messages: messages,
      config: {
        model: first,
        temperature: Number(form.temperature.value),
        max_tokens: Number(form.max_tokens.value),
        top_p: Number(form.top_p.value),
      },
      message: document.getElementById("save-message").value.trim() || "from the playground",
    };
    const answer = await fetch("/ui/api/prompts", {
      method: "POST",
      headers: { "content-type": "application/json", ...UI },
      body: JSON.stringify(push),
    });
    const saved = await answer.json();
    status.replaceChildren();
    if (!answer.ok) {
      status.textContent = saved.error ? saved.error.message : "not saved";
      return;
    }
    const link = document.createElement("a");
    link.href = "/ui/prompts/" + encodeURIComponent(name) + "?version=" + saved.version;
    link.textContent = name + " v" + saved.version;
    status.append(saved.created ? "Saved as " : "Unchanged: the same as ", link, ".");
  });
})();
