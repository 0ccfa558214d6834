// A stand-in for the three Kubernetes API calls the tuner loop makes, run inside a test's
// network namespace: GET its DaemonSet, GET its node, PATCH the node's annotations.
// usage: node fake-kube-api.cjs <state.json> <patches.log>
//   state.json  {"daemonset": "present"|"deleting"|"gone", "nodeLabels": {...}}, re-read on every request
//   patches.log one line per PATCH body received, with the Authorization header it came with
// Prints the port it listens on (127.0.0.1, chosen by the kernel).
const http = require("node:http");
const fs = require("node:fs");

const [stateFile, patchLog] = process.argv.slice(2);
const server = http.createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    const state = JSON.parse(fs.readFileSync(stateFile, "utf8"));
    const send = (code, obj) => {
      res.writeHead(code, { "Content-Type": "application/json" });
      res.end(JSON.stringify(obj));
    };
    if (req.method === "GET" && /^\/apis\/apps\/v1\/namespaces\/[^/]+\/daemonsets\/[^/]+$/.test(req.url)) {
      if (state.daemonset === "gone") return send(404, { kind: "Status", code: 404 });
      const metadata = { name: req.url.split("/").pop() };
      if (state.daemonset === "deleting") metadata.deletionTimestamp = "2026-11-30T00:00:00Z";
      return send(200, { kind: "DaemonSet", metadata });
    }
    if (/^\/api\/v1\/nodes\/[^/]+$/.test(req.url)) {
      if (req.method === "GET") return send(200, { kind: "Node", metadata: { name: req.url.split("/").pop(), labels: state.nodeLabels } });
      if (req.method === "PATCH") {
        fs.appendFileSync(
          patchLog,
          `${JSON.stringify({ auth: req.headers.authorization, type: req.headers["content-type"], body: JSON.parse(body) })}\n`,
        );
        return send(200, { kind: "Node" });
      }
    }
    send(404, { kind: "Status", code: 404, message: `unexpected ${req.method} ${req.url}` });
  });
});
server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`));
