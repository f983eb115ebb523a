// ChiMed-RAG page: renders what POST /v1/ask returns (SSE), and the admin API's documents. No server logic here.
"use strict";

const $ = (sel) => document.querySelector(sel);
const turns = []; // [{question, answer}] of this conversation, sent back with each question
let adminToken = "";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// ---- errors ----
async function errorText(response) {
  try {
    const body = await response.json();
    return body.error?.message || `HTTP ${response.status}`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

function showError(container, message) {
  container.append(el("p", { class: "msg error", role: "alert", text: "出错了：" + message }));
}

// ---- Server-Sent Events over fetch (EventSource cannot POST) ----
async function* sseEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

// ---- asking ----
function options() {
  const body = {};
  const mode = $("#mode").value;
  const topK = parseInt($("#top-k").value, 10);
  if (mode) body.mode = mode;
  if (!Number.isNaN(topK)) body.top_k = topK;
  if ($("#strict").checked) body.strict = true;
  return body;
}

async function ask(question) {
  $("#welcome")?.remove();
  const turn = el("article", { class: "turn" });
  const answer = el("div", { class: "answer", "aria-busy": "true" });
  const live = el("p", { class: "streaming" });
  answer.append(live);
  turn.append(el("p", { class: "question", text: question }), answer);
  $("#log").append(turn);
  turn.scrollIntoView({ block: "start" });
  setBusy(true);
  try {
    const response = await fetch("v1/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ question, history: turns, stream: true, ...options() }),
    });
    if (!response.ok) throw new Error(await errorText(response));
    let final = null;
    for await (const { event, data } of sseEvents(response)) {
      if (event === "delta") live.textContent += data.text;
      else if (event === "answer") final = data;
      else if (event === "error") throw new Error(data.error?.message || "服务器错误");
    }
    if (!final) throw new Error("回答中断，请重试");
    live.remove();
    renderAnswer(answer, final);
    turns.push({ question, answer: final.answer });
  } catch (err) {
    showError(answer, err instanceof TypeError ? "无法连接服务器，请检查网络后重试" : err.message);
  } finally {
    answer.setAttribute("aria-busy", "false");
    setBusy(false);
  }
}

function setBusy(busy) {
  $("#send").disabled = busy;
  $("#send").textContent = busy ? "回答中…" : "发送";
}

// ---- rendering an answer ----
const REASONS = {
  out_of_scope: "这个问题似乎不在医学健康范围内，本站只根据医学参考资料回答。",
  insufficient_evidence: "参考资料中没有能回答这个问题的内容，所以没有给出答案，以免误导。",
};

function renderAnswer(box, a) {
  const passages = new Map(a.passages.map((p) => [p.chunk_id, p]));
  if (a.safety && a.safety.level !== "routine") box.append(safetyBanner(a.safety));
  if (a.abstention?.abstain) {
    box.append(el("div", { class: "abstain", role: "note" },
      el("strong", { text: REASONS[a.abstention.reason] || REASONS.insufficient_evidence }),
      el("p", { text: "建议：换一种说法或补充具体症状、年龄、用药情况后再问；也可以直接咨询医生。" })));
  }
  const text = el("p", { class: "text" });
  a.sentences.forEach((s) => text.append(sentence(s, passages)));
  if (!a.sentences.length && !a.abstention?.abstain) text.textContent = a.answer;
  box.append(text);
  for (const note of a.notes || []) box.append(el("p", { class: "meta", text: note }));
  if (a.citations.length) box.append(sourceList(a.citations, passages));
  box.append(el("p", { class: "disclaimer small", text: a.disclaimer }));
}

function safetyBanner(safety) {
  const emergency = safety.level === "emergency";
  const banner = el("div", { class: `banner ${safety.level}`, role: "alert" },
    el("strong", { text: emergency ? "紧急情况" : "请尽快就医" }),
    el("p", { text: safety.advice }));
  const calls = el("p", { class: "calls" });
  if (emergency) calls.append(el("a", { href: "tel:120", class: "call", text: "拨打 120" }));
  if (safety.signals.includes("self_harm")) {
    calls.append(el("a", { href: "tel:12356", class: "call", text: "心理援助热线 12356" }));
  }
  if (calls.childNodes.length) banner.append(calls);
  return banner;
}

function sentence(s, passages) {
  const support = s.support;
  const span = el("span", { class: "sentence" + (support ? " " + support.label : "") }, s.text.replace(/\s*(\[\d+\])+\s*$/, ""));
  for (const c of s.citations) {
    const inferred = support?.inferred_citations?.includes(c.marker);
    const button = el("button", {
      type: "button", class: "cite" + (inferred ? " inferred" : ""), "data-marker": String(c.marker),
      "aria-label": `查看参考资料 ${c.marker}：${c.title}` + (inferred ? "（系统补充的引用）" : ""),
      onclick: () => openPassage(c, support, passages.get(c.chunk_id)),
    }, `[${c.marker}]`);
    span.append(button);
  }
  if (support && support.label !== "supported") {
    const reason = supportReason(support);
    const flag = el("button", { type: "button", class: "flag", title: reason, "aria-label": "说明：" + reason,
      "aria-expanded": "false" }, support.label === "weak" ? "支持较弱" : "无资料支持");
    const detail = el("span", { class: "reason", hidden: "" }, reason);
    flag.addEventListener("click", () => {
      detail.hidden = !detail.hidden;
      flag.setAttribute("aria-expanded", String(!detail.hidden));
    });
    span.append(flag, detail);
  }
  return span;
}

function supportReason(support) {
  const score = `（匹配度 ${Math.round(support.score * 100)}%）`;
  const parts = [support.label === "weak"
    ? "参考资料只部分支持这句话" + score + "，请谨慎参考。"
    : "参考资料中找不到支持这句话的内容" + score + "，它可能不准确。"];
  if (support.unsupported_markers?.length) {
    parts.push(`引用 ${support.unsupported_markers.map((m) => `[${m}]`).join("")} 的段落并不支持这句话。`);
  }
  return parts.join("");
}

function sourceList(citations, passages) {
  const list = el("ol", { class: "sources" });
  const seen = new Set();
  for (const c of citations) {
    if (seen.has(c.marker)) continue;
    seen.add(c.marker);
    const title = c.url ? el("a", { href: c.url, target: "_blank", rel: "noopener" }, c.title) : c.title;
    list.append(el("li", { value: String(c.marker) },
      el("button", { type: "button", class: "cite", "aria-label": `查看参考资料 ${c.marker}`,
        onclick: () => openPassage(c, null, passages.get(c.chunk_id)) }, `[${c.marker}]`),
      " ", title, el("span", { class: "meta", text: [c.locator?.label, c.source].filter(Boolean).join(" · ") })));
  }
  return el("section", { class: "sources-box", "aria-label": "参考来源" }, el("h3", { text: "参考来源" }), list);
}

// ---- the passage dialog ----
function openPassage(citation, support, passage) {
  const dialog = $("#passage");
  $("#passage-title").textContent = `[${citation.marker}] ${citation.title}`;
  $("#passage-meta").textContent = [citation.locator?.label, citation.source].filter(Boolean).join(" · ");
  const quote = $("#passage-text");
  const text = passage ? passage.text : "";
  const evidence = support?.evidence;
  quote.replaceChildren();
  if (evidence && evidence.marker === citation.marker && evidence.chunk_id === citation.chunk_id) {
    const [start, end] = evidence.span;
    quote.append(text.slice(0, start), el("mark", { text: text.slice(start, end) }), text.slice(end));
    $("#passage-note").textContent = "黄色标出的是支持这句话的原文。";
  } else {
    quote.textContent = text || "（此段原文未随回答返回）";
    $("#passage-note").textContent = support ? "这段资料中没有定位到逐句对应的原文。" : "";
  }
  dialog.showModal();
  quote.querySelector("mark")?.scrollIntoView({ block: "center" });
}

// ---- knowledge base (admin API) ----
async function admin(path, init = {}) {
  const response = await fetch(path, { ...init, headers: { ...(init.headers || {}), Authorization: `Bearer ${adminToken}` } });
  if (!response.ok) throw new Error(await errorText(response));
  return response.json();
}

function kbMessage(text, error = false) {
  const msg = $("#kb-msg");
  msg.textContent = text;
  msg.classList.toggle("error", error);
}

async function loadDocuments() {
  const body = await admin("v1/documents");
  $("#kb-info").textContent = `索引 ${body.index} · 第 ${body.generation} 代 · ${body.documents.length} 个文档`;
  const rows = body.documents.map((d) => el("tr", {},
    el("td", { text: d.title || d.id }), el("td", { text: String(d.chunks ?? "") }),
    el("td", {}, el("button", { type: "button", class: "danger", "aria-label": `删除 ${d.title || d.id}`,
      onclick: () => removeDocument(d) }, "删除"))));
  $("#kb-docs tbody").replaceChildren(...rows);
}

async function removeDocument(doc) {
  if (!confirm(`删除文档“${doc.title || doc.id}”？`)) return;
  kbMessage("正在删除并重建索引…");
  try {
    const result = await admin(`v1/documents/${encodeURIComponent(doc.id)}`, { method: "DELETE" });
    await loadDocuments();
    kbMessage(`已删除，当前为第 ${result.generation} 代索引。`);
  } catch (err) {
    kbMessage("删除失败：" + err.message, true);
  }
}

async function upload(event) {
  event.preventDefault();
  const form = new FormData();
  for (const file of $("#kb-file").files) form.append("file", file);
  kbMessage("正在上传并建立索引…");
  try {
    const result = await admin("v1/documents", { method: "POST", body: form });
    $("#kb-file").value = "";
    await loadDocuments();
    kbMessage(`已上传，当前为第 ${result.generation} 代索引。`);
  } catch (err) {
    kbMessage("上传失败：" + err.message, true);
  }
}

async function login(event) {
  event.preventDefault();
  adminToken = $("#kb-token").value.trim();
  try {
    await loadDocuments();
    $("#kb-login").hidden = true;
    $("#kb-body").hidden = false;
    kbMessage("");
  } catch (err) {
    adminToken = "";
    kbMessage("无法进入知识库：" + err.message, true);
  }
}

// The knowledge-base entry appears only when the server has an admin token configured (401, not 403).
async function detectAdmin() {
  try {
    const response = await fetch("v1/documents");
    $("#kb-open").hidden = response.status !== 401;
  } catch {
    /* offline: no knowledge base entry */
  }
}

// ---- wiring ----
function init() {
  const input = $("#question");
  $("#ask").addEventListener("submit", (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question || $("#send").disabled) return;
    input.value = "";
    ask(question);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("#ask").requestSubmit();
    }
  });
  $("#new-chat").addEventListener("click", () => {
    turns.length = 0;
    $("#log").replaceChildren();
    input.focus();
  });
  $("#kb-open").addEventListener("click", () => {
    const panel = $("#kb");
    panel.hidden = !panel.hidden;
    $("#kb-open").setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) (adminToken ? $("#kb-file") : $("#kb-token")).focus();
  });
  $("#kb-login").addEventListener("submit", login);
  $("#kb-upload").addEventListener("submit", upload);
  detectAdmin();
  input.focus();
}

init();
