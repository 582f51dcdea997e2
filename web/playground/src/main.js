// The customcode playground: list, create and edit workspaces, save them and run their functions.
// It speaks only the public HTTP API (../v2/functions/...), so it is also an example client.
// Everything the page shows that came from the server or the user goes through textContent or
// a form control's value, never as markup (logs and results are user data).
import "./style.css";
import { EditorView, basicSetup } from "codemirror";
import { Compartment, EditorState, RangeSetBuilder, StateEffect, StateField } from "@codemirror/state";
import { Decoration, keymap } from "@codemirror/view";
import { indentWithTab } from "@codemirror/commands";
import { javascript } from "@codemirror/lang-javascript";
import { python } from "@codemirror/lang-python";
import { lintGutter, setDiagnostics } from "@codemirror/lint";

const API = new URL("../v2/functions", window.location.href).pathname;
const TYPES = ["string", "number", "integer", "boolean", "object", "array"];
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const TEMPLATES = {
  nodejs: 'console.log("called with", name);\nreturn "Hello " + name;',
  python: 'print("called with", name)\nreturn "Hello " + str(name)',
};
const NEW_CODE = { nodejs: "return null;", python: "return None" };

// ---- DOM helpers (textContent only) ----

function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "className") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value" || key === "checked" || key === "selected") el[key] = value;
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// ---- API ----

async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const started = performance.now();
  const response = await fetch(API + path, init);
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { error: "InvalidResponse", message: text.slice(0, 500) };
  }
  return {
    status: response.status,
    ok: response.ok,
    json,
    timing: response.headers.get("Server-Timing"),
    elapsed: performance.now() - started,
  };
}

const enc = encodeURIComponent;

// ---- State ----

const state = {
  workspaces: [],
  name: null,        // the open workspace
  body: null,        // its body as edited: {functions: {...}, ...other saved keys}
  saved: null,       // JSON text of the body as last saved or loaded
  exists: false,     // whether the server has it
  fn: null,          // the selected function
  errors: {},        // function -> [{line, column, message}] from the last save
  rawJson: false,
  running: false,
};

const dirty = () => state.body !== null && JSON.stringify(state.body) !== state.saved;
const currentFn = () => (state.body && state.fn ? state.body.functions[state.fn] : null);
const languageOf = (fn) => (fn && fn.language === "python" ? "python" : "nodejs");

// ---- Editor ----

const setErrorLines = StateEffect.define();
const errorLines = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    deco = deco.map(tr.changes);
    for (const effect of tr.effects) if (effect.is(setErrorLines)) deco = effect.value;
    return deco;
  },
  provide: (field) => EditorView.decorations.from(field),
});

const language = new Compartment();
const languageExtension = (lang) => (lang === "python" ? python() : javascript());

let editor;
function makeEditor(parent) {
  editor = new EditorView({
    parent,
    state: EditorState.create({
      doc: "",
      extensions: [
        basicSetup,
        keymap.of([indentWithTab]),
        language.of(javascript()),
        lintGutter(),
        errorLines,
        EditorView.updateListener.of((update) => {
          if (!update.docChanged || !currentFn()) return;
          currentFn().code = update.state.doc.toString();
          renderDirty();
        }),
      ],
    }),
  });
}

function loadEditor() {
  const fn = currentFn();
  editor.dispatch({
    changes: { from: 0, to: editor.state.doc.length, insert: fn ? fn.code : "" },
    effects: language.reconfigure(languageExtension(languageOf(fn))),
  });
  editor.contentDOM.setAttribute("aria-readonly", fn ? "false" : "true");
  showErrorsInEditor();
}

// Marks the last save's syntax errors of the selected function in the editor.
function showErrorsInEditor() {
  const doc = editor.state.doc;
  const problems = (state.fn && state.errors[state.fn]) || [];
  const diagnostics = [];
  const builder = new RangeSetBuilder();
  const lines = [...new Set(problems.map((p) => Math.min(Math.max(p.line, 1), doc.lines)))].sort((a, b) => a - b);
  for (const p of problems) {
    const line = doc.line(Math.min(Math.max(p.line, 1), doc.lines));
    const from = Math.min(line.from + Math.max(p.column - 1, 0), line.to);
    diagnostics.push({ from, to: Math.min(from + 1, line.to), severity: "error", message: p.message });
  }
  for (const n of lines) builder.add(doc.line(n).from, doc.line(n).from, Decoration.line({ class: "cc-error-line" }));
  editor.dispatch(setDiagnostics(editor.state, diagnostics), { effects: setErrorLines.of(builder.finish()) });
}

