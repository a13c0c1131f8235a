// The chain's client (node, http.Agent keepAlive with few sockets, so cohort and non-cohort requests
// interleave on the same connections). Reads batches from stdin, one JSON line each:
//   {"batch": k, "concurrency": c, "requests": [{"seq": n, "traceId": "...", "cohort": true, "fail": false}]}
// runs each batch with at most c requests in flight, writes one JSON line per request
//   {"seq", "traceId", "cohort", "status", "localPort", "body" | "error", "ms"}
// then {"batchDone": k}. Every request has a timeout; stdin's end closes the sockets and exits.
import http from "node:http";
import readline from "node:readline";

const [target, maxSocketsArg] = process.argv.slice(2);
const maxSockets = Number(maxSocketsArg ?? 2);
const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, scheduling: "fifo" });
const REQUEST_TIMEOUT_MS = 15000;

const out = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

const one = (spec) =>
  new Promise((resolve) => {
    const started = Date.now();
    const path = `/r/${spec.seq}${spec.fail ? "/fail" : ""}`;
    const headers = spec.traceId ? { "x-trace-id": spec.traceId } : {};
    const base = { seq: spec.seq, traceId: spec.traceId, cohort: spec.cohort };
    let localPort;
    const req = http.request(`${target}${path}`, { agent, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      localPort = res.socket?.localPort ?? localPort;
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        text += chunk;
      });
      res.on("end", () => {
        let body;
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        resolve({ ...base, status: res.statusCode, localPort, body, ms: Date.now() - started });
      });
    });
    req.on("socket", (s) => {
      if (s.localPort) localPort = s.localPort;
      s.once("connect", () => {
        localPort = s.localPort;
      });
    });
    req.on("timeout", () => req.destroy(new Error(`timeout after ${REQUEST_TIMEOUT_MS} ms`)));
    req.on("error", (e) =>
      resolve({ ...base, status: 0, localPort, error: String(e), ms: Date.now() - started }),
    );
    req.end();
  });

const runBatch = async (batch) => {
  const queue = [...batch.requests];
  const worker = async () => {
    for (let spec = queue.shift(); spec; spec = queue.shift()) out(await one(spec));
  };
  await Promise.all(Array.from({ length: Math.max(1, batch.concurrency ?? 1) }, worker));
  out({ batchDone: batch.batch });
};

out({ ready: true, hop: "client", pid: process.pid });
const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on("line", (line) => {
  if (line.trim() === "") return;
  const batch = JSON.parse(line);
  chain = chain.then(() => runBatch(batch));
});
rl.on("close", () => {
  chain.then(() => {
    agent.destroy();
    process.exit(0);
  });
});
