// The dashboard at `/`: one static page (no build step), refreshed every 5 s, that talks to the API with the
// token the operator pastes (kept in localStorage): releases with state, ramp and controls, per-hop coverage
// over time as a chart and a table, a trace's path, the agents and their modes.
import type { OpenAPIHono } from "@hono/zod-openapi";

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Indigo</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d1d2b;background:#f7f7fb}
header{background:#3b2f8f;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1rem;align-items:center}
header h1{font-size:1.1rem;margin:0}header input{flex:1;max-width:28rem}
main{display:grid;grid-template-columns:1fr 1fr;gap:1rem;padding:1rem}
section{background:#fff;border:1px solid #e2e2ee;border-radius:8px;padding:.8rem}
h2{font-size:1rem;margin:.2rem 0 .6rem}table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:.2rem .4rem;border-bottom:1px solid #eee}
.state{font-weight:600}.running{color:#1b7f3b}.paused{color:#b26a00}.rolled_back{color:#b3261e}
.promoted{color:#3b2f8f}button{margin:0 .1rem;font-size:.8rem}.bar{fill:#3b2f8f}.miss{fill:#e9a3a0}
#err{color:#b3261e;padding:0 1rem}
.reason{font-size:.8rem;color:#555;max-width:22rem}.ramp{font-size:.8rem}td.held{color:#b26a00;font-weight:600}td.bad{color:#b3261e;font-weight:600}#gray-errors{margin-top:.6rem}
</style></head><body>
<header><h1>Indigo</h1><input id="token" placeholder="bearer token (./dev token --role operator)" type="password">
<button id="save">use</button></header>
<div id="err"></div>
<main>
<section><h2>Releases</h2><table id="releases"><thead><tr><th>name</th><th>state</th><th>v</th><th>dye</th><th>ramp</th><th></th><th>why</th></tr></thead><tbody></tbody></table></section>
<section><h2>Coverage <span id="covname"></span></h2><div id="coverage">select a release</div></section>
<section><h2>Trace</h2><input id="trace" placeholder="trace id"><button id="showtrace">show</button><div id="hops"></div></section>
<section><h2>Agents</h2><table id="agents"><thead><tr><th>agent</th><th>node</th><th>mode</th><th>rules</th><th>events/s</th><th>drops</th></tr></thead><tbody></tbody></table></section>
</main>
<script>
const $=(id)=>document.getElementById(id);
const tok=()=>localStorage.getItem("indigo.token")||"";
$("token").value=tok();
$("save").onclick=()=>{localStorage.setItem("indigo.token",$("token").value.trim());refresh();};
async function api(method,path,version,payload){
  const headers={authorization:"Bearer "+tok()};if(version)headers["if-match"]=String(version);
  if(payload)headers["content-type"]="application/json";
  const r=await fetch(path,{method,headers,body:payload?JSON.stringify(payload):undefined});const body=await r.json();
  if(!r.ok){$("err").textContent=(body.title||r.status)+": "+(body.detail||"");throw new Error(body.detail);}
  $("err").textContent="";return body;
}
const cell=(tr,text,cls)=>{const td=document.createElement("td");td.textContent=text;if(cls)td.className=cls;tr.append(td);return td;};
const ACTIONS={draft:["start","rollback"],running:["pause","promote","rollback"],paused:["resume","promote","rollback"]};
const clock=(t)=>new Date(t).toLocaleTimeString();
// The step a ramp is at and when the next is due; a step the analysis holds says why (rampHold, from its
// last pass); a step 15 s past due (three analysis passes) with no hold recorded: no analysis pass ran.
function rampCell(tr,r){
  if(!r.ramp.length)return cell(tr,"","ramp");
  let text=r.ramp[r.rampStep].percent+" % ("+(r.rampStep+1)+"/"+r.ramp.length+")";
  if(!r.rampNextStepAt)return cell(tr,text,"ramp");
  const due=Date.parse(r.rampNextStepAt);
  if(r.rampHold)text+=", next step held since "+clock(Date.parse(r.rampHold.since))+": "+r.rampHold.reason;
  else if(Date.now()-due<15000)return cell(tr,text+", next step "+clock(due),"ramp");
  else text+=", next step overdue since "+clock(due)+": no analysis pass advanced it";
  return cell(tr,text,"ramp held");
}
async function refresh(){
  const {releases}=await api("GET","/v1/releases");
  const tb=$("releases").tBodies[0];tb.textContent="";
  for(const r of releases){
    const tr=document.createElement("tr");tr.dataset.id=r.id;
    const name=cell(tr,r.name);name.style.cursor="pointer";name.onclick=()=>coverage(r);
    cell(tr,r.state,"state "+r.state);cell(tr,String(r.version));cell(tr,String(r.dye));rampCell(tr,r);
    const td=cell(tr,"");
    for(const verb of ACTIONS[r.state]||[]){const b=document.createElement("button");b.textContent=verb;
      b.onclick=async()=>{
        // a stop goes in the release's history with its reason: asked for, and Cancel sends nothing
        let payload;
        if(verb==="pause"||verb==="rollback"){const why=prompt(verb+" "+r.name+": why?");if(why===null)return;payload={reason:why};}
        await api("POST","/v1/releases/"+r.id+"/"+verb,r.version,payload);refresh();};td.append(b);}
    cell(tr,r.reason||"","reason");
    tb.append(tr);
  }
  const shown=releases.find((x)=>x.id===$("coverage").dataset.id)||releases[0];
  if(shown)await coverage(shown);
  const {agents}=await api("GET","/v1/agents");const ab=$("agents").tBodies[0];ab.textContent="";
  for(const a of agents){const tr=document.createElement("tr");cell(tr,a.agentId);cell(tr,a.node);
    cell(tr,a.mode+(a.degradedReason?" ("+a.degradedReason+")":"")+(a.stale?" — stale, last seen "+a.lastSeenAt:"")+(a.stopped?" — stopped at "+a.lastSeenAt:"")+(a.idConflict?" — id conflict: "+a.idConflict:""),a.idConflict?"bad":"");
    // the publication in force there; behind: it reported after the last release change without taking it
    cell(tr,(a.rulesAppliedAt?"published "+clock(a.rulesAppliedAt):"none")+(a.rulesBehind?" — behind the last change":""),a.rulesBehind?"bad rules":"rules");
    cell(tr,String(a.eventRatePerS));
    cell(tr,String(a.ringbufReserveFailures));ab.append(tr);}
}
async function coverage(r){
  const c=await api("GET","/v1/releases/"+r.id+"/coverage?series=true");
  const box=$("coverage");box.dataset.id=r.id;$("covname").textContent="— "+r.name;
  const pct=(x)=>x==null?"–":(x*100).toFixed(2)+" %";
  const ns="http://www.w3.org/2000/svg",W=520,H=160,L=40;
  const el=(tag,attrs,text)=>{const e=document.createElementNS(ns,tag);for(const[k,v]of Object.entries(attrs))e.setAttribute(k,String(v));if(text!=null)e.textContent=text;return e;};
  // Coverage over time: one line per hop, ratio 0..100 % against bucket time.
  const chart=el("svg",{id:"coverage-chart",width:W+L+10,height:H+30});
  chart.append(el("line",{x1:L,y1:H,x2:L+W,y2:H,stroke:"#999"}),el("line",{x1:L,y1:0,x2:L,y2:H,stroke:"#999"}),
    el("text",{x:0,y:10},"100 %"),el("text",{x:8,y:H},"0 %"));
  const times=[...new Set((c.series||[]).map((p)=>Date.parse(p.bucketStart)))].sort((a,b)=>a-b);
  const t0=times[0]||0,t1=times[times.length-1]||1,span=Math.max(1,t1-t0);
  const colors=["#3b2f8f","#1b7f3b","#b26a00","#b3261e","#0b6e99","#7a3e9d"];
  const hops=[...new Set((c.series||[]).map((p)=>p.caller+" → "+p.callee))];
  hops.forEach((hop,i)=>{
    const pts=(c.series||[]).filter((p)=>p.caller+" → "+p.callee===hop&&p.ratio!=null)
      .map((p)=>[L+(times.length>1?((Date.parse(p.bucketStart)-t0)/span)*W:W/2),H-p.ratio*H]);
    const color=colors[i%colors.length];
    if(pts.length>1)chart.append(el("polyline",{class:"hop-line",fill:"none",stroke:color,"stroke-width":2,points:pts.map((q)=>q.join(",")).join(" ")}));
    for(const q of pts)chart.append(el("circle",{class:"hop-point",cx:q[0],cy:q[1],r:3,fill:color}));
    chart.append(el("text",{x:L+5,y:H+30+i*14,fill:color},hop));
  });
  chart.setAttribute("height",String(H+36+hops.length*14));
  if(times.length>0){chart.append(el("text",{x:L,y:H+14,"font-size":10},new Date(t0).toISOString().slice(11,19)),
    el("text",{x:L+W-50,y:H+14,"font-size":10},new Date(t1).toISOString().slice(11,19)));}
  const table=document.createElement("table");
  table.innerHTML="<thead><tr><th>hop</th><th>coverage</th><th>dyed/expected</th><th>by source</th></tr></thead>";
  const tb=document.createElement("tbody");
  for(const h of c.hops){const tr=document.createElement("tr");cell(tr,h.caller+" → "+h.callee);cell(tr,pct(h.ratio));
    cell(tr,h.dyed+"/"+h.expected);cell(tr,Object.entries(h.bySource).map(([k,v])=>k+" "+v).join(", "));tb.append(tr);}
  table.append(tb);
  // What the analysis judges besides coverage: the 5xx share of the responses to cohort requests, per callee.
  const errors=document.createElement("table");errors.id="gray-errors";
  errors.innerHTML="<thead><tr><th>callee</th><th>gray 5xx</th><th>error rate</th></tr></thead>";
  const eb=document.createElement("tbody");
  for(const x of c.responses||[]){const tr=document.createElement("tr");cell(tr,x.callee);cell(tr,x.errors+"/"+x.responses);
    cell(tr,pct(x.errorRate),x.errors>0?"bad":"");eb.append(tr);}
  errors.append(eb);
  box.textContent="overall "+pct(c.overall.ratio)+" ("+c.overall.dyed+"/"+c.overall.expected+")";
  box.append(document.createElement("br"),chart,table);
  if((c.responses||[]).length>0)box.append(errors);
}
$("showtrace").onclick=async()=>{
  const t=await api("GET","/v1/traces/"+encodeURIComponent($("trace").value.trim()));
  const ol=document.createElement("ol");
  for(const h of t.hops){const li=document.createElement("li");li.textContent=h.at+" "+h.service+" "+h.kind+" → "+h.peer+" dye "+h.dye+" via "+h.source+(h.status?" "+h.status:"");ol.append(li);}
  $("hops").textContent="";$("hops").append(ol);
};
if(tok())refresh().catch(()=>{});
// A release is watched, not read once: everything on the page again every 5 s while it is in view.
setInterval(()=>{if(tok()&&!document.hidden)refresh().catch(()=>{});},5000);
</script></body></html>`;

export function dashboardRoutes(app: OpenAPIHono): void {
  app.get("/", (c) => c.html(PAGE));
}