// ---- Layout ----

const ui = {};

function buildLayout() {
  const app = document.getElementById("app");
  ui.status = h("span", { id: "status", className: "status", role: "status" });
  ui.workspaceList = h("ul", { id: "workspace-list", className: "list" });
  ui.newWorkspaceName = h("input", {
    id: "new-workspace-name", placeholder: "new workspace name", spellcheck: false, autocomplete: "off",
    onKeydown: (e) => e.key === "Enter" && createWorkspace(),
  });
  ui.functionList = h("ul", { id: "function-list", className: "list" });
  ui.workspaceTitle = h("h2", { id: "workspace-title" });
  ui.dirtyMark = h("span", { id: "dirty", className: "dirty" });
  ui.fnName = h("input", { id: "function-name", spellcheck: false, autocomplete: "off", onChange: renameFunction });
  ui.fnLanguage = h("select", { id: "function-language", onChange: changeLanguage },
    h("option", { value: "nodejs" }, "JavaScript (Node.js)"), h("option", { value: "python" }, "Python"));
  ui.fnDescription = h("input", {
    id: "function-description", placeholder: "description (optional)", onInput: (e) => {
      if (!currentFn()) return;
      if (e.target.value) currentFn().description = e.target.value;
      else delete currentFn().description;
      renderDirty();
    },
  });
  ui.saveButton = h("button", { id: "save", className: "primary", onClick: save, title: "Ctrl/Cmd+S" }, "Save");
  ui.saveErrors = h("div", { id: "save-errors", className: "errors", role: "alert" });
  ui.paramsBody = h("tbody", { id: "params" });
  ui.editorHost = h("div", { id: "editor", className: "editor" });
  ui.runForm = h("div", { id: "run-form", className: "run-form" });
  ui.rawToggle = h("input", { type: "checkbox", id: "raw-json", onChange: (e) => { state.rawJson = e.target.checked; renderRunForm(); } });
  ui.runButton = h("button", { id: "run", className: "primary", onClick: run, title: "Ctrl/Cmd+Enter" }, "Run");
  ui.output = h("div", { id: "output", className: "output" });

  app.append(
    h("header", { className: "topbar" },
      h("h1", {}, "customcode ", h("span", { className: "muted" }, "playground")),
      ui.status,
      h("nav", {},
        h("a", { href: "../metrics", target: "_blank", rel: "noopener" }, "metrics"),
        h("a", { href: "../sys/healthcheck", target: "_blank", rel: "noopener" }, "health"))),
    h("main", { className: "columns" },
      h("aside", { className: "sidebar" },
        h("section", {},
          h("h3", {}, "Workspaces"),
          h("div", { className: "row" }, ui.newWorkspaceName,
            h("button", { id: "create-workspace", onClick: createWorkspace }, "Create")),
          ui.workspaceList),
        h("section", { id: "functions-section" },
          h("h3", {}, "Functions"),
          ui.functionList,
          h("button", { id: "add-function", onClick: addFunction }, "+ Add function"))),
      h("section", { className: "center" },
        h("div", { className: "workspace-bar" }, ui.workspaceTitle, ui.dirtyMark,
          h("span", { className: "spacer" }),
          ui.saveButton,
          h("button", { id: "delete-workspace", className: "danger", onClick: deleteWorkspace }, "Delete workspace")),
        h("div", { className: "fn-bar" },
          h("label", {}, "Function ", ui.fnName),
          h("label", {}, "Language ", ui.fnLanguage),
          ui.fnDescription,
          h("button", { id: "delete-function", className: "danger", onClick: deleteFunction }, "Delete function")),
        h("div", { id: "welcome", className: "welcome" },
          h("p", {}, "Pick a workspace on the left, or type a name and press Create to start one."),
          h("p", {}, "Each workspace holds functions in JavaScript (Node.js) or Python that you can save and run ",
            "here or over the HTTP API: POST ", h("code", {}, "/v2/functions/{workspace}"), " saves, POST ",
            h("code", {}, "/v2/functions/{workspace}/run/{function}"), " runs."),
          h("p", { className: "muted" }, "Keys: Ctrl/Cmd+S saves, Ctrl/Cmd+Enter runs.")),
        ui.saveErrors,
        ui.editorHost,
        h("details", { className: "params", open: true },
          h("summary", {}, "Parameters"),
          h("table", {},
            h("thead", {}, h("tr", {}, h("th", {}, "name"), h("th", {}, "type"), h("th", {}, "default (JSON)"),
              h("th", {}, "description"), h("th", {}))),
            ui.paramsBody),
          h("button", { id: "add-parameter", onClick: addParameter }, "+ Add parameter"))),
      h("section", { className: "right" },
        h("div", { className: "run-bar" }, h("h3", {}, "Run"),
          h("label", { className: "toggle" }, ui.rawToggle, " raw JSON"),
          h("span", { className: "spacer" }), ui.runButton),
        ui.runForm,
        ui.output)));

  makeEditor(ui.editorHost);
  document.addEventListener("keydown", (e) => {
    const mod = e.ctrlKey || e.metaKey;
    if (mod && (e.key === "s" || e.key === "S")) {
      e.preventDefault();
      save();
    } else if (mod && e.key === "Enter") {
      e.preventDefault();
      run();
    }
  });
  window.addEventListener("beforeunload", (e) => {
    if (dirty()) e.preventDefault();
  });
  window.addEventListener("hashchange", () => {
    const wanted = workspaceFromHash();
    if (wanted && wanted !== state.name) openWorkspace(wanted);
  });
}

