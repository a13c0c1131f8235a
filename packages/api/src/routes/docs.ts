// The OpenAPI 3.1 document (generated from the route definitions) and a small reference page that reads it.
import type { OpenAPIHono } from "@hono/zod-openapi";

const REFERENCE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Indigo API reference</title>
<style>
body{font:14px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1d1d2b}
h1{color:#3b2f8f}.op{border:1px solid #ddd;border-radius:6px;margin:.6rem 0;padding:.4rem .8rem}
.m{display:inline-block;min-width:4.5rem;font-weight:700;text-transform:uppercase}
.get{color:#1b7f3b}.post{color:#3b2f8f}code,pre{background:#f5f5fa;border-radius:4px;padding:0 .3rem}
pre{padding:.5rem;overflow:auto;max-height:20rem}details summary{cursor:pointer}
</style></head><body>
<h1>Indigo API</h1><p>Generated from <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).
Authenticate with <code>Authorization: Bearer &lt;token&gt;</code>; errors are <code>application/problem+json</code>.</p>
<div id="ops">loading…</div>
<script>
fetch("/openapi.json").then(r=>r.json()).then(doc=>{
  const ops=document.getElementById("ops");ops.textContent="";
  for(const [path,item] of Object.entries(doc.paths)){
    for(const [method,op] of Object.entries(item)){
      const d=document.createElement("details");d.className="op";
      const s=document.createElement("summary");
      s.innerHTML='<span class="m '+method+'"></span><code></code> — <span></span>';
      s.children[0].textContent=method;s.children[1].textContent=path;s.children[2].textContent=op.summary||"";
      const pre=document.createElement("pre");
      pre.textContent=JSON.stringify({parameters:op.parameters,requestBody:op.requestBody,responses:op.responses},null,2);
      d.append(s,pre);ops.append(d);
    }
  }
  const c=document.createElement("details");c.className="op";
  c.innerHTML="<summary>schemas</summary><pre></pre>";
  c.querySelector("pre").textContent=JSON.stringify(doc.components,null,2);ops.append(c);
});
</script></body></html>`;

export function docsRoutes(app: OpenAPIHono): void {
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Indigo API",
      version: "1.0.0",
      description:
        "Gray releases dyed in the kernel: releases and their lifecycle, dye coverage, trace timelines, agents.",
    },
    security: [{ bearer: [] }],
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer" });
  app.get("/docs", (c) => c.html(REFERENCE));
}