function setStatus(text, kind = "") {
  ui.status.textContent = text;
  ui.status.className = "status " + kind;
}

// ---- Rendering ----

function renderWorkspaces() {
  clear(ui.workspaceList);
  const names = [...state.workspaces];
  if (state.name && !names.includes(state.name)) names.push(state.name);
  names.sort();
  if (!names.length) ui.workspaceList.append(h("li", { className: "muted" }, "no workspace yet"));
  for (const name of names) {
    ui.workspaceList.append(h("li", {},
      h("a", {
        href: "#ws=" + enc(name), className: name === state.name ? "selected" : "",
        dataset: { workspace: name },
      }, name)));
  }
}

function renderFunctions() {
  clear(ui.functionList);
  const has = state.body !== null;
  document.getElementById("functions-section").hidden = !has;
  if (!has) return;
  for (const name of Object.keys(state.body.functions).sort()) {
    const fn = state.body.functions[name];
    ui.functionList.append(h("li", {},
      h("button", {
        className: "link" + (name === state.fn ? " selected" : "") + (state.errors[name] ? " has-error" : ""),
        dataset: { function: name },
        onClick: () => selectFunction(name),
      }, name, h("span", { className: "badge" }, languageOf(fn) === "python" ? "py" : "js"))));
  }
}

function renderDirty() {
  ui.dirtyMark.textContent = dirty() ? (state.exists ? "● unsaved changes" : "● not saved yet") : "";
}

function renderFunctionBar() {
  const fn = currentFn();
  for (const el of [ui.fnName, ui.fnLanguage, ui.fnDescription]) el.disabled = !fn;
  ui.fnName.value = state.fn || "";
  ui.fnLanguage.value = languageOf(fn);
  ui.fnDescription.value = (fn && fn.description) || "";
}

function renderAll() {
  const has = state.body !== null;
  document.body.classList.toggle("no-workspace", !has);
  ui.workspaceTitle.textContent = has ? state.name : "Open or create a workspace";
  renderWorkspaces();
  renderFunctions();
  renderFunctionBar();
  renderParams();
  renderRunForm();
  renderSaveErrors();
  renderDirty();
  loadEditor();
}

function renderSaveErrors(envelope) {
  clear(ui.saveErrors);
  if (!envelope) return;
  ui.saveErrors.append(h("strong", {}, envelope.error || "Error"), ": ", envelope.message || "");
  const details = Array.isArray(envelope.details) ? envelope.details : [];
  if (details.length) {
    ui.saveErrors.append(h("ul", {}, details.map((d) => h("li", {},
      d.function && d.line ? h("button", {
        className: "link", onClick: () => selectFunction(d.function),
      }, `${d.function}: line ${d.line}, column ${d.column ?? "?"}`) : h("code", {}, d.path || ""),
      " — ", d.message || ""))));
  }
}

// ---- Parameters ----

function paramEntries() {
  const fn = currentFn();
  return fn ? Object.entries(fn.parameters || {}) : [];
}

function setParameters(entries) {
  const fn = currentFn();
  if (!fn) return;
  if (entries.length) fn.parameters = Object.fromEntries(entries);
  else delete fn.parameters;
  renderDirty();
}

function renderParams() {
  clear(ui.paramsBody);
  const entries = paramEntries();
  document.getElementById("add-parameter").disabled = !currentFn();
  entries.forEach(([name, spec], index) => {
    const update = (mutate) => {
      const list = paramEntries();
      list[index] = mutate(list[index]);
      setParameters(list);
    };
    const nameInput = h("input", {
      value: name, className: "param-name", spellcheck: false, autocomplete: "off",
      onChange: (e) => {
        update(([, s]) => [e.target.value.trim(), s]);
        renderParams();
        renderRunForm();
      },
    });
    const typeSelect = h("select", {
      className: "param-type",
      onChange: (e) => {
        update(([n, s]) => [n, { ...s, type: e.target.value }]);
        renderRunForm();
      },
    }, TYPES.map((t) => h("option", { value: t }, t)));
    typeSelect.value = TYPES.includes(spec.type) ? spec.type : "string";
    const defaultInput = h("input", {
      className: "param-default", placeholder: "none", spellcheck: false,
      value: spec.default === undefined ? "" : JSON.stringify(spec.default),
      onChange: (e) => {
        const text = e.target.value.trim();
        let value;
        if (text) {
          try {
            value = JSON.parse(text);
          } catch {
            value = text;  // a bare word is taken as a string
            e.target.value = JSON.stringify(text);
          }
        }
        update(([n, s]) => {
          const next = { ...s };
          if (value === undefined) delete next.default;
          else next.default = value;
          return [n, next];
        });
        renderRunForm();
      },
    });
    const descriptionInput = h("input", {
      className: "param-description", value: spec.description || "", placeholder: "optional",
      onChange: (e) => update(([n, s]) => {
        const next = { ...s };
        if (e.target.value) next.description = e.target.value;
        else delete next.description;
        return [n, next];
      }),
    });
    const remove = h("button", {
      className: "danger small", title: "remove this parameter",
      onClick: () => {
        setParameters(paramEntries().filter((_, i) => i !== index));
        renderParams();
        renderRunForm();
      },
    }, "✕");
    ui.paramsBody.append(h("tr", {}, h("td", {}, nameInput), h("td", {}, typeSelect), h("td", {}, defaultInput),
      h("td", {}, descriptionInput), h("td", {}, remove)));
  });
}

function addParameter() {
  const list = paramEntries();
  let n = list.length + 1;
  let name = list.length ? "param" + n : "name";
  while (list.some(([k]) => k === name)) name = "param" + ++n;
  list.push([name, { type: "string" }]);
  setParameters(list);
  renderParams();
  renderRunForm();
  ui.paramsBody.lastChild.querySelector(".param-name").select();
}

// ---- Run form ----

const runValues = {};  // "fn/param" -> text typed in the form, kept across re-renders

function renderRunForm() {
  clear(ui.runForm);
  const fn = currentFn();
  ui.runButton.disabled = !fn || state.running;
  if (!fn) return;
  const entries = paramEntries();
  if (state.rawJson) {
    const key = state.fn + "/";
    if (runValues[key] === undefined) {
      runValues[key] = JSON.stringify(Object.fromEntries(entries.filter(([, s]) => s.default !== undefined)
        .map(([n, s]) => [n, s.default])), null, 2);
    }
    ui.runForm.append(h("label", { className: "block" }, "parameters (a JSON object)",
      h("textarea", {
        id: "raw-parameters", rows: 6, spellcheck: false, value: runValues[key],
        onInput: (e) => { runValues[key] = e.target.value; },
      })));
    return;
  }
  if (!entries.length) {
    ui.runForm.append(h("p", { className: "muted" }, "This function declares no parameters."));
    return;
  }
  for (const [name, spec] of entries) {
    const key = state.fn + "/" + name;
    const common = {
      name, dataset: { param: name }, spellcheck: false, autocomplete: "off",
      onInput: (e) => { runValues[key] = e.target.type === "checkbox" ? String(e.target.checked) : e.target.value; },
      onChange: (e) => { runValues[key] = e.target.type === "checkbox" ? String(e.target.checked) : e.target.value; },
    };
    let input;
    const fallback = spec.default === undefined ? "" : (typeof spec.default === "string" ? spec.default : JSON.stringify(spec.default));
    const value = runValues[key] ?? fallback;
    if (spec.type === "boolean") {
      input = h("input", { ...common, type: "checkbox", checked: value === "true" });
    } else if (spec.type === "object" || spec.type === "array") {
      input = h("textarea", { ...common, rows: 3, value, placeholder: spec.type === "array" ? "[ ]" : "{ }" });
    } else {
      input = h("input", { ...common, type: spec.type === "string" ? "text" : "number", step: spec.type === "integer" ? "1" : "any", value });
    }
    ui.runForm.append(h("label", { className: "block" },
      h("span", {}, name, " ", h("span", { className: "muted" }, spec.type), spec.description ? h("span", { className: "hint" }, " — " + spec.description) : null),
      input));
  }
}

// The parameters to send, or throws an Error naming the field that is wrong.
function collectParameters() {
  if (state.rawJson) {
    const text = runValues[state.fn + "/"] || "{}";
    let value;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new Error("The parameters are not valid JSON: " + e.message);
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("The parameters must be a JSON object");
    return value;
  }
  const out = {};
  for (const [name, spec] of paramEntries()) {
    const el = ui.runForm.querySelector(`[data-param="${CSS.escape(name)}"]`);
    if (!el) continue;
    if (spec.type === "boolean") {
      out[name] = el.checked;
      continue;
    }
    const text = el.value;
    if (text === "") continue;  // missing: the function gets its default
    if (spec.type === "string") out[name] = text;
    else if (spec.type === "number" || spec.type === "integer") out[name] = Number(text);
    else {
      try {
        out[name] = JSON.parse(text);
      } catch (e) {
        throw new Error(`Parameter "${name}" is not valid JSON: ${e.message}`);
      }
    }
  }
  return out;
}

// ---- Output ----

function parseServerTiming(header) {
  if (!header) return [];
  return header.split(",").map((part) => {
    const [name, ...params] = part.trim().split(";");
    const dur = params.map((p) => p.trim()).find((p) => p.startsWith("dur="));
    return { name: name.trim(), dur: dur ? Number(dur.slice(4)) : null };
  });
}

const TIMING_NAMES = { queue: "queue", cold: "cold start", run: "run", total: "total" };

function formatTime(timestamp) {
  const d = new Date(timestamp);
  if (Number.isNaN(d.getTime())) return String(timestamp ?? "");
  return d.toISOString().slice(11, 23);
}

function renderOutput(response) {
  clear(ui.output);
  const body = response.json || {};
  const failed = !response.ok;
  const timing = parseServerTiming(response.timing);
  ui.output.append(h("div", { id: "run-summary", className: "summary " + (failed ? "bad" : "good") },
    h("span", { className: "http" }, `HTTP ${response.status}`),
    body.duration !== undefined ? h("span", { id: "duration" }, `duration ${body.duration} ms`) : null,
    timing.length ? h("span", { id: "server-timing", className: "muted" },
      timing.map((t) => `${TIMING_NAMES[t.name] || t.name} ${t.dur ?? "?"} ms`).join(" · ")) : null));

  if (failed) {
    const box = h("div", { id: "run-error", className: "envelope" },
      h("div", {}, h("strong", {}, body.error || "Error"), ": ", body.message || ""));
    const details = body.details;
    if (details && typeof details === "object" && !Array.isArray(details) && details.stack) {
      box.append(h("pre", { className: "stack" }, String(details.stack)));
    } else if (details !== undefined && details !== null) {
      box.append(h("pre", { className: "stack" }, JSON.stringify(details, null, 2)));
    }
    ui.output.append(box);
  } else {
    ui.output.append(h("h4", {}, "Result"), h("pre", { id: "result", className: "result" }, JSON.stringify(body.result, null, 2) ?? "null"));
  }

  const logs = Array.isArray(body.logs) ? body.logs : [];
  ui.output.append(h("h4", {}, `Logs (${logs.length})`));
  if (!logs.length) {
    ui.output.append(h("p", { className: "muted" }, "no log lines"));
    return;
  }
  ui.output.append(h("table", { id: "logs", className: "logs" }, h("tbody", {}, logs.map((log) =>
    h("tr", { className: "level-" + String(log.level || "log").replace(/[^a-z]/g, "") },
      h("td", { className: "time" }, formatTime(log.timestamp)),
      h("td", { className: "level" }, String(log.level || "")),
      h("td", { className: "message" }, String(log.message ?? "")))))));
}

// ---- Actions ----

function workspaceFromHash() {
  const m = /^#ws=(.*)$/.exec(window.location.hash);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

async function refreshWorkspaces() {
  const r = await api("GET", "");
  if (r.ok && r.json && Array.isArray(r.json.workspaces)) state.workspaces = r.json.workspaces;
  else setStatus(`Could not list workspaces: ${(r.json && r.json.message) || r.status}`, "bad");
  renderWorkspaces();
}

async function openWorkspace(name) {
  if (dirty() && !window.confirm(`Discard the unsaved changes of "${state.name}"?`)) {
    window.location.hash = "ws=" + enc(state.name);
    return;
  }
  const r = await api("GET", "/" + enc(name));
  if (!r.ok) {
    setStatus(`Could not open "${name}": ${(r.json && r.json.message) || r.status}`, "bad");
    return;
  }
  state.name = name;
  state.body = r.json;
  if (!state.body.functions) state.body.functions = {};
  state.saved = JSON.stringify(state.body);
  state.exists = true;
  state.errors = {};
  state.fn = Object.keys(state.body.functions).sort()[0] || null;
  if (window.location.hash !== "#ws=" + enc(name)) window.location.hash = "ws=" + enc(name);
  clear(ui.output);
  renderAll();
  setStatus(`Opened ${name}`);
}

function createWorkspace() {
  const name = ui.newWorkspaceName.value.trim();
  if (!name) {
    setStatus("Type a name for the new workspace", "bad");
    ui.newWorkspaceName.focus();
    return;
  }
  if (state.workspaces.includes(name)) {
    openWorkspace(name);
    return;
  }
  if (dirty() && !window.confirm(`Discard the unsaved changes of "${state.name}"?`)) return;
  state.name = name;
  state.body = { functions: { hello: { code: TEMPLATES.nodejs, parameters: { name: { type: "string", default: "world" } } } } };
  state.saved = null;
  state.exists = false;
  state.errors = {};
  state.fn = "hello";
  ui.newWorkspaceName.value = "";
  window.location.hash = "ws=" + enc(name);
  clear(ui.output);
  renderAll();
  setStatus(`New workspace ${name}: edit it, then Save (Ctrl+S)`);
  editor.focus();
}

function selectFunction(name) {
  if (!state.body || !state.body.functions[name]) return;
  state.fn = name;
  renderFunctions();
  renderFunctionBar();
  renderParams();
  renderRunForm();
  loadEditor();
}

function addFunction() {
  if (!state.body) return;
  let n = 1;
  let name = "newFunction";
  while (state.body.functions[name]) name = "newFunction" + ++n;
  const lang = languageOf(currentFn());
  state.body.functions[name] = lang === "python" ? { code: NEW_CODE.python, language: "python" } : { code: NEW_CODE.nodejs };
  selectFunction(name);
  renderDirty();
  ui.fnName.select();
}

function renameFunction() {
  const fn = currentFn();
  const next = ui.fnName.value.trim();
  if (!fn || next === state.fn) return;
  if (!IDENTIFIER.test(next)) {
    setStatus(`"${next}" is not a valid function name (letters, digits, _ and $; not starting with a digit)`, "bad");
    ui.fnName.value = state.fn;
    return;
  }
  if (state.body.functions[next]) {
    setStatus(`A function named "${next}" already exists`, "bad");
    ui.fnName.value = state.fn;
    return;
  }
  const entries = Object.entries(state.body.functions).map(([k, v]) => [k === state.fn ? next : k, v]);
  state.body.functions = Object.fromEntries(entries);
  if (state.errors[state.fn]) {
    state.errors[next] = state.errors[state.fn];
    delete state.errors[state.fn];
  }
  state.fn = next;
  renderFunctions();
  renderDirty();
  renderRunForm();
}

function changeLanguage() {
  const fn = currentFn();
  if (!fn) return;
  const lang = ui.fnLanguage.value;
  // Code nobody has written yet follows the language; anything else is kept.
  if (Object.values(NEW_CODE).includes(fn.code) || !fn.code.trim()) fn.code = NEW_CODE[lang];
  else if (Object.values(TEMPLATES).includes(fn.code)) fn.code = TEMPLATES[lang];
  if (lang === "python") fn.language = "python";
  else delete fn.language;
  renderFunctions();
  renderDirty();
  loadEditor();
}

function deleteFunction() {
  if (!state.fn || !window.confirm(`Delete the function "${state.fn}"? (Save to apply.)`)) return;
  delete state.body.functions[state.fn];
  delete state.errors[state.fn];
  state.fn = Object.keys(state.body.functions).sort()[0] || null;
  renderAll();
}

async function deleteWorkspace() {
  if (!state.name || !window.confirm(`Delete the workspace "${state.name}" and all its functions?`)) return;
  const name = state.name;
  if (state.exists) {
    const r = await api("DELETE", "/" + enc(name));
    if (!r.ok) {
      setStatus(`Could not delete "${name}": ${(r.json && r.json.message) || r.status}`, "bad");
      return;
    }
  }
  Object.assign(state, { name: null, body: null, saved: null, exists: false, fn: null, errors: {} });
  history.replaceState(null, "", window.location.pathname);
  clear(ui.output);
  await refreshWorkspaces();
  renderAll();
  setStatus(`Deleted ${name}`);
}

// Saves the workspace; returns whether it is saved. A refused save keeps every edit.
async function save() {
  if (!state.body) return false;
  if (!Object.keys(state.body.functions).length) {
    setStatus("Add a function before saving", "bad");
    return false;
  }
  setStatus("Saving…");
  ui.saveButton.disabled = true;
  const sent = JSON.stringify(state.body);
  try {
    const r = await api("POST", "/" + enc(state.name), state.body);
    if (!r.ok) {
      state.errors = {};
      const details = r.json && Array.isArray(r.json.details) ? r.json.details : [];
      for (const d of details) {
        if (!d.function || !d.line) continue;
        (state.errors[d.function] ||= []).push({ line: d.line, column: d.column || 1, message: d.message || r.json.message });
      }
      const first = details.find((d) => d.function && d.line);
      if (first && first.function !== state.fn && state.body.functions[first.function]) selectFunction(first.function);
      renderFunctions();
      renderSaveErrors(r.json || { error: "Error", message: `HTTP ${r.status}` });
      showErrorsInEditor();
      setStatus(`Not saved: ${(r.json && r.json.error) || r.status}`, "bad");
      return false;
    }
    state.saved = sent;
    state.exists = true;
    state.errors = {};
    if (!state.workspaces.includes(state.name)) state.workspaces.push(state.name);
    renderWorkspaces();
    renderFunctions();
    renderSaveErrors();
    showErrorsInEditor();
    renderDirty();
    setStatus(`Saved ${state.name}`, "good");
    return true;
  } catch (e) {
    setStatus("Save failed: " + e.message, "bad");
    return false;
  } finally {
    ui.saveButton.disabled = false;
  }
}

async function run() {
  if (!currentFn() || state.running) return;
  let parameters;
  try {
    parameters = collectParameters();
  } catch (e) {
    setStatus(e.message, "bad");
    return;
  }
  // Runs execute the saved code: save pending edits first.
  if ((dirty() || !state.exists) && !(await save())) return;
  state.running = true;
  ui.runButton.disabled = true;
  setStatus(`Running ${state.fn}…`);
  try {
    const r = await api("POST", `/${enc(state.name)}/run/${enc(state.fn)}`, { parameters });
    renderOutput(r);
    setStatus(r.ok ? `Ran ${state.fn} in ${Math.round(r.elapsed)} ms` : `${state.fn} failed: ${(r.json && r.json.error) || r.status}`, r.ok ? "good" : "bad");
  } catch (e) {
    setStatus("Run failed: " + e.message, "bad");
  } finally {
    state.running = false;
    ui.runButton.disabled = false;
  }
}

// ---- Start ----

buildLayout();
renderAll();
refreshWorkspaces().then(() => {
  const wanted = workspaceFromHash();
  if (wanted) openWorkspace(wanted);
});
